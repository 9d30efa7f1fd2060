/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The verbs of slot-manager, shared by the command line and the varlink service. Each opens the disk,
 * does its work, writes the GPT only if something changed, and on failure logs one clear message
 * (recorded for varlink, see slot-manager-error.h) and writes nothing. */

#include <jansson.h>

#include "slot-manager-disk.h"

typedef struct SlotContext {
        const char *disk;    /* the disk or image; NULL: the disk holding /usr */
        const char *esp;     /* ESP mount point, default /boot */
        const char *cmdline; /* kernel command line file; NULL: /proc/cmdline */
} SlotContext;

/* {disk, sector_size, gpt: {primary, backup, in_use}, booted, next, next_partition, slots: [...]} */
int ops_status(const SlotContext *c, json_t **ret);
/* successful=0, tries=1, prioritize; refuses the booted slot. */
int ops_set_next(const SlotContext *c, SlotId s);
/* successful=1, tries=0, prioritize; s < 0 means the booted slot. *ret_slot gets the slot marked. */
int ops_mark_good(const SlotContext *c, SlotId s, SlotId *ret_slot);
/* Prioritizes the other slot if it was ever marked good. */
int ops_rollback(const SlotContext *c, SlotId *ret_slot);
/* gptprio.next: {slot, label, partition, partuuid, tries_before, tries, written}. */
int ops_boot_select(const SlotContext *c, bool write, json_t **ret);
/* cgpt add -P/-T/-S style: negative values leave a field alone; out-of-range values are refused. */
int ops_set_attrs(const SlotContext *c, SlotId s, int priority, int tries, int successful);
/* Checks both GPT copies and rewrites a damaged or stale one from the other (disk_repair()); every other
 * operation that may write does the same first. {disk, found: {primary, backup, in_use}, rewritten:
 * ["primary"|"backup"...], sectors_written, written}; returns 1 if it wrote. Both copies damaged: fails,
 * writing nothing. */
int ops_repair(const SlotContext *c, json_t **ret);

typedef struct InactiveSlot {
        SlotId slot;
        char label[GPT_LABEL_MAX];
        char partuuid[GPT_GUID_STRING_MAX];
        uint64_t offset, size;
        int usr_fd;
        int kernel_fd; /* -EBADF if not asked for */
} InactiveSlot;

/* Makes the inactive slot unbootable (so a half-written slot never boots), then opens it for writing
 * and, if want_kernel, creates/truncates <ESP>/flatcar/vmlinuz-<slot>. */
int ops_open_inactive(const SlotContext *c, bool want_kernel, InactiveSlot *ret);
