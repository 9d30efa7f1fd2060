/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <limits.h>
#include <dirent.h>
#include <fcntl.h>
#include <libfdisk/libfdisk.h>
#include <linux/fs.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fileio.h"
#include "log.h"
#include "slot-manager-error.h"
#include "slot-manager-disk.h"

static uint8_t usr_type[16];
static bool usr_type_set;

int disk_set_usr_type(const char *guid) {
        int r = gpt_guid_from_string(guid, usr_type);
        if (r < 0)
                return r;
        usr_type_set = true;
        return 0;
}

static const uint8_t *get_usr_type(void) {
        if (!usr_type_set) {
                (void) gpt_guid_from_string(USR_TYPE_GUID, usr_type);
                usr_type_set = true;
        }
        return usr_type;
}

static const char *const slot_names[_SLOT_MAX] = { "a", "b" };

const char *slot_to_string(SlotId s) {
        return s >= 0 && s < _SLOT_MAX ? slot_names[s] : NULL;
}

SlotId slot_from_string(const char *s) {
        if (!s)
                return _SLOT_INVALID;
        const char *letter = s;
        if (strncasecmp(s, "usr-", 4) == 0)
                letter = s + 4;
        else if (strncasecmp(s, "root-", 5) == 0)
                letter = s + 5;
        if (strlen(letter) != 1)
                return _SLOT_INVALID;
        switch (tolower((unsigned char) letter[0])) {
        case 'a':
                return SLOT_A;
        case 'b':
                return SLOT_B;
        default:
                return _SLOT_INVALID;
        }
}

static SlotId slot_from_label(const char *label) {
        if (strcasecmp(label, "USR-A") == 0 || strcasecmp(label, "ROOT-A") == 0)
                return SLOT_A;
        if (strcasecmp(label, "USR-B") == 0 || strcasecmp(label, "ROOT-B") == 0)
                return SLOT_B;
        return _SLOT_INVALID;
}

static int fd_read(void *userdata, uint64_t offset, void *buf, size_t size) {
        int fd = *(int *) userdata;
        ssize_t n = pread(fd, buf, size, (off_t) offset);
        if (n < 0)
                return -errno;
        return (size_t) n == size ? 0 : -EIO;
}

static int fd_write(void *userdata, uint64_t offset, const void *buf, size_t size) {
        int fd = *(int *) userdata;
        ssize_t n = pwrite(fd, buf, size, (off_t) offset);
        if (n < 0)
                return -errno;
        return (size_t) n == size ? 0 : -EIO;
}

static int fd_sync(void *userdata) {
        int fd = *(int *) userdata;
        return fsync(fd) < 0 ? -errno : 0;
}

Disk *disk_free(Disk *d) {
        if (!d)
                return NULL;
        gpt_table_free(d->gpt);
        free(d->entries_as_read);
        free(d->path);
        safe_close(d->fd);
        return mfree(d);
}

DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(struct fdisk_context *, fdisk_unref_context);
DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(struct fdisk_table *, fdisk_unref_table);
DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(struct fdisk_iter *, fdisk_free_iter);

