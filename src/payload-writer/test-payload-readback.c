/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "payload-writer-readback.h"

#define MiB (1024u * 1024u)

static int temp_file(void) {
        char path[] = "/var/tmp/test-readback-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        return fd;
}

static void fill(uint8_t *b, size_t n, unsigned seed) {
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t) ((i * 2654435761u + seed) >> 13);
}

/* Finishes rb and checks that its digest is that of the size bytes at data; frees rb. */
static void finish_expecting(ReadBack *rb, const void *data, size_t size) {
        uint8_t d[32], want[32];
        assert_int_equal(read_back_finish(rb, d), 0);
        assert_int_equal(sha256_buffer(data, size, want), 0);
        assert_memory_equal(d, want, 32);
        read_back_free(rb);
}

/* The region is written in pieces while the thread reads behind: each piece is declared final only
 * once written; the digest covers the region (not what precedes it in the file) exactly as written. */
static void test_behind_the_writes(void **state) {
        const size_t prefix = 12345, size = 21 * MiB + 777;
        uint8_t *data = malloc(size);
        int fd = temp_file();
        ReadBack *rb = NULL;

        fill(data, size, 7);
        assert_int_equal(pwrite(fd, "junk", 4, 0), 4); /* outside the region */
        assert_int_equal(read_back_new(fd, prefix, size, &rb), 0);
        for (size_t at = 0; at < size; at += 3 * MiB) {
                size_t n = at + 3 * MiB <= size ? 3 * MiB : size - at;
                assert_int_equal(pwrite(fd, data + at, n, (off_t) (prefix + at)), (ssize_t) n);
                read_back_final_upto(rb, at + n);
                usleep(1000);
        }
        assert_int_equal(fdatasync(fd), 0);
        finish_expecting(rb, data, size);
        free(data);
        close(fd);
}

/* Bytes that are not final yet are never hashed: data rewritten below the final point before it is
 * declared final is what counts. */
static void test_rewritten_before_final(void **state) {
        const size_t size = 10 * MiB;
        uint8_t *data = malloc(size);
        int fd = temp_file();
        ReadBack *rb = NULL;

        memset(data, 0x11, size);
        assert_int_equal(pwrite(fd, data, size, 0), (ssize_t) size);
        assert_int_equal(read_back_new(fd, 0, size, &rb), 0);
        read_back_final_upto(rb, 6 * MiB);
        usleep(50000); /* the thread reads what is final by now */
        fill(data + 6 * MiB, size - 6 * MiB, 3); /* everything past the final point changes */
        assert_int_equal(pwrite(fd, data + 6 * MiB, size - 6 * MiB, 6 * MiB), (ssize_t) (size - 6 * MiB));
        assert_int_equal(fdatasync(fd), 0);
        finish_expecting(rb, data, size);
        free(data);
        close(fd);
}

/* A descriptor whose ranges cannot be written back one by one (a character device: sync_file_range()
 * refuses it) is read at the finish instead, with the same result. */
static void test_deferred_to_the_end(void **state) {
        const size_t size = 9 * MiB;
        uint8_t *zeros = calloc(1, size);
        int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        ReadBack *rb = NULL;

        assert_true(fd >= 0);
        assert_int_equal(read_back_new(fd, 0, size, &rb), 0);
        read_back_final_upto(rb, size);
        usleep(20000);
        finish_expecting(rb, zeros, size);
        free(zeros);
        close(fd);
}

/* A region that ends early is an error, not a digest of fewer bytes. */
static void test_short_region(void **state) {
        int fd = temp_file();
        uint8_t d[32];
        ReadBack *rb = NULL;

        assert_int_equal(ftruncate(fd, MiB), 0);
        assert_int_equal(read_back_new(fd, 0, 6 * MiB, &rb), 0);
        read_back_final_upto(rb, 6 * MiB);
        assert_int_equal(read_back_finish(rb, d), -EIO);
        read_back_free(rb);
        close(fd);
}

/* Freed without a finish (apply stopped early): the thread stops; an empty region is a valid one. */
static void test_stop_and_empty(void **state) {
        int fd = temp_file();
        ReadBack *rb = NULL;

        assert_int_equal(ftruncate(fd, 64 * MiB), 0);
        assert_int_equal(read_back_new(fd, 0, 64 * MiB, &rb), 0);
        read_back_final_upto(rb, 64 * MiB);
        read_back_free(rb);

        assert_int_equal(read_back_new(fd, 0, 0, &rb), 0);
        finish_expecting(rb, "", 0);
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_behind_the_writes),
                cmocka_unit_test(test_rewritten_before_final),
                cmocka_unit_test(test_deferred_to_the_end),
                cmocka_unit_test(test_short_region),
                cmocka_unit_test(test_stop_and_empty),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
