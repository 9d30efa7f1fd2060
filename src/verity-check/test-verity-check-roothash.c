/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "verity-check-roothash.h"

#define H "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HU "ABCDEF6789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HL "abcdef6789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_cmdline(void **state) {
        char h[ROOT_HASH_HEX_LEN + 1];
        char *v = NULL;

        assert_int_equal(cmdline_get_usrhash("mount.usr=/dev/mapper/usr verity.usr=PARTUUID=7130c94a verity.usrhash=" H "\n", h), 0);
        assert_string_equal(h, H);
        /* GRUB appends; the last one wins. Upper case is accepted and lowered. */
        assert_int_equal(cmdline_get_usrhash("verity.usrhash=" H " quiet verity.usrhash=" HU, h), 0);
        assert_string_equal(h, HL);
        assert_int_equal(cmdline_get_usrhash("root=/dev/sda9 verity.usrhashx=" H, h), -ENOENT);
        assert_int_equal(cmdline_get_usrhash("xverity.usrhash=" H, h), -ENOENT);
        assert_int_equal(cmdline_get_usrhash("verity.usrhash=1234", h), -EINVAL);
        assert_int_equal(cmdline_get_usrhash("verity.usrhash=" H "0", h), -EINVAL);
        assert_int_equal(cmdline_get_usrhash("verity.usrhash=zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", h), -EINVAL);
        assert_int_equal(cmdline_get_usrhash("", h), -ENOENT);

        assert_int_equal(cmdline_get_value("a \"verity.usr=PARTUUID=abc def\" b", "verity.usr", &v), 0);
        assert_string_equal(v, "PARTUUID=abc def");
        free(v);
}

static void test_arch(void **state) {
        assert_int_equal(kernel_arch_from_string("amd64"), KERNEL_ARCH_AMD64);
        assert_int_equal(kernel_arch_from_string("x86_64"), KERNEL_ARCH_AMD64);
        assert_int_equal(kernel_arch_from_string("aarch64"), KERNEL_ARCH_ARM64);
        assert_int_equal(kernel_arch_from_string("riscv64"), -EINVAL);
        assert_int_equal(kernel_arch_hash_offset(KERNEL_ARCH_AMD64), 64);
        assert_int_equal(kernel_arch_hash_offset(KERNEL_ARCH_ARM64), 512);
        assert_string_equal(kernel_arch_to_string(KERNEL_ARCH_ARM64), "arm64");
}

static void test_kernel_embed(void **state) {
        char path[] = "/tmp/test-vmlinuz-XXXXXX";
        char h[ROOT_HASH_HEX_LEN + 1], buf[1024];
        int fd = mkstemp(path);
        KernelArch a;

        assert_true(fd >= 0);
        unlink(path);
        memset(buf, 0xcc, sizeof buf);
        assert_int_equal(write(fd, buf, 300), 300);
        assert_int_equal(kernel_read_root_hash(fd, KERNEL_ARCH_AMD64, h), -ENODATA);
        assert_int_equal(kernel_read_root_hash(fd, KERNEL_ARCH_ARM64, h), -EIO);
        assert_int_equal(kernel_write_root_hash(fd, KERNEL_ARCH_ARM64, H), -ENOSPC);
        assert_int_equal(kernel_write_root_hash(fd, KERNEL_ARCH_AMD64, "nothex"), -EINVAL);
        assert_int_equal(kernel_detect_arch(fd, &a), -ENOENT);

        assert_int_equal(kernel_write_root_hash(fd, KERNEL_ARCH_AMD64, HU), 0);
        assert_int_equal(kernel_read_root_hash(fd, KERNEL_ARCH_AMD64, h), 0);
        assert_string_equal(h, HL);
        assert_int_equal(pread(fd, buf, 66, 63), 66);
        assert_int_equal((uint8_t) buf[0], 0xcc);
        assert_int_equal((uint8_t) buf[65], 0xcc);

        assert_int_equal(pwrite(fd, "HdrS", 4, 0x202), 4);
        assert_int_equal(kernel_detect_arch(fd, &a), 0);
        assert_int_equal(a, KERNEL_ARCH_AMD64);
        assert_int_equal(pwrite(fd, "ARM\x64", 4, 0x38), 4);
        assert_int_equal(kernel_detect_arch(fd, &a), 0);
        assert_int_equal(a, KERNEL_ARCH_ARM64);

        assert_int_equal(ftruncate(fd, 1024), 0);
        assert_int_equal(kernel_write_root_hash(fd, KERNEL_ARCH_ARM64, H), 0);
        assert_int_equal(kernel_read_root_hash(fd, KERNEL_ARCH_ARM64, h), 0);
        assert_string_equal(h, H);
        /* One byte that is not lower-case hex: no hash, as GRUB sees it. */
        assert_int_equal(pwrite(fd, "G", 1, 512 + 10), 1);
        assert_int_equal(kernel_read_root_hash(fd, KERNEL_ARCH_ARM64, h), -ENODATA);
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cmdline),
                cmocka_unit_test(test_arch),
                cmocka_unit_test(test_kernel_embed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