/* Lists the partitions with libfdisk, picks the slots, and checks that the raw table agrees. */
static int disk_find_slots(Disk *d) {
        _cleanup_(fdisk_unref_contextp) struct fdisk_context *cxt = NULL;
        _cleanup_(fdisk_unref_tablep) struct fdisk_table *tb = NULL;
        _cleanup_(fdisk_free_iterp) struct fdisk_iter *itr = NULL;
        struct fdisk_partition *pa;
        char type_str[GPT_GUID_STRING_MAX];
        bool found[_SLOT_MAX] = {};
        int r;

        gpt_guid_to_string(get_usr_type(), type_str);

        cxt = fdisk_new_context();
        if (!cxt)
                return log_oom();
        r = fdisk_assign_device_by_fd(cxt, d->fd, d->path, /* readonly= */ 1);
        if (r < 0)
                return slot_fail(r, "libfdisk cannot open %s: %m", d->path);
        if (!fdisk_is_labeltype(cxt, FDISK_DISKLABEL_GPT))
                return slot_fail(SYNTHETIC_ERRNO(ENOMSG), "libfdisk finds no GPT on %s.", d->path);
        if (fdisk_get_sector_size(cxt) != d->io.sector_size)
                return slot_fail(SYNTHETIC_ERRNO(EINVAL),
                                       "libfdisk sees %lu-byte sectors on %s, expected %u.",
                                       fdisk_get_sector_size(cxt), d->path, d->io.sector_size);
        r = fdisk_get_partitions(cxt, &tb);
        if (r < 0)
                return slot_fail(r, "libfdisk cannot list the partitions of %s: %m", d->path);
        itr = fdisk_new_iter(FDISK_ITER_FORWARD);
        if (!itr)
                return log_oom();

        while (fdisk_table_next_partition(tb, itr, &pa) == 0) {
                struct fdisk_parttype *pt = fdisk_partition_get_type(pa);
                const char *type = pt ? fdisk_parttype_get_string(pt) : NULL;
                const char *name = fdisk_partition_get_name(pa);
                const char *uuid = fdisk_partition_get_uuid(pa);

                if (!type || strcasecmp(type, type_str) != 0 || !name)
                        continue;
                SlotId s = slot_from_label(name);
                if (s < 0)
                        continue;
                size_t partno = fdisk_partition_get_partno(pa);
                if (found[s])
                        return slot_fail(SYNTHETIC_ERRNO(ENOTUNIQ),
                                               "%s has two partitions for slot %s (partitions %u and %zu).",
                                               d->path, slot_to_string(s), d->slots[s].index + 1, partno + 1);

                /* The raw table the attributes come from must describe the same partition. */
                uint32_t index = (uint32_t) partno;
                uint8_t raw_type[16], raw_uuid[16], want_type[16];
                char raw_uuid_str[GPT_GUID_STRING_MAX], raw_label[GPT_LABEL_MAX];
                if (partno >= d->gpt->header.n_entries || !gpt_entry_is_used(d->gpt, index))
                        return slot_fail(SYNTHETIC_ERRNO(EBADMSG),
                                               "libfdisk and the GPT in use disagree about partition %zu of %s.",
                                               partno + 1, d->path);
                gpt_entry_type(d->gpt, index, raw_type);
                gpt_entry_uuid(d->gpt, index, raw_uuid);
                gpt_guid_to_string(raw_uuid, raw_uuid_str);
                gpt_entry_label(d->gpt, index, raw_label);
                (void) gpt_guid_from_string(type_str, want_type);
                if (memcmp(raw_type, want_type, 16) != 0 || !uuid || strcasecmp(uuid, raw_uuid_str) != 0 ||
                    !streq(raw_label, name) || fdisk_partition_get_start(pa) != gpt_entry_first_lba(d->gpt, index) ||
                    fdisk_partition_get_size(pa) !=
                            gpt_entry_last_lba(d->gpt, index) - gpt_entry_first_lba(d->gpt, index) + 1)
                        return slot_fail(SYNTHETIC_ERRNO(EBADMSG),
                                               "libfdisk and the GPT in use disagree about partition %zu of %s.",
                                               partno + 1, d->path);

                Slot *slot = &d->slots[s];
                slot->id = s;
                slot->index = index;
                strcpy(slot->label, raw_label);
                strcpy(slot->partuuid, raw_uuid_str);
                slot->offset = gpt_entry_first_lba(d->gpt, index) * d->io.sector_size;
                slot->size = (gpt_entry_last_lba(d->gpt, index) - gpt_entry_first_lba(d->gpt, index) + 1) *
                             d->io.sector_size;
                found[s] = true;
        }

        for (SlotId s = 0; s < _SLOT_MAX; s++)
                if (!found[s])
                        return slot_fail(SYNTHETIC_ERRNO(ENOENT),
                                               "%s has no slot %s: no partition of type %s labelled USR-%c or ROOT-%c.",
                                               d->path, slot_to_string(s), type_str, 'A' + s, 'A' + s);
        return 0;
}

