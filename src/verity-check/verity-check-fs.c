/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "verity-check-fs.h"

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
static uint64_t le64(const uint8_t *p) {
        return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32;
}

static const char *const fs_type_table[_FS_TYPE_MAX] = {
        [FS_EXT] = "ext4",
        [FS_SQUASHFS] = "squashfs",
        [FS_EROFS] = "erofs",
};

const char *fs_type_to_string(FsType t) {
        if (t < 0 || t >= _FS_TYPE_MAX)
                return NULL;
        return fs_type_table[t];
}

/* ext2/3/4: superblock at 1024; s_blocks_count_lo at 4, s_log_block_size at 24, s_magic at 56,
 * s_feature_incompat at 96 (INCOMPAT_64BIT = 0x80 enables s_blocks_count_hi at 336). */
static int probe_ext(const uint8_t *head, size_t size, uint64_t *ret) {
        const uint8_t *sb = head + 1024;
        uint64_t blocks;
        uint32_t log;

        if (size < 1024 + 340 || le16(sb + 56) != 0xEF53)
                return -ENOENT;
        log = le32(sb + 24);
        if (log > 6) /* 1 KiB << 6 = 64 KiB, the largest ext4 block */
                return -EBADMSG;
        blocks = le32(sb + 4);
        if (le32(sb + 96) & 0x80)
                blocks |= (uint64_t) le32(sb + 336) << 32;
        if (blocks == 0 || blocks > (UINT64_MAX >> (10 + log)))
                return -EBADMSG;
        *ret = blocks << (10 + log);
        return 0;
}

/* squashfs 4: "hsqs" at 0, s_major at 28, bytes_used at 40. */
static int probe_squashfs(const uint8_t *head, size_t size, uint64_t *ret) {
        uint64_t used;

        if (size < 96 || le32(head) != 0x73717368)
                return -ENOENT;
        if (le16(head + 28) != 4)
                return -EBADMSG;
        used = le64(head + 40);
        if (used == 0 || used > UINT64_MAX / 2)
                return -EBADMSG;
        *ret = used;
        return 0;
}

/* erofs: superblock at 1024; magic at 0, blkszbits at 12, blocks at 36. */
static int probe_erofs(const uint8_t *head, size_t size, uint64_t *ret) {
        const uint8_t *sb = head + 1024;
        unsigned bits;
        uint32_t blocks;

        if (size < 1024 + 128 || le32(sb) != 0xE0F5E1E2)
                return -ENOENT;
        bits = sb[12];
        blocks = le32(sb + 36);
        if (bits < 9 || bits > 16 || blocks == 0)
                return -EBADMSG;
        *ret = (uint64_t) blocks << bits;
        return 0;
}

int fs_probe_size(const uint8_t *head, size_t head_size, FsType *ret_type, uint64_t *ret_size) {
        static int (*const probes[_FS_TYPE_MAX])(const uint8_t *, size_t, uint64_t *) = {
                [FS_EXT] = probe_ext,
                [FS_SQUASHFS] = probe_squashfs,
                [FS_EROFS] = probe_erofs,
        };

        for (FsType t = 0; t < _FS_TYPE_MAX; t++) {
                uint64_t size;
                int r = probes[t](head, head_size, &size);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                if (ret_type)
                        *ret_type = t;
                if (ret_size)
                        *ret_size = size;
                return 0;
        }
        return -ENOENT;
}
