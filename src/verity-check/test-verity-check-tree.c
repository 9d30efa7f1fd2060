/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include <fcntl.h>

#include "hash.h"
#include "verity-check-tree.h"

static void test_flatcar_geometry(void **state) {
        VerityGeometry g;

        assert_int_equal(verity_geometry_compute(VERITY_FLATCAR_DATA_BLOCKS, 4096, 4096, 32, VERITY_FLATCAR_HASH_OFFSET, &g), 0);
        assert_int_equal(g.digest_size_full, 32);
        assert_int_equal(g.hashes_per_block, 128);
        assert_int_equal(g.levels, 3);
        assert_int_equal(g.level_blocks[0], 2032);
        assert_int_equal(g.level_blocks[1], 16);
        assert_int_equal(g.level_blocks[2], 1);
        /* Stored top level first. */
        assert_int_equal(g.level_start[2], 0);
        assert_int_equal(g.level_start[1], 1);
        assert_int_equal(g.level_start[0], 17);
        assert_int_equal(g.tree_blocks, 2049);
        assert_int_equal(g.tree_offset, VERITY_FLATCAR_HASH_OFFSET + 4096);
        assert_int_equal(g.end_offset, VERITY_FLATCAR_SLOT_SIZE);
        /* The top block sits right after the superblock block, the first leaf 17 blocks later. */
        assert_int_equal(verity_geometry_hash_block(&g, 2, 0), 260095);
        assert_int_equal(verity_geometry_hash_block(&g, 0, 0), 260112);
        assert_int_equal(verity_geometry_hash_block(&g, 0, 2031), 262143);

        /* The largest data area that leaves room for superblock and tree in 1 GiB is Flatcar's. */
        assert_int_equal(verity_max_data_blocks(VERITY_FLATCAR_SLOT_SIZE, 4096, 32), VERITY_FLATCAR_DATA_BLOCKS);
}

static void test_geometry_edges(void **state) {
        VerityGeometry g;

        /* One block: no tree, its digest is the root. */
        assert_int_equal(verity_geometry_compute(1, 4096, 4096, 32, 4096, &g), 0);
        assert_int_equal(g.levels, 0);
        assert_int_equal(g.tree_blocks, 0);
        /* 128 blocks fit one leaf block; 129 need two levels. */
        assert_int_equal(verity_geometry_compute(128, 4096, 4096, 32, 128 * 4096, &g), 0);
        assert_int_equal(g.levels, 1);
        assert_int_equal(g.tree_blocks, 1);
        assert_int_equal(verity_geometry_compute(129, 4096, 4096, 32, 129 * 4096, &g), 0);
        assert_int_equal(g.levels, 2);
        assert_int_equal(g.level_blocks[0], 2);
        assert_int_equal(g.tree_blocks, 3);
        /* Hash offset not on a hash block: the tree starts at the next block after the superblock. */
        assert_int_equal(verity_geometry_compute(10, 4096, 4096, 32, 41472, &g), 0);
        assert_int_equal(g.tree_offset, 45056);
        /* sha1: 20-byte digests padded to 32. sha512: 64 per digest, 64 per 4 KiB block. */
        assert_int_equal(verity_geometry_compute(1000, 4096, 4096, 20, 4096000, &g), 0);
        assert_int_equal(g.digest_size_full, 32);
        assert_int_equal(verity_geometry_compute(1000, 4096, 4096, 64, 4096000, &g), 0);
        assert_int_equal(g.hashes_per_block, 64);
        assert_int_equal(g.level_blocks[0], 16);

        assert_int_equal(verity_geometry_compute(0, 4096, 4096, 32, 0, &g), -EINVAL);
        assert_int_equal(verity_geometry_compute(10, 4000, 4096, 32, 0, &g), -EINVAL);
        assert_int_equal(verity_geometry_compute(10, 4096, 32, 32, 0, &g), -EINVAL);
        assert_int_equal(verity_geometry_compute(UINT64_MAX, 4096, 4096, 32, 0, &g), -EFBIG);
        assert_int_equal(verity_geometry_compute(10, 4096, 4096, 32, UINT64_MAX - 100, &g), -EOVERFLOW);
}

