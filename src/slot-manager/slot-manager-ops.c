/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "slot-manager-error.h"
#include "slot-manager-ops.h"

static int ops_open_disk(const SlotContext *c, bool writable, Disk **ret) {
        _cleanup_free_ char *found = NULL;
        const char *path = c->disk;
        int r;

        if (!path) {
                r = disk_find_usr_disk(&found);
                if (r < 0)
                        return r;
                path = found;
        }
        return disk_open(path, writable, ret);
}

/* Every operation that may write first repairs a damaged or stale GPT copy (as cgpt repair would), so a
 * write cut off by a power loss never leaves one bad copy for longer than the next such operation. */
static int ops_open(const SlotContext *c, bool writable, Disk **ret) {
        _cleanup_(disk_freep) Disk *d = NULL;
        int r;

        r = ops_open_disk(c, writable, &d);
        if (r < 0)
                return r;
        if (writable) {
                r = disk_repair(d, NULL);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

static int ops_booted(const SlotContext *c, const Disk *d, SlotId *ret) {
        return disk_find_booted(d, c->cmdline, ret);
}

static const char *copy_state(const GptTable *t, GptCopy copy) {
        return t->problem[copy] ?: "ok";
}

static json_t *slot_json(const Disk *d, SlotId s, SlotId booted, ssize_t next_index) {
        const Slot *slot = &d->slots[s];
        uint64_t a = disk_slot_attrs(d, s);
        char attrs[32];

        snprintf(attrs, sizeof(attrs), "0x%016" PRIx64, a);
        return json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:b, s:s, s:b, s:b}",
                         "slot", slot_to_string(s),
                         "label", slot->label,
                         "partition", (json_int_t) slot->index + 1,
                         "partuuid", slot->partuuid,
                         "offset", (json_int_t) slot->offset,
                         "size", (json_int_t) slot->size,
                         "priority", (json_int_t) attr_priority(a),
                         "tries", (json_int_t) attr_tries(a),
                         "successful", attr_successful(a),
                         "attributes", attrs,
                         "booted", booted == s,
                         "next", next_index >= 0 && (uint32_t) next_index == slot->index);
}

static SlotId slot_by_index(const Disk *d, ssize_t index) {
        for (SlotId s = 0; s < _SLOT_MAX; s++)
                if (index >= 0 && d->slots[s].index == (uint32_t) index)
                        return s;
        return _SLOT_INVALID;
}

int ops_status(const SlotContext *c, json_t **ret) {
        _cleanup_(disk_freep) Disk *d = NULL;
        _cleanup_free_ PrioEntry *e = NULL;
        size_t n;
        SlotId booted = _SLOT_INVALID;
        int r;

        r = ops_open(c, false, &d);
        if (r < 0)
                return r;
        r = ops_booted(c, d, &booted);
        if (r < 0)
                return r;
        r = disk_prio_entries(d, &e, &n);
        if (r < 0)
                return log_oom();
        ssize_t next = gptprio_choose(e, n);
        SlotId next_slot = slot_by_index(d, next);

        json_t *slots = json_array();
        if (!slots)
                return log_oom();
        for (SlotId s = 0; s < _SLOT_MAX; s++)
                json_array_append_new(slots, slot_json(d, s, booted, next));

        json_t *j = json_pack("{s:s, s:I, s:{s:s, s:s, s:s}, s:o, s:o, s:o, s:o}",
                              "disk", d->path,
                              "sector_size", (json_int_t) d->io.sector_size,
                              "gpt",
                              "primary", copy_state(d->gpt, GPT_PRIMARY),
                              "backup", copy_state(d->gpt, GPT_BACKUP),
                              "in_use", d->gpt->source == GPT_PRIMARY ? "primary" : "backup",
                              "booted", booted >= 0 ? json_string(slot_to_string(booted)) : json_null(),
                              "next", next_slot >= 0 ? json_string(slot_to_string(next_slot)) : json_null(),
                              "next_partition", next >= 0 ? json_integer(next + 1) : json_null(),
                              "slots", slots);
        if (!j)
                return log_oom();
        *ret = j;
        return 0;
}

