/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "fileio.h"
#include "macro.h"

static void test_safe_atou64(void **state) {
        uint64_t v;
        assert_int_equal(safe_atou64("18446744073709551615", &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(safe_atou64("18446744073709551616", &v), -ERANGE);
        assert_int_equal(safe_atou64("-1", &v), -EINVAL);
        assert_int_equal(safe_atou64("12x", &v), -EINVAL);
        assert_int_equal(safe_atou64("", &v), -EINVAL);
        assert_int_equal(safe_atou64(" 1", &v), -EINVAL);
}

static void test_parse_size(void **state) {
        uint64_t v;
        assert_int_equal(parse_size("1M", &v), 0);
        assert_true(v == 1048576);
        assert_int_equal(parse_size("1MiB", &v), 0);
        assert_true(v == 1048576);
        assert_int_equal(parse_size("4096", &v), 0);
        assert_true(v == 4096);
        assert_int_equal(parse_size("2G", &v), 0);
        assert_true(v == 2147483648ULL);
        assert_int_equal(parse_size("G", &v), -EINVAL);
        assert_int_equal(parse_size("99999999999T", &v), -ERANGE);
}

static void test_atomic_write(void **state) {
        char dir[] = "/tmp/sy-test-XXXXXX", path[64];
        _cleanup_free_ char *data = NULL;
        size_t size;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/a/b/f", dir);
        assert_int_equal(mkdir_p(strjoina(dir, "/a/b"), 0755), 0);
        assert_int_equal(write_string_file_atomic(path, "hello", 0640), 0);
        assert_int_equal(read_full_file(path, 100, &data, &size), 0);
        assert_string_equal(data, "hello");
        assert_int_equal(size, 5);
        free(TAKE_PTR(data));
        assert_int_equal(read_full_file(path, 3, &data, &size), -EFBIG);
        assert_int_equal(write_string_file_atomic(path, "x", 0640), 0);
        assert_int_equal(read_one_line_file(path, &data), 0);
        assert_string_equal(data, "x");
        (void) unlink(path);
        (void) rmdir(strjoina(dir, "/a/b"));
        (void) rmdir(strjoina(dir, "/a"));
        (void) rmdir(dir);
}

static void test_path_join_root(void **state) {
        _cleanup_free_ char *a = path_join_root("/r", "/etc/x"), *b = path_join_root("/", "/etc/x"),
                            *c = path_join_root(NULL, "/etc/x"), *d = path_join_root("/r/", "etc");
        assert_string_equal(a, "/r/etc/x");
        assert_string_equal(b, "/etc/x");
        assert_string_equal(c, "/etc/x");
        assert_string_equal(d, "/r/etc");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_safe_atou64),
                cmocka_unit_test(test_parse_size),
                cmocka_unit_test(test_atomic_write),
                cmocka_unit_test(test_path_join_root),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