int disk_open(const char *path, bool writable, Disk **ret) {
        _cleanup_(disk_freep) Disk *d = NULL;
        _cleanup_free_ char *error = NULL;
        struct stat st;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return log_oom();
        d->fd = -EBADF;
        d->writable = writable;
        d->path = strdup(path);
        if (!d->path)
                return log_oom();

        d->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
        if (d->fd < 0)
                return slot_fail(errno, "Failed to open disk %s: %m", path);
        if (fstat(d->fd, &st) < 0)
                return slot_fail(errno, "Failed to stat disk %s: %m", path);

        uint64_t size;
        d->io.sector_size = 512;
        if (S_ISBLK(st.st_mode)) {
                int ss;
                d->is_block = true;
                d->devnum = st.st_rdev;
                if (ioctl(d->fd, BLKGETSIZE64, &size) < 0)
                        return slot_fail(errno, "Failed to get the size of %s: %m", path);
                if (ioctl(d->fd, BLKSSZGET, &ss) < 0)
                        return slot_fail(errno, "Failed to get the sector size of %s: %m", path);
                d->io.sector_size = (uint32_t) ss;
        } else if (S_ISREG(st.st_mode))
                size = (uint64_t) st.st_size;
        else
                return slot_fail(SYNTHETIC_ERRNO(ENOTBLK), "%s is neither a block device nor an image file.",
                                       path);

        /* Serialise against other slot-manager instances (the service and a CLI call). */
        if (flock(d->fd, writable ? LOCK_EX : LOCK_SH) < 0)
                return slot_fail(errno, "Failed to lock %s: %m", path);

        d->io.n_sectors = size / d->io.sector_size;
        d->io.read = fd_read;
        d->io.write = fd_write;
        d->io.sync = fd_sync;
        d->io.userdata = &d->fd;

        r = gpt_read(&d->io, &d->gpt, &error);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return slot_fail(r, "%s: %s", path, error ?: "cannot read the GPT");
        if (!d->gpt->valid[GPT_PRIMARY])
                log_warning("%s: primary GPT is damaged (%s); using the backup.", path, d->gpt->problem[GPT_PRIMARY]);
        else if (!d->gpt->valid[GPT_BACKUP] || d->gpt->backup_stale)
                log_warning("%s: backup GPT needs repair (%s).", path, d->gpt->problem[GPT_BACKUP]);

        size_t esize = (size_t) d->gpt->header.n_entries * d->gpt->header.entry_size;
        d->entries_as_read = malloc(esize);
        if (!d->entries_as_read)
                return log_oom();
        memcpy(d->entries_as_read, d->gpt->entries, esize);

        r = disk_find_slots(d);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

uint64_t disk_slot_attrs(const Disk *d, SlotId s) {
        return gpt_entry_get_attrs(d->gpt, d->slots[s].index);
}

int disk_prio_entries(const Disk *d, PrioEntry **ret, size_t *ret_n) {
        uint32_t n = d->gpt->header.n_entries;
        PrioEntry *e = calloc(n, sizeof(PrioEntry));
        if (!e)
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                uint8_t type[16];
                gpt_entry_type(d->gpt, i, type);
                e[i].is_usr = memcmp(type, get_usr_type(), 16) == 0;
                e[i].attrs = gpt_entry_get_attrs(d->gpt, i);
        }
        *ret = e;
        *ret_n = n;
        return 0;
}