static void test_superblock(void **state) {
        VeritySuperblock sb = { .version = 1, .hash_type = 1, .data_block_size = 4096, .hash_block_size = 4096,
                                .data_blocks = VERITY_FLATCAR_DATA_BLOCKS, .salt_size = 32 },
                         out;
        uint8_t buf[VERITY_SUPERBLOCK_SIZE];
        char reason[256];

        strcpy(sb.algorithm, "sha256");
        for (unsigned i = 0; i < 32; i++)
                sb.salt[i] = (uint8_t) i;
        for (unsigned i = 0; i < 16; i++)
                sb.uuid[i] = (uint8_t) (0xa0 + i);
        verity_superblock_build(&sb, buf);
        assert_memory_equal(buf, "verity\0\0\1\0\0\0\1\0\0\0", 16);
        assert_int_equal(buf[72], 0xfe); /* 260094 = 0x3f7fe */
        assert_int_equal(buf[73], 0xf7);
        assert_int_equal(buf[74], 0x03);
        assert_int_equal(buf[80], 32);
        assert_int_equal(buf[88 + 31], 31);
        assert_int_equal(verity_superblock_parse(buf, sizeof buf, &out, reason, sizeof reason), 0);
        assert_string_equal(out.algorithm, "sha256");
        assert_int_equal(out.data_blocks, VERITY_FLATCAR_DATA_BLOCKS);
        assert_int_equal(out.salt_size, 32);
        assert_memory_equal(out.salt, sb.salt, 32);
        assert_memory_equal(out.uuid, sb.uuid, 16);

        assert_int_equal(verity_superblock_parse(buf, 100, &out, reason, sizeof reason), -EBADMSG);
        assert_non_null(strstr(reason, "truncated"));

        buf[0] = 'V';
        assert_int_equal(verity_superblock_parse(buf, sizeof buf, &out, reason, sizeof reason), -EBADMSG);
        assert_non_null(strstr(reason, "signature"));
        buf[0] = 'v';

        buf[80] = 0x01; /* salt size 257 */
        buf[81] = 0x01;
        assert_int_equal(verity_superblock_parse(buf, sizeof buf, &out, reason, sizeof reason), -EBADMSG);
        assert_non_null(strstr(reason, "salt size 257"));
        buf[80] = 32;
        buf[81] = 0;

        buf[12] = 0;
        assert_int_equal(verity_superblock_parse(buf, sizeof buf, &out, reason, sizeof reason), -EOPNOTSUPP);
        buf[12] = 1;
        buf[8] = 2;
        assert_int_equal(verity_superblock_parse(buf, sizeof buf, &out, reason, sizeof reason), -EOPNOTSUPP);
        buf[8] = 1;
        memcpy(buf + 32, "md5", 4);
        assert_int_equal(verity_superblock_parse(buf, sizeof buf, &out, reason, sizeof reason), -EOPNOTSUPP);
        assert_non_null(strstr(reason, "md5"));
        memset(buf + 32, 'a', 32);
        assert_int_equal(verity_superblock_parse(buf, sizeof buf, &out, reason, sizeof reason), -EBADMSG);
        memset(buf + 32, 0, 32);
        memcpy(buf + 32, "sha256", 6);
        buf[65] = 0x11; /* data block size 0x1100: not a power of two */
        assert_int_equal(verity_superblock_parse(buf, sizeof buf, &out, reason, sizeof reason), -EBADMSG);
        assert_non_null(strstr(reason, "data block size"));
        buf[65] = 0x10;
        memset(buf + 72, 0, 8);
        assert_int_equal(verity_superblock_parse(buf, sizeof buf, &out, reason, sizeof reason), -EBADMSG);
        assert_non_null(strstr(reason, "zero data blocks"));
}

/* A small slot in a temporary file: format, verify, then damage it. */
static int make_slot(uint64_t data_blocks, uint64_t slot_blocks, VeritySlot *ret) {
        char path[] = "/tmp/test-verity-XXXXXX";
        int fd = mkstemp(path);
        uint8_t block[4096];
        assert_true(fd >= 0);
        unlink(path);
        assert_int_equal(ftruncate(fd, (off_t) (slot_blocks * 4096)), 0);
        for (uint64_t b = 0; b < data_blocks; b++) {
                for (size_t i = 0; i < sizeof block; i++)
                        block[i] = (uint8_t) (b * 31 + i * 7);
                assert_int_equal(pwrite(fd, block, sizeof block, (off_t) (b * 4096)), (ssize_t) sizeof block);
        }
        return verity_slot_from_fd(fd, 0, UINT64_MAX, ret);
}

