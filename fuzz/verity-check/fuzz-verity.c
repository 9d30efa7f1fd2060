/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Superblock, layout and tree parsing. Input: u32 LE hash offset in 512-byte units (0xFFFFFFFF: find
 * it like verity-check does), then the slot image. Each input is verified twice: against an all-zero
 * root hash (root mismatch classification) and against the tree's own root (every level and block). */
#include <sys/mman.h>

#include "hash.h"
#include "log.h"
#include "verity-check-fs.h"
#include "verity-check-tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool initialized = false;
        uint8_t root[SHA256_DIGEST_SIZE] = {};
        VeritySuperblock sb;
        VerityVerifyResult res;
        VerityFailure f;
        VeritySlot slot;
        char reason[256];
        uint64_t fs_size;
        FsType type;
        uint32_t ho;
        int fd;

        if (!initialized) {
                log_set_max_level(LOG_CRIT);
                initialized = true;
        }
        if (size < 4 || size > 4 + (1u << 20))
                return 0;
        ho = (uint32_t) data[0] | (uint32_t) data[1] << 8 | (uint32_t) data[2] << 16 | (uint32_t) data[3] << 24;
        data += 4;
        size -= 4;

        (void) verity_superblock_parse(data, size, &sb, reason, sizeof reason);
        (void) fs_probe_size(data, size, &type, &fs_size);

        fd = memfd_create("fuzz-verity", MFD_CLOEXEC);
        if (fd < 0)
                return 0;
        if (write(fd, data, size) != (ssize_t) size || verity_slot_from_fd(fd, 0, UINT64_MAX, &slot) < 0) {
                close(fd);
                return 0;
        }

        VerityVerifyOptions opts = {
                .hash_offset = ho == UINT32_MAX ? UINT64_MAX : (uint64_t) ho * 512,
                .expected_root = root,
                .expected_root_size = sizeof root,
                .threads = 2,
        };
        if (verity_verify(&slot, &opts, &res, &f) < 0 && f.actual_root[0] &&
            hex_decode(f.actual_root, root, sizeof root) >= 0)
                (void) verity_verify(&slot, &opts, &res, &f);

        close(fd);
        return 0;
}