/* The booted slot, which the caller needs to know: fails naming what cannot be done without it. */
static int ops_require_booted(const SlotContext *c, const Disk *d, const char *consequence, SlotId *ret) {
        SlotId booted = _SLOT_INVALID;
        int r;

        r = ops_booted(c, d, &booted);
        if (r < 0)
                return r;
        if (booted < 0)
                return slot_fail_named(SLOTS_ERROR_BOOTED_UNKNOWN, SYNTHETIC_ERRNO(ENXIO),
                                       "The booted /usr is not a slot of %s; %s.", d->path, consequence);
        *ret = booted;
        return 0;
}

/* Sets the slot's tries/successful (a negative value leaves the field as it is), then runs cgpt prioritize
 * on it, and commits. */
static int mark_and_prioritize(Disk *d, SlotId s, int tries, int successful) {
        _cleanup_free_ PrioEntry *e = NULL;
        size_t n;
        int r;

        r = disk_prio_entries(d, &e, &n);
        if (r < 0)
                return log_oom();
        uint32_t i = d->slots[s].index;
        if (tries >= 0)
                (void) attr_set_tries(&e[i].attrs, (unsigned) tries);
        if (successful >= 0)
                attr_set_successful(&e[i].attrs, successful > 0);
        r = prioritize(e, n, i, 0);
        if (r < 0)
                return slot_fail(r, "Cannot prioritize partition %u.", i + 1);
        disk_apply_prio_entries(d, e, n);
        r = disk_commit(d);
        return r < 0 ? r : 0;
}

int ops_set_next(const SlotContext *c, SlotId s) {
        _cleanup_(disk_freep) Disk *d = NULL;
        SlotId booted = _SLOT_INVALID;
        int r;

        r = ops_open(c, true, &d);
        if (r < 0)
                return r;
        r = ops_booted(c, d, &booted);
        if (r < 0)
                return r;
        if (s == booted)
                return slot_fail_named(SLOTS_ERROR_SLOT_BOOTED, SYNTHETIC_ERRNO(EBUSY),
                                       "Slot %s (%s) is the booted slot; set-next is for the updated one (use mark-good or rollback).",
                                       slot_to_string(s), d->slots[s].label);
        return mark_and_prioritize(d, s, 1, 0);
}

int ops_mark_good(const SlotContext *c, SlotId s, SlotId *ret_slot) {
        _cleanup_(disk_freep) Disk *d = NULL;
        int r;

        r = ops_open(c, true, &d);
        if (r < 0)
                return r;
        if (s < 0) {
                r = ops_require_booted(c, d, "name the slot to mark good", &s);
                if (r < 0)
                        return r;
        }
        r = mark_and_prioritize(d, s, 0, 1);
        if (r < 0)
                return r;
        if (ret_slot)
                *ret_slot = s;
        return 0;
}

int ops_rollback(const SlotContext *c, SlotId *ret_slot) {
        _cleanup_(disk_freep) Disk *d = NULL;
        SlotId booted = _SLOT_INVALID;
        int r;

        r = ops_open(c, true, &d);
        if (r < 0)
                return r;
        r = ops_require_booted(c, d, "cannot tell which slot to roll back to", &booted);
        if (r < 0)
                return r;
        SlotId other = slot_other(booted);
        if (!attr_successful(disk_slot_attrs(d, other)))
                return slot_fail_named(SLOTS_ERROR_ROLLBACK_REFUSED, SYNTHETIC_ERRNO(EPERM),
                                       "Refusing to roll back to slot %s (%s): it was never marked good.",
                                       slot_to_string(other), d->slots[other].label);

        r = mark_and_prioritize(d, other, -1, -1);
        if (r < 0)
                return r;
        if (ret_slot)
                *ret_slot = other;
        return 0;
}