static void flip(int fd, uint64_t pos) {
        uint8_t c;
        assert_int_equal(pread(fd, &c, 1, (off_t) pos), 1);
        c ^= 0x40;
        assert_int_equal(pwrite(fd, &c, 1, (off_t) pos), 1);
}

static void test_format_verify(void **state) {
        const uint8_t salt[32] = { 1, 2, 3 };
        VeritySlot slot;
        VerityFormatOptions fo = { .data_blocks = 20000, .hash_offset = UINT64_MAX, .salt = salt, .salt_size = 32 };
        VerityVerifyResult fr, vr, fr1;
        VerityFailure f;
        uint8_t root[32];
        VerityVerifyOptions vo = { .hash_offset = 20000 * 4096, .expected_root = root, .expected_root_size = 32 };
        VerityGeometry g;

        assert_int_equal(make_slot(20000, 20200, &slot), 0);
        fo.threads = 1;
        assert_int_equal(verity_format(&slot, &fo, &fr1, &f), 0);
        fo.threads = 7;
        assert_int_equal(verity_format(&slot, &fo, &fr, &f), 0);
        /* Same tree whatever the number of threads. */
        assert_string_equal(fr.root_hash, fr1.root_hash);
        assert_int_equal(fr.data_blocks, 20000);
        assert_int_equal(fr.hash_offset, 20000 * 4096);
        assert_int_equal(hex_decode(fr.root_hash, root, 32), 0);

        for (unsigned t = 1; t <= 4; t++) {
                vo.threads = t;
                assert_int_equal(verity_verify(&slot, &vo, &vr, &f), 0);
                assert_string_equal(vr.root_hash, fr.root_hash);
        }

        assert_int_equal(verity_geometry_compute(20000, 4096, 4096, 32, 20000 * 4096, &g), 0);
        assert_int_equal(g.levels, 3);
        assert_int_equal(g.level_blocks[1], 2);

        /* Data blocks 12345 and 19000 damaged: the first one is named, whatever the threads. */
        flip(slot.fd, 19000 * 4096 + 5);
        flip(slot.fd, 12345 * 4096 + 100);
        for (unsigned t = 1; t <= 3; t++) {
                vo.threads = t;
                assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EBADMSG);
                assert_int_equal(f.kind, VERITY_FAILURE_CORRUPTED);
                assert_int_equal(f.area, VERITY_AREA_DATA);
                assert_int_equal(f.block, 12345);
        }
        flip(slot.fd, 19000 * 4096 + 5);
        flip(slot.fd, 12345 * 4096 + 100);
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), 0);

        /* A leaf block. */
        flip(slot.fd, g.tree_offset + (g.level_start[0] + 100) * 4096 + 17);
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EBADMSG);
        assert_int_equal(f.area, VERITY_AREA_HASH);
        assert_int_equal(f.level, 0);
        assert_int_equal(f.index, 100);
        assert_int_equal(f.block, 20000 + 1 + g.level_start[0] + 100);
        flip(slot.fd, g.tree_offset + (g.level_start[0] + 100) * 4096 + 17);

        /* The top block: the root no longer matches, but the level below agrees with all but one digest. */
        flip(slot.fd, g.tree_offset + 32 * 1 + 1);
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EBADMSG);
        assert_int_equal(f.kind, VERITY_FAILURE_CORRUPTED);
        assert_int_equal(f.area, VERITY_AREA_HASH);
        assert_int_equal(f.level, 2);
        assert_int_equal(f.block, 20001);
        flip(slot.fd, g.tree_offset + 32 * 1 + 1);
        /* The zero padding after the top block's last digest is covered too. */
        flip(slot.fd, g.tree_offset + 4000);
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EBADMSG);
        assert_int_equal(f.kind, VERITY_FAILURE_CORRUPTED);
        assert_int_equal(f.block, 20001);
        flip(slot.fd, g.tree_offset + 4000);
        /* A block of the middle level. */
        flip(slot.fd, g.tree_offset + 4096 * 2 + 9);
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EBADMSG);
        assert_int_equal(f.area, VERITY_AREA_HASH);
        assert_int_equal(f.level, 1);
        assert_int_equal(f.index, 1);
        assert_int_equal(f.block, 20003);
        flip(slot.fd, g.tree_offset + 4096 * 2 + 9);

        /* The salt in the superblock. */
        flip(slot.fd, 20000 * 4096 + 88 + 5);
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EBADMSG);
        assert_int_equal(f.area, VERITY_AREA_SUPERBLOCK);
        assert_int_equal(f.block, 20000);
        flip(slot.fd, 20000 * 4096 + 88 + 5);

        /* Another expected hash. */
        root[0] ^= 1;
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EKEYREJECTED);
        assert_int_equal(f.kind, VERITY_FAILURE_ROOT_HASH_MISMATCH);
        assert_string_equal(f.actual_root, fr.root_hash);
        root[0] ^= 1;

        /* The superblock's signature. */
        flip(slot.fd, 20000 * 4096 + 1);
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EBADMSG);
        assert_int_equal(f.kind, VERITY_FAILURE_BAD_SUPERBLOCK);
        flip(slot.fd, 20000 * 4096 + 1);

        /* Hash offset past the end, and a device cut short of its tree. */
        vo.hash_offset = 20200 * 4096;
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -ERANGE);
        assert_non_null(strstr(f.message, "beyond the end"));
        vo.hash_offset = 20000 * 4096;
        assert_int_equal(ftruncate(slot.fd, (off_t) (g.end_offset - 4096)), 0);
        slot.size = g.end_offset - 4096;
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EBADMSG);
        assert_non_null(strstr(f.message, "hash tree shorter than the data"));

        close(slot.fd);
}

