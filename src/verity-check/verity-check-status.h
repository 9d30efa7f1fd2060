/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whether /usr of the running system is a dm-verity mapping (libcryptsetup), with which root hash, and
 * how that compares with verity.usrhash= and with the hash embedded in the booted slot's kernel. */

#include "macro.h"

#define VERITY_HASH_MAX 128

typedef struct VerityStatus {
        bool device_mapper;   /* the kernel offers device-mapper */
        char *dm_error;       /* why the mapping could not be looked at, if so */
        bool mapped;          /* a "usr" mapping exists */
        bool is_verity;
        bool corrupted;       /* the kernel has seen a bad block */
        char *mapped_root_hash;
        char *mapped_data_device;
        uint64_t mapped_hash_offset;
        uint64_t mapped_data_blocks;
        char *cmdline_hash;   /* verity.usrhash= */
        char *usr_spec;       /* verity.usr= or usr= */
        char *booted_slot;    /* "a" or "b" */
        char *kernel_path;
        char *kernel_hash;
        char *kernel_error;
} VerityStatus;

VerityStatus *verity_status_free(VerityStatus *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(VerityStatus *, verity_status_free);

bool device_mapper_available(const char *root);
/* root: prefix for /proc, /dev, /sys and the ESP (NULL = /). cmdline_path overrides /proc/cmdline, slot
 * ("a"/"b") overrides the booted slot found from the command line. */
int verity_status_collect(const char *root, const char *cmdline_path, const char *esp, const char *slot,
                          VerityStatus **ret);
