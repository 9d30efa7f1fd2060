/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <limits.h>
#include <sys/stat.h>

#include "fileio.h"
#include "hash.h"
#include "log.h"
#include "verity-check-status.h"
#include "verity-check-roothash.h"

VerityStatus *verity_status_free(VerityStatus *s) {
        if (!s)
                return NULL;
        free(s->dm_error);
        free(s->mapped_root_hash);
        free(s->mapped_data_device);
        free(s->cmdline_hash);
        free(s->usr_spec);
        free(s->booted_slot);
        free(s->kernel_path);
        free(s->kernel_hash);
        free(s->kernel_error);
        return mfree(s);
}

static void cryptsetup_log(int level, const char *msg, void *userdata) {
        size_t n = strlen(msg);
        /* libcryptsetup's messages end in a newline; ours do not. */
        log_debug("libcryptsetup: %.*s", (int) (n > 0 && msg[n - 1] == '\n' ? n - 1 : n), msg);
}

bool device_mapper_available(const char *root) {
        _cleanup_free_ char *control = path_join_root(root, "/dev/mapper/control");
        _cleanup_free_ char *misc = path_join_root(root, "/proc/misc");
        _cleanup_free_ char *data = NULL;

        if (control && access(control, F_OK) == 0)
                return true;
        if (misc && read_full_file(misc, 64 * 1024, &data, NULL) >= 0 && strstr(data, " device-mapper\n"))
                return true;
        return false;
}

static int query_mapping(VerityStatus *s, const char *name) {
        struct crypt_device *cd = NULL;
        struct crypt_params_verity vp = {};
        struct crypt_active_device cad = {};
        char key[VERITY_HASH_MAX];
        size_t key_size = sizeof key;
        crypt_status_info st;
        const char *type;
        int r;

        crypt_set_log_callback(NULL, cryptsetup_log, NULL);
        st = crypt_status(NULL, name);
        if (st == CRYPT_INVALID) {
                s->dm_error = strdup(geteuid() != 0 ? "device-mapper did not answer a status query (it needs root)"
                                                    : "device-mapper did not answer a status query");
                return 0;
        }
        if (st == CRYPT_INACTIVE)
                return 0;
        s->mapped = true;

        r = crypt_init_by_name(&cd, name);
        if (r < 0) {
                s->dm_error = strdup("the mapping exists but libcryptsetup cannot read it");
                return 0;
        }
        crypt_set_log_callback(cd, cryptsetup_log, NULL);
        type = crypt_get_type(cd);
        s->is_verity = type && streq(type, CRYPT_VERITY);
        if (s->is_verity) {
                if (crypt_get_verity_info(cd, &vp) >= 0) {
                        s->mapped_hash_offset = vp.hash_area_offset;
                        s->mapped_data_blocks = vp.data_size;
                }
                /* For a verity mapping the "volume key" is its root hash. */
                if (crypt_volume_key_get(cd, CRYPT_ANY_SLOT, key, &key_size, NULL, 0) >= 0 && key_size <= VERITY_HASH_MAX / 2) {
                        s->mapped_root_hash = malloc(key_size * 2 + 1);
                        if (s->mapped_root_hash)
                                hex_encode((const uint8_t *) key, key_size, s->mapped_root_hash);
                }
                if (crypt_get_active_device(cd, name, &cad) >= 0)
                        s->corrupted = cad.flags & CRYPT_ACTIVATE_CORRUPTED;
                if (crypt_get_device_name(cd))
                        s->mapped_data_device = strdup(crypt_get_device_name(cd));
        }
        crypt_free(cd);
        return 0;
}