int ops_boot_select(const SlotContext *c, bool write, json_t **ret) {
        _cleanup_(disk_freep) Disk *d = NULL;
        _cleanup_free_ PrioEntry *e = NULL;
        size_t n;
        int r;

        r = ops_open(c, write, &d);
        if (r < 0)
                return r;
        r = disk_prio_entries(d, &e, &n);
        if (r < 0)
                return log_oom();
        ssize_t i = gptprio_next(e, n);
        if (i < 0)
                return slot_fail_named(SLOTS_ERROR_NOT_BOOTABLE, SYNTHETIC_ERRNO(ENOENT),
                                       "%s: no bootable USR partition (none has priority > 0 with tries left or marked successful).",
                                       d->path);
        unsigned tries_before = attr_tries(gpt_entry_get_attrs(d->gpt, (uint32_t) i));
        bool written = false;
        if (write) {
                disk_apply_prio_entries(d, e, n);
                r = disk_commit(d);
                if (r < 0)
                        return r;
                written = r > 0;
        }

        char label[GPT_LABEL_MAX], uuid[GPT_GUID_STRING_MAX];
        uint8_t g[16];
        gpt_entry_label(d->gpt, (uint32_t) i, label);
        gpt_entry_uuid(d->gpt, (uint32_t) i, g);
        gpt_guid_to_string(g, uuid);
        SlotId s = slot_by_index(d, i);
        json_t *j = json_pack("{s:o, s:s, s:I, s:s, s:I, s:I, s:b}",
                              "slot", s >= 0 ? json_string(slot_to_string(s)) : json_null(),
                              "label", label,
                              "partition", (json_int_t) i + 1,
                              "partuuid", uuid,
                              "tries_before", (json_int_t) tries_before,
                              "tries", (json_int_t) attr_tries(e[i].attrs),
                              "written", written);
        if (!j)
                return log_oom();
        *ret = j;
        return 0;
}

int ops_set_attrs(const SlotContext *c, SlotId s, int priority, int tries, int successful) {
        _cleanup_(disk_freep) Disk *d = NULL;
        int r;

        if (priority > (int) GPT_ATTR_PRIORITY_MAX)
                return slot_fail_named(SLOTS_ERROR_INVALID_VALUE, SYNTHETIC_ERRNO(ERANGE),
                                       "Priority %d is out of range (0-15).", priority);
        if (tries > (int) GPT_ATTR_TRIES_MAX)
                return slot_fail_named(SLOTS_ERROR_INVALID_VALUE, SYNTHETIC_ERRNO(ERANGE),
                                       "Tries %d is out of range (0-15).", tries);
        if (successful > 1)
                return slot_fail_named(SLOTS_ERROR_INVALID_VALUE, SYNTHETIC_ERRNO(ERANGE),
                                       "Successful %d is out of range (0 or 1).", successful);

        r = ops_open(c, true, &d);
        if (r < 0)
                return r;
        uint64_t a = disk_slot_attrs(d, s);
        if (priority >= 0)
                (void) attr_set_priority(&a, (unsigned) priority);
        if (tries >= 0)
                (void) attr_set_tries(&a, (unsigned) tries);
        if (successful >= 0)
                attr_set_successful(&a, successful);
        gpt_entry_set_attrs(d->gpt, d->slots[s].index, a);
        r = disk_commit(d);
        return r < 0 ? r : 0;
}

int ops_repair(const SlotContext *c, json_t **ret) {
        _cleanup_(disk_freep) Disk *d = NULL;
        GptRepairResult result = {};
        int r;

        r = ops_open_disk(c, true, &d);
        if (r < 0)
                return r;
        json_t *found = json_pack("{s:s, s:s, s:s}",
                                  "primary", copy_state(d->gpt, GPT_PRIMARY),
                                  "backup", copy_state(d->gpt, GPT_BACKUP),
                                  "in_use", d->gpt->source == GPT_PRIMARY ? "primary" : "backup");
        if (!found)
                return log_oom();
        r = disk_repair(d, &result);
        if (r < 0) {
                json_decref(found);
                return r;
        }
        json_t *rewritten = json_array();
        if (!rewritten) {
                json_decref(found);
                return log_oom();
        }
        if (result.rewritten[GPT_PRIMARY])
                json_array_append_new(rewritten, json_string("primary"));
        if (result.rewritten[GPT_BACKUP])
                json_array_append_new(rewritten, json_string("backup"));
        json_t *j = json_pack("{s:s, s:o, s:o, s:I, s:b}",
                              "disk", d->path,
                              "found", found,
                              "rewritten", rewritten,
                              "sectors_written", (json_int_t) result.sectors_written,
                              "written", r > 0);
        if (!j)
                return log_oom();
        *ret = j;
        return r;
}

