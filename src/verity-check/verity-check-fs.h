/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Size of the filesystem at the start of a slot, read from its superblock: where Flatcar's tooling puts
 * the verity hash area (e2size) when no hash offset is given. */

#include "macro.h"

/* Bytes of the slot's head that fs_probe_size() needs. */
#define FS_PROBE_SIZE 4096

typedef enum FsType {
        FS_EXT,
        FS_SQUASHFS,
        FS_EROFS,
        _FS_TYPE_MAX,
        _FS_TYPE_INVALID = -EINVAL,
} FsType;

const char *fs_type_to_string(FsType t);

/* head holds the first head_size bytes of the slot. Returns 0 and the filesystem's size in bytes (as
 * recorded by the filesystem, not rounded), -ENOENT if no known filesystem is there, -EBADMSG if a
 * superblock is there but its size fields are impossible. */
int fs_probe_size(const uint8_t *head, size_t head_size, FsType *ret_type, uint64_t *ret_size);
