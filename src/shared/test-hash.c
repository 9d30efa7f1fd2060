/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include <sys/mman.h>
#include <unistd.h>

#include "hash.h"

static void test_known_answers(void **state) {
        uint8_t d[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE], b64[SHA256_BASE64_SIZE];
        _cleanup_(sha256_freep) Sha256 *h = NULL;

        assert_int_equal(sha256_buffer("", 0, d), 0);
        hex_encode(d, sizeof d, hex);
        assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        base64_encode(d, sizeof d, b64);
        assert_string_equal(b64, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");

        /* Streaming in pieces, peeking in between, gives the one-shot result. */
        assert_int_equal(sha256_new(&h), 0);
        assert_int_equal(sha256_update(h, "ab", 2), 0);
        assert_int_equal(sha256_peek(h, d), 0);
        hex_encode(d, sizeof d, hex);
        assert_string_equal(hex, "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603");
        assert_int_equal(sha256_update(h, "c", 1), 0);
        assert_int_equal(sha256_final(h, d), 0);
        hex_encode(d, sizeof d, hex);
        assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_codecs(void **state) {
        uint8_t buf[8];
        assert_int_equal(hex_decode("00fF10", buf, 3), 0);
        assert_int_equal(buf[1], 0xff);
        assert_int_equal(hex_decode("00fg10", buf, 3), -EINVAL);
        assert_int_equal(hex_decode("00ff1", buf, 3), -EINVAL);
        assert_int_equal(base64_decode("YWJj", buf, sizeof buf), 3);
        assert_memory_equal(buf, "abc", 3);
        assert_int_equal(base64_decode("YWI=", buf, sizeof buf), 2);
        assert_int_equal(base64_decode("YQ==", buf, sizeof buf), 1);
        assert_int_equal(base64_decode("Y===", buf, sizeof buf), -EINVAL);
        assert_int_equal(base64_decode("YW=j", buf, sizeof buf), -EINVAL);
        assert_int_equal(base64_decode("YWJ", buf, sizeof buf), -EINVAL);
        assert_int_equal(base64_decode("YWJjYWJjYWJj", buf, sizeof buf), -ENOBUFS);
}

/* Hashing a file range: in pieces through a small buffer it equals the one-shot digest; a range past
 * the end is -EIO; UINT64_MAX means "to the end". */
static void test_fd(void **state) {
        uint8_t data[10000], d[SHA256_DIGEST_SIZE], want[SHA256_DIGEST_SIZE], buf[333];
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        int fd = memfd_create("hash", MFD_CLOEXEC);

        assert_true(fd >= 0);
        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (i * 7);
        assert_int_equal(pwrite(fd, data, sizeof data, 0), (ssize_t) sizeof data);

        assert_int_equal(sha256_buffer(data + 100, 9000, want), 0);
        assert_int_equal(sha256_fd(fd, 100, 9000, d), 0);
        assert_memory_equal(d, want, sizeof d);
        assert_int_equal(sha256_new(&h), 0);
        assert_int_equal(sha256_update_fd(h, fd, 100, 4000, buf, sizeof buf), 0);
        assert_int_equal(sha256_update_fd(h, fd, 4100, 5000, buf, sizeof buf), 0);
        assert_int_equal(sha256_final(h, d), 0);
        assert_memory_equal(d, want, sizeof d);

        assert_int_equal(sha256_update_fd(h, fd, 9000, 2000, buf, sizeof buf), -EIO);
        assert_int_equal(sha256_fd(fd, 9000, 2000, d), -EIO);
        assert_int_equal(sha256_buffer(data + 9000, 1000, want), 0);
        assert_int_equal(sha256_fd(fd, 9000, UINT64_MAX, d), 0);
        assert_memory_equal(d, want, sizeof d);
        assert_int_equal(sha256_fd(-1, 0, 10, d), -EBADF);
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_known_answers),
                cmocka_unit_test(test_codecs),
                cmocka_unit_test(test_fd),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