static int count_cb(uint64_t done, uint64_t total, void *userdata) {
        uint64_t *last = userdata;
        assert_true(done <= total);
        assert_true(done >= *last);
        *last = done;
        return 0;
}

static int cancel_cb(uint64_t done, uint64_t total, void *userdata) {
        return -EINTR;
}

static void test_progress_and_small(void **state) {
        VeritySlot slot;
        VerityFormatOptions fo = { .data_blocks = UINT64_MAX, .hash_offset = UINT64_MAX };
        VerityVerifyResult fr, vr;
        VerityFailure f;
        uint8_t root[32];
        uint64_t last = 0;
        VerityVerifyOptions vo = { .hash_offset = UINT64_MAX, .expected_root = root, .expected_root_size = 32,
                                   .progress = count_cb, .userdata = &last };

        /* No filesystem: the data area is as large as fits, and the tree goes right after it. */
        assert_int_equal(make_slot(300, 300, &slot), 0);
        assert_int_equal(verity_format(&slot, &fo, &fr, &f), 0);
        assert_int_equal(fr.data_blocks, verity_max_data_blocks(300 * 4096, 4096, 32));
        assert_string_equal(fr.hash_offset_source, "fill-slot");
        assert_int_equal(strlen(fr.salt), 64);
        assert_int_equal(hex_decode(fr.root_hash, root, 32), 0);
        vo.hash_offset = fr.hash_offset;
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), 0);
        assert_int_equal(last, fr.data_blocks);
        vo.progress = cancel_cb;
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EINTR);
        close(slot.fd);

        /* One data block: no tree at all. */
        fo.data_blocks = 1;
        assert_int_equal(make_slot(1, 3, &slot), 0);
        assert_int_equal(verity_format(&slot, &fo, &fr, &f), 0);
        assert_int_equal(hex_decode(fr.root_hash, root, 32), 0);
        vo.hash_offset = 4096;
        vo.progress = NULL;
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), 0);
        flip(slot.fd, 7);
        assert_int_equal(verity_verify(&slot, &vo, &vr, &f), -EKEYREJECTED);
        close(slot.fd);

        /* A slot too small for its tree. */
        fo.data_blocks = 300;
        assert_int_equal(make_slot(300, 301, &slot), 0);
        slot.growable = false;
        assert_int_equal(verity_format(&slot, &fo, &fr, &f), -ENOSPC);
        close(slot.fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_flatcar_geometry),
                cmocka_unit_test(test_geometry_edges),
                cmocka_unit_test(test_superblock),
                cmocka_unit_test(test_format_verify),
                cmocka_unit_test(test_progress_and_small),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
