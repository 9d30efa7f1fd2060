/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "verity-check-fs.h"

static void put32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void test_ext(void **state) {
        uint8_t head[FS_PROBE_SIZE] = {};
        uint64_t size;
        FsType t;

        assert_int_equal(fs_probe_size(head, sizeof head, &t, &size), -ENOENT);
        /* Flatcar's /usr: 260094 blocks of 4 KiB. */
        head[1024 + 56] = 0x53;
        head[1024 + 57] = 0xEF;
        put32(head + 1024 + 4, 260094);
        put32(head + 1024 + 24, 2);
        assert_int_equal(fs_probe_size(head, sizeof head, &t, &size), 0);
        assert_int_equal(t, FS_EXT);
        assert_int_equal(size, 1065345024);
        assert_string_equal(fs_type_to_string(t), "ext4");
        /* 64-bit block count only counts with INCOMPAT_64BIT. */
        put32(head + 1024 + 336, 1);
        assert_int_equal(fs_probe_size(head, sizeof head, &t, &size), 0);
        assert_int_equal(size, 1065345024);
        put32(head + 1024 + 96, 0x80);
        assert_int_equal(fs_probe_size(head, sizeof head, &t, &size), 0);
        assert_int_equal(size, ((UINT64_C(1) << 32) + 260094) * 4096);
        put32(head + 1024 + 24, 9);
        assert_int_equal(fs_probe_size(head, sizeof head, &t, &size), -EBADMSG);
        /* Too short to hold the superblock. */
        assert_int_equal(fs_probe_size(head, 1100, &t, &size), -ENOENT);
}

static void test_squashfs(void **state) {
        uint8_t head[FS_PROBE_SIZE] = {};
        uint64_t size;
        FsType t;

        memcpy(head, "hsqs", 4);
        head[28] = 4;
        put32(head + 40, 123457);
        assert_int_equal(fs_probe_size(head, sizeof head, &t, &size), 0);
        assert_int_equal(t, FS_SQUASHFS);
        assert_int_equal(size, 123457);
        head[28] = 3;
        assert_int_equal(fs_probe_size(head, sizeof head, &t, &size), -EBADMSG);
}

static void test_erofs(void **state) {
        uint8_t head[FS_PROBE_SIZE] = {};
        uint64_t size;
        FsType t;

        put32(head + 1024, 0xE0F5E1E2);
        head[1024 + 12] = 12;
        put32(head + 1024 + 36, 77);
        assert_int_equal(fs_probe_size(head, sizeof head, &t, &size), 0);
        assert_int_equal(t, FS_EROFS);
        assert_int_equal(size, 77 * 4096);
        head[1024 + 12] = 30;
        assert_int_equal(fs_probe_size(head, sizeof head, &t, &size), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ext),
                cmocka_unit_test(test_squashfs),
                cmocka_unit_test(test_erofs),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