void disk_apply_prio_entries(Disk *d, const PrioEntry *entries, size_t n) {
        for (size_t i = 0; i < n && i < d->gpt->header.n_entries; i++)
                if (gpt_entry_get_attrs(d->gpt, (uint32_t) i) != entries[i].attrs)
                        gpt_entry_set_attrs(d->gpt, (uint32_t) i, entries[i].attrs);
}

int disk_commit(Disk *d) {
        int r;

        if (!d->writable)
                return -EROFS;
        if (!gpt_needs_write(d->gpt, d->entries_as_read))
                return 0;
        r = gpt_write(&d->io, d->gpt);
        if (r == -ERANGE)
                return slot_fail(r, "%s: the GPT layout leaves no room to write both copies safely.", d->path);
        if (r < 0)
                return slot_fail(r, "Failed to write the GPT of %s: %m", d->path);
        memcpy(d->entries_as_read, d->gpt->entries, (size_t) d->gpt->header.n_entries * d->gpt->header.entry_size);
        return 1;
}

int disk_repair(Disk *d, GptRepairResult *ret) {
        static const char *const names[_GPT_COPY_MAX] = { "primary", "backup" };
        GptRepairResult result = {};
        int r;

        if (!d->writable)
                return -EROFS;
        size_t size = (size_t) d->gpt->header.n_entries * d->gpt->header.entry_size;
        if (memcmp(d->gpt->entries, d->entries_as_read, size) != 0)
                return -EBUSY; /* entries already changed: that is disk_commit()'s job */

        GptCopy source = d->gpt->source, other = source == GPT_PRIMARY ? GPT_BACKUP : GPT_PRIMARY;
        _cleanup_free_ char *problem = d->gpt->problem[other] ? strdup(d->gpt->problem[other]) : NULL;

        r = gpt_repair(&d->io, d->gpt, &result);
        if (r == -ERANGE)
                return slot_fail(r, "%s: the GPT layout leaves no room to write both copies safely.", d->path);
        if (r < 0)
                return slot_fail(r, "Failed to repair the GPT of %s: %m", d->path);
        if (result.rewritten[other])
                log_notice("%s: rewrote the %s GPT from the %s (%s)%s; %u sectors written.", d->path, names[other],
                           names[source], problem ?: "damaged", result.rewritten[source] ? ", and corrected the latter's header" : "",
                           result.sectors_written);
        memcpy(d->entries_as_read, d->gpt->entries, size);
        if (ret)
                *ret = result;
        return result.sectors_written > 0;
}

/* ---- the booted slot ---- */

/* Tests point this at a fake /sys to stand in partitions that the test machine's kernel cannot create. */
static const char *sysfs_prefix(void) {
        return getenv("SWITCHYARD_TEST_SYSFS_ROOT") ?: "";
}

int cmdline_find_usr(const char *cmdline, char **ret_kind, char **ret_value) {
        _cleanup_free_ char *kind = NULL, *value = NULL;
        const char *p = cmdline;

        while (*p) {
                char word[4096];
                size_t n = 0;
                bool quoted = false;

                while (isspace((unsigned char) *p))
                        p++;
                if (!*p)
                        break;
                while (*p && (quoted || !isspace((unsigned char) *p))) {
                        if (*p == '"')
                                quoted = !quoted;
                        else if (n < sizeof(word) - 1)
                                word[n++] = *p;
                        p++;
                }
                word[n] = 0;

                const char *v = startswith(word, "usr=") ?: startswith(word, "mount.usr=") ?:
                                startswith(word, "verity.usr=");
                if (!v)
                        continue;
                const char *k = NULL, *rest;
                if ((rest = startswith(v, "PARTUUID=")))
                        k = "PARTUUID";
                else if ((rest = startswith(v, "PARTLABEL=")))
                        k = "PARTLABEL";
                else
                        continue; /* e.g. mount.usr=/dev/mapper/usr: names the verity device, not the slot */
                /* Later arguments win, as for the kernel and systemd. */
                free(kind);
                free(value);
                kind = strdup(k);
                value = strdup(rest);
                if (!kind || !value)
                        return -ENOMEM;
        }
        *ret_kind = TAKE_PTR(kind);
        *ret_value = TAKE_PTR(value);
        return 0;
}