/* verity.usr= / usr= value "PARTUUID=…" → the partition's GPT name (USR-A/USR-B) via sysfs. */
static char *slot_from_usr_spec(const char *root, const char *spec) {
        _cleanup_free_ char *link = NULL, *uevent = NULL, *data = NULL;
        char resolved[PATH_MAX], lower[64];
        const char *uuid = startswith(spec, "PARTUUID="), *dev, *name;
        size_t i;

        if (!uuid || strlen(uuid) >= sizeof lower)
                return NULL;
        for (i = 0; uuid[i]; i++)
                lower[i] = (char) (uuid[i] >= 'A' && uuid[i] <= 'Z' ? uuid[i] + 32 : uuid[i]);
        lower[i] = 0;
        link = path_join_root(root, strjoina("/dev/disk/by-partuuid/", lower));
        if (!link || !realpath(link, resolved))
                return NULL;
        dev = strrchr(resolved, '/');
        if (!dev)
                return NULL;
        _cleanup_free_ char *sysfs = NULL;
        if (asprintf(&sysfs, "/sys/class/block%s/uevent", dev) < 0)
                return NULL;
        uevent = path_join_root(root, sysfs);
        if (!uevent || read_full_file(uevent, 64 * 1024, &data, NULL) < 0)
                return NULL;
        name = strstr(data, "PARTNAME=USR-");
        if (!name || (name != data && name[-1] != '\n') || !strchr("ABab", name[13]))
                return NULL;
        return strndup(name + 13, 1);
}

int verity_status_collect(const char *root, const char *cmdline_path, const char *esp, const char *slot,
                          VerityStatus **ret) {
        _cleanup_(verity_status_freep) VerityStatus *s = calloc(1, sizeof *s);
        _cleanup_free_ char *cmdline = NULL, *cmdpath = NULL, *usr = NULL;
        char h[ROOT_HASH_HEX_LEN + 1];
        int r;

        if (!s)
                return -ENOMEM;

        s->device_mapper = device_mapper_available(root);
        if (!s->device_mapper)
                s->dm_error = strdup("this kernel has no device-mapper (no /dev/mapper/control, none in /proc/misc)");
        else {
                r = query_mapping(s, "usr");
                if (r < 0)
                        return r;
        }

        cmdpath = cmdline_path ? strdup(cmdline_path) : path_join_root(root, "/proc/cmdline");
        if (!cmdpath)
                return -ENOMEM;
        r = read_full_file(cmdpath, 64 * 1024, &cmdline, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read kernel command line %s: %m", cmdpath);
        r = cmdline_get_usrhash(cmdline, h);
        if (r == -EINVAL)
                log_warning("verity.usrhash= on the kernel command line is not 64 hex characters, ignoring it.");
        else if (r >= 0 && !(s->cmdline_hash = strdup(h)))
                return -ENOMEM;

        if (cmdline_get_value(cmdline, "verity.usr", &usr) >= 0 || cmdline_get_value(cmdline, "usr", &usr) >= 0)
                s->usr_spec = TAKE_PTR(usr);

        if (slot)
                s->booted_slot = strdup(slot);
        else if (s->usr_spec)
                s->booted_slot = slot_from_usr_spec(root, s->usr_spec);
        if (s->booted_slot) {
                s->booted_slot[0] = (char) (s->booted_slot[0] | 0x20);
                _cleanup_free_ char *espdir = path_join_root(root, esp ?: "/boot");
                _cleanup_close_ int fd = -EBADF;
                KernelArch arch;

                if (!espdir || asprintf(&s->kernel_path, "%s/flatcar/vmlinuz-%s", espdir, s->booted_slot) < 0)
                        return -ENOMEM;
                fd = open(s->kernel_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0) {
                        if (asprintf(&s->kernel_error, "cannot open %s: %s", s->kernel_path, strerror(errno)) < 0)
                                return -ENOMEM;
                } else {
                        if (kernel_detect_arch(fd, &arch) < 0)
                                arch = kernel_arch_native();
                        r = kernel_read_root_hash(fd, arch, h);
                        if (r < 0) {
                                if (asprintf(&s->kernel_error, "no root hash at byte %" PRIu64 " of %s",
                                             kernel_arch_hash_offset(arch), s->kernel_path) < 0)
                                        return -ENOMEM;
                        } else if (!(s->kernel_hash = strdup(h)))
                                return -ENOMEM;
                }
        }

        *ret = TAKE_PTR(s);
        return 0;
}
