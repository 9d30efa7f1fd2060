/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A disk (block device or image file) with a Flatcar layout: the GPT located and listed with libfdisk,
 * checked and written at sector level (slot-manager-gpt.h), the two /usr slots found by type and label,
 * and which slot the running system booted from. */

#include <sys/types.h>

#include "slot-manager-attr.h"
#include "slot-manager-gpt.h"

#define USR_TYPE_GUID "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6"
#define USR_A_PARTUUID "7130c94a-213a-4e5a-8e26-6cce9662f132"
#define USR_B_PARTUUID "e03dd35c-7c2d-4a47-b3fe-27f15780a57c"

typedef enum SlotId {
        SLOT_A,
        SLOT_B,
        _SLOT_MAX,
        _SLOT_INVALID = -EINVAL,
} SlotId;

/* "a"/"b". */
const char *slot_to_string(SlotId s);
/* a, b, usr-a, usr-b, root-a, root-b, in any case. */
SlotId slot_from_string(const char *s);
static inline SlotId slot_other(SlotId s) {
        return s == SLOT_A ? SLOT_B : SLOT_A;
}

typedef struct Slot {
        SlotId id;
        uint32_t index; /* entry index; the partition number is index + 1 */
        char label[GPT_LABEL_MAX];
        char partuuid[GPT_GUID_STRING_MAX];
        uint64_t offset, size; /* bytes, within the disk */
} Slot;

typedef struct Disk {
        char *path;
        int fd;
        bool writable, is_block;
        dev_t devnum; /* st_rdev of a block device */
        GptIO io;
        GptTable *gpt;
        uint8_t *entries_as_read;
        Slot slots[_SLOT_MAX];
} Disk;

/* For tests against tools that only know other types (e.g. cgpt's ChromeOS kernel type). */
int disk_set_usr_type(const char *guid);

/* Opens path (read-only or for writing), locks it (shared or exclusive), reads and checks the GPT,
 * finds both slots. Logs one clear error and fails on: no GPT, both copies damaged, a slot missing or
 * ambiguous, libfdisk disagreeing with the raw table. */
int disk_open(const char *path, bool writable, Disk **ret);
Disk *disk_free(Disk *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Disk *, disk_free);

uint64_t disk_slot_attrs(const Disk *d, SlotId s);

/* The entries of the table as PrioEntry (USR type marked), in table order; and back. */
int disk_prio_entries(const Disk *d, PrioEntry **ret, size_t *ret_n);
void disk_apply_prio_entries(Disk *d, const PrioEntry *entries, size_t n);

/* Writes the table if anything changed or a copy needs repair; returns 1 if written, 0 if not. */
int disk_commit(Disk *d);

/* Repairs a damaged or stale GPT copy from the other one (gpt_repair()), logging what it found and did.
 * Must be called before any change to the entries. Returns 1 if it wrote, 0 if both copies were valid
 * and equal (nothing written). */
int disk_repair(Disk *d, GptRepairResult *ret);

/* The disk holding /usr (following dm-verity to the partition underneath); caller frees. */
int disk_find_usr_disk(char **ret_path);

/* The booted slot, from the kernel command line (usr=, mount.usr=, verity.usr= with PARTUUID= or
 * PARTLABEL=; cmdline_path NULL means /proc/cmdline) or else, for a block device, from the partition
 * under /usr. *ret is _SLOT_INVALID when the booted /usr is not a slot of this disk or unknown. */
int disk_find_booted(const Disk *d, const char *cmdline_path, SlotId *ret);
/* Parses a command line for the /usr source; ret_* get "PARTUUID"/"PARTLABEL" and the value. */
int cmdline_find_usr(const char *cmdline, char **ret_kind, char **ret_value);

/* Opens the partition of slot s for writing: its block device node (exclusively) for a block device
 * (*ret_offset = 0), the image file itself for an image (*ret_offset = the slot's byte offset). */
int disk_open_slot_rw(const Disk *d, SlotId s, int *ret_fd, uint64_t *ret_offset);