static int sysfs_read_devnum(const char *path, dev_t *ret) {
        _cleanup_free_ char *line = NULL;
        unsigned maj, min;
        int r = read_one_line_file(path, &line);
        if (r < 0)
                return r;
        if (sscanf(line, "%u:%u", &maj, &min) != 2)
                return -EINVAL;
        *ret = makedev(maj, min);
        return 0;
}

/* The partition under /usr (through one level of device mapper, as with dm-verity) and its disk. */
static int usr_partition(dev_t *ret_disk, uint32_t *ret_partno) {
        char p[PATH_MAX];
        struct stat st;
        dev_t dev;
        int r;

        if (stat("/usr", &st) < 0)
                return -errno;
        dev = st.st_dev;

        snprintf(p, sizeof(p), "%s/sys/dev/block/%u:%u/slaves", sysfs_prefix(), major(dev), minor(dev));
        _cleanup_closedir_ DIR *dir = opendir(p);
        if (dir) {
                struct dirent *de;
                char found[256] = "";
                int n = 0;
                while ((de = readdir(dir)))
                        if (de->d_name[0] != '.') {
                                snprintf(found, sizeof(found), "%s", de->d_name);
                                n++;
                        }
                if (n == 1) {
                        char q[PATH_MAX + 256];
                        snprintf(q, sizeof(q), "%s/sys/class/block/%s/dev", sysfs_prefix(), found);
                        r = sysfs_read_devnum(q, &dev);
                        if (r < 0)
                                return r;
                } else if (n > 1)
                        return -ENOTUNIQ;
        }

        _cleanup_free_ char *partno = NULL;
        snprintf(p, sizeof(p), "%s/sys/dev/block/%u:%u/partition", sysfs_prefix(), major(dev), minor(dev));
        r = read_one_line_file(p, &partno);
        if (r < 0)
                return r == -ENOENT ? -ENODEV : r;
        uint32_t n;
        r = safe_atou32(partno, &n);
        if (r < 0)
                return r;
        snprintf(p, sizeof(p), "%s/sys/dev/block/%u:%u/../dev", sysfs_prefix(), major(dev), minor(dev));
        r = sysfs_read_devnum(p, ret_disk);
        if (r < 0)
                return r;
        *ret_partno = n;
        return 0;
}

int disk_find_usr_disk(char **ret_path) {
        dev_t disk;
        uint32_t partno;
        char p[PATH_MAX];
        int r;

        r = usr_partition(&disk, &partno);
        if (r < 0)
                return slot_fail(r, "Cannot find the disk holding /usr (%m); pass --disk=PATH.");

        _cleanup_free_ char *uevent = NULL;
        snprintf(p, sizeof(p), "%s/sys/dev/block/%u:%u/uevent", sysfs_prefix(), major(disk), minor(disk));
        r = read_full_file(p, 64 * 1024, &uevent, NULL);
        if (r < 0)
                return slot_fail(r, "Failed to read %s: %m", p);
        for (char *line = uevent; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                const char *name = startswith(line, "DEVNAME=");
                if (name) {
                        char *path = NULL;
                        if (asprintf(&path, "/dev/%s", name) < 0)
                                return log_oom();
                        *ret_path = path;
                        return 0;
                }
                line = nl ? nl + 1 : NULL;
        }
        return slot_fail(SYNTHETIC_ERRNO(ENODEV), "Cannot find the device node of the disk holding /usr.");
}

