/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where the expected root hash of /usr comes from (spec §7): 64 lower-case hex characters written into
 * the kernel image at byte 64 (amd64) or 512 (arm64), which GRUB appends to the kernel command line as
 * verity.usrhash=. */

#include "macro.h"

#define ROOT_HASH_HEX_LEN 64

typedef enum KernelArch {
        KERNEL_ARCH_AMD64,
        KERNEL_ARCH_ARM64,
        _KERNEL_ARCH_MAX,
        _KERNEL_ARCH_INVALID = -EINVAL,
} KernelArch;

const char *kernel_arch_to_string(KernelArch a);
/* "amd64"/"x86_64"/"x86-64", "arm64"/"aarch64". */
KernelArch kernel_arch_from_string(const char *s);
uint64_t kernel_arch_hash_offset(KernelArch a);
/* The architecture this program was built for, or _KERNEL_ARCH_INVALID. */
KernelArch kernel_arch_native(void);
/* From the image header: arm64 "ARM\x64" magic at 0x38, x86 "HdrS" at 0x202; -ENOENT if neither. */
int kernel_detect_arch(int fd, KernelArch *ret);

/* Checks that s is exactly 64 characters of [0-9a-fA-F]; -EINVAL otherwise. */
int root_hash_validate(const char *s);

/* Reads the 64 characters at the arch's offset; -ENODATA if they are not all lower-case hex (no hash
 * embedded), -EIO if the file is too short. ret gets 65 bytes (NUL-terminated). */
int kernel_read_root_hash(int fd, KernelArch arch, char ret[ROOT_HASH_HEX_LEN + 1]);
/* Writes the hash (lower-cased) at the arch's offset; -ENOSPC if the file is shorter than the hash end. */
int kernel_write_root_hash(int fd, KernelArch arch, const char *hex);

/* Finds the last verity.usrhash= on a kernel command line (quotes handled). -ENOENT if absent, -EINVAL
 * if its value is not 64 hex characters. ret gets 65 bytes. */
int cmdline_get_usrhash(const char *cmdline, char ret[ROOT_HASH_HEX_LEN + 1]);
/* The value of the last KEY= word on the command line (caller frees), or -ENOENT. */
int cmdline_get_value(const char *cmdline, const char *key, char **ret);