static int open_kernel(const SlotContext *c, SlotId s, int *ret) {
        const char *esp = c->esp ?: "/boot";
        _cleanup_close_ int dfd = -EBADF, fdir = -EBADF;
        char name[32];

        dfd = open(esp, O_DIRECTORY | O_CLOEXEC | O_RDONLY);
        if (dfd < 0)
                return slot_fail_named(SLOTS_ERROR_NO_ESP, errno, "Cannot open the ESP directory %s: %m", esp);
        if (mkdirat(dfd, "flatcar", 0755) < 0 && errno != EEXIST)
                return slot_fail_named(SLOTS_ERROR_NO_ESP, errno, "Cannot create %s/flatcar: %m", esp);
        fdir = openat(dfd, "flatcar", O_DIRECTORY | O_CLOEXEC | O_RDONLY | O_NOFOLLOW);
        if (fdir < 0)
                return slot_fail_named(SLOTS_ERROR_NO_ESP, errno, "Cannot open %s/flatcar: %m", esp);
        snprintf(name, sizeof(name), "vmlinuz-%s", slot_to_string(s));
        int fd = openat(fdir, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
        if (fd < 0)
                return slot_fail_named(SLOTS_ERROR_NO_ESP, errno, "Cannot open %s/flatcar/%s for writing: %m", esp,
                                       name);
        *ret = fd;
        return 0;
}

int ops_open_inactive(const SlotContext *c, bool want_kernel, InactiveSlot *ret) {
        _cleanup_(disk_freep) Disk *d = NULL;
        _cleanup_free_ PrioEntry *e = NULL;
        _cleanup_close_ int usr_fd = -EBADF, kernel_fd = -EBADF;
        uint64_t offset;
        size_t n;
        SlotId booted = _SLOT_INVALID;
        int r;

        r = ops_open(c, true, &d);
        if (r < 0)
                return r;
        r = ops_require_booted(c, d, "refusing to hand out either slot", &booted);
        if (r < 0)
                return r;
        SlotId s = slot_other(booted);
        uint32_t i = d->slots[s].index;

        /* The slot is about to be overwritten: it must not be chosen by the boot loader until it has been
         * written and verified and set-next makes it bootable again. The booted slot must stay bootable. */
        r = disk_prio_entries(d, &e, &n);
        if (r < 0)
                return log_oom();
        (void) attr_set_priority(&e[i].attrs, 0);
        (void) attr_set_tries(&e[i].attrs, 0);
        attr_set_successful(&e[i].attrs, false);
        ssize_t chosen = gptprio_choose(e, n);
        if (chosen < 0 || (uint32_t) chosen != d->slots[booted].index)
                return slot_fail_named(SLOTS_ERROR_NOT_BOOTABLE, SYNTHETIC_ERRNO(EPERM),
                                       "Refusing to clear slot %s: the booted slot %s (%s) would then not be the boot loader's choice; mark it good first.",
                                       slot_to_string(s), slot_to_string(booted), d->slots[booted].label);
        disk_apply_prio_entries(d, e, n);
        r = disk_commit(d);
        if (r < 0)
                return r;

        /* Belt and braces: whatever happened above, never the booted slot. */
        if (i == d->slots[booted].index)
                return slot_fail(SYNTHETIC_ERRNO(EPERM), "Internal error: inactive slot equals booted slot.");
        r = disk_open_slot_rw(d, s, &usr_fd, &offset);
        if (r < 0)
                return r;
        if (want_kernel) {
                r = open_kernel(c, s, &kernel_fd);
                if (r < 0)
                        return r;
        }

        *ret = (InactiveSlot) {
                .slot = s,
                .offset = offset,
                .size = d->slots[s].size,
                .usr_fd = TAKE_FD(usr_fd),
                .kernel_fd = TAKE_FD(kernel_fd),
        };
        strcpy(ret->label, d->slots[s].label);
        strcpy(ret->partuuid, d->slots[s].partuuid);
        return 0;
}