int disk_find_booted(const Disk *d, const char *cmdline_path, SlotId *ret) {
        _cleanup_free_ char *cmdline = NULL, *kind = NULL, *value = NULL;
        const char *path = cmdline_path ?: "/proc/cmdline";
        int r;

        r = read_full_file(path, 64 * 1024, &cmdline, NULL);
        if (r < 0 && (cmdline_path || r != -ENOENT))
                return slot_fail(r, "Failed to read the kernel command line %s: %m", path);
        if (cmdline) {
                r = cmdline_find_usr(cmdline, &kind, &value);
                if (r < 0)
                        return log_oom();
        }

        *ret = _SLOT_INVALID;
        if (kind) {
                for (SlotId s = 0; s < _SLOT_MAX; s++)
                        if (streq(kind, "PARTUUID") ? strcasecmp(value, d->slots[s].partuuid) == 0
                                                    : streq(value, d->slots[s].label))
                                *ret = s;
                if (*ret < 0)
                        log_debug("The booted /usr (%s=%s) is not a slot of %s.", kind, value, d->path);
                return 0;
        }

        if (d->is_block) {
                dev_t disk;
                uint32_t partno;
                if (usr_partition(&disk, &partno) >= 0 && disk == d->devnum)
                        for (SlotId s = 0; s < _SLOT_MAX; s++)
                                if (d->slots[s].index + 1 == partno)
                                        *ret = s;
        }
        return 0;
}

/* ---- handing out a slot ---- */

static int find_partition_node(const Disk *d, uint32_t partno, char **ret_path, dev_t *ret_dev) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/sys/dev/block/%u:%u", sysfs_prefix(), major(d->devnum), minor(d->devnum));
        _cleanup_closedir_ DIR *dir = opendir(p);
        struct dirent *de;

        if (!dir)
                return -errno;
        while ((de = readdir(dir))) {
                char q[PATH_MAX + 512];
                _cleanup_free_ char *num = NULL;
                uint32_t n;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(q, sizeof(q), "%s/%s/partition", p, de->d_name);
                if (read_one_line_file(q, &num) < 0 || safe_atou32(num, &n) < 0 || n != partno)
                        continue;
                snprintf(q, sizeof(q), "%s/%s/dev", p, de->d_name);
                int r = sysfs_read_devnum(q, ret_dev);
                if (r < 0)
                        return r;
                if (asprintf(ret_path, "/dev/%s", de->d_name) < 0)
                        return -ENOMEM;
                return 0;
        }
        return -ENOENT;
}

int disk_open_slot_rw(const Disk *d, SlotId s, int *ret_fd, uint64_t *ret_offset) {
        const Slot *slot = &d->slots[s];
        _cleanup_close_ int fd = -EBADF;
        struct stat st, st_disk;

        if (d->is_block) {
                _cleanup_free_ char *node = NULL;
                dev_t dev = 0;
                int r = find_partition_node(d, slot->index + 1, &node, &dev);
                if (r < 0)
                        return slot_fail(r, "Cannot find the device node of partition %u of %s: %m",
                                               slot->index + 1, d->path);
                /* O_EXCL: refuse a partition that is mounted or otherwise in use. */
                fd = open(node, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_EXCL);
                if (fd < 0)
                        return slot_fail(errno, "Failed to open %s for writing: %m", node);
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (!S_ISBLK(st.st_mode) || st.st_rdev != dev)
                        return slot_fail(SYNTHETIC_ERRNO(ENODEV), "%s is not partition %u of %s.", node,
                                               slot->index + 1, d->path);
                *ret_offset = 0;
        } else {
                fd = open(d->path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
                if (fd < 0)
                        return slot_fail(errno, "Failed to open %s for writing: %m", d->path);
                if (fstat(fd, &st) < 0 || fstat(d->fd, &st_disk) < 0)
                        return -errno;
                if (st.st_dev != st_disk.st_dev || st.st_ino != st_disk.st_ino)
                        return slot_fail(SYNTHETIC_ERRNO(ESTALE), "%s was replaced while in use.", d->path);
                *ret_offset = slot->offset;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}
