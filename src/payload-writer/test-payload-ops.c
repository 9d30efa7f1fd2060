/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include <bzlib.h>
#include <lzma.h>
#include <sys/mman.h>

#include "payload-writer-ops.h"

static InstallOperation *make_op(int type, const uint64_t (*extents)[2], size_t n) {
        InstallOperation *op = calloc(1, sizeof *op);
        chromeos_update_engine__install_operation__init(op);
        op->type = type;
        op->dst_extents = calloc(n, sizeof *op->dst_extents);
        for (size_t i = 0; i < n; i++) {
                Extent *x = calloc(1, sizeof *x);
                chromeos_update_engine__extent__init(x);
                x->has_start_block = x->has_num_blocks = true;
                x->start_block = extents[i][0];
                x->num_blocks = extents[i][1];
                op->dst_extents[i] = x;
        }
        op->n_dst_extents = n;
        return op;
}

static void free_op(InstallOperation *op) {
        for (size_t i = 0; i < op->n_dst_extents; i++)
                free(op->dst_extents[i]);
        free(op->dst_extents);
        free(op);
}

static int target_fd(size_t size, uint8_t fill) {
        int fd = memfd_create("target", MFD_CLOEXEC);
        uint8_t *b = malloc(size);
        assert_true(fd >= 0);
        memset(b, fill, size);
        assert_int_equal(pwrite(fd, b, size, 0), (ssize_t) size);
        free(b);
        return fd;
}

/* Data spread over two extents with a sparse hole between them, ending mid-block: the rest of that block
 * is zeroed, the following blocks of the extent are left alone. Block size 512 (any size goes). */
static void test_replace_extents_holes_padding(void **state) {
        const uint64_t ext[][2] = { { 1, 1 }, { PAYLOAD_SPARSE_HOLE, 1 }, { 4, 3 } };
        InstallOperation *op = make_op(OP_REPLACE, ext, 3);
        int fd = target_fd(8 * 512, 0xee);
        PayloadTarget t = { .fd = fd, .size = UINT64_MAX, .name = "test" };
        uint8_t data[512 + 512 + 700], back[8 * 512];
        OpOutput out = {};
        PayloadError e = {};

        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (i % 251);
        assert_int_equal(payload_op_decode(op, 512, data, sizeof data, NULL, &out, "op", &e), 0);
        assert_ptr_equal(out.data, data); /* REPLACE: written as is, no copy */
        assert_null(out.buf.data);
        assert_int_equal(out.size, sizeof data);
        assert_int_equal(payload_op_write(op, 512, out.data, out.size, &t, "op", &e), 0);
        assert_int_equal(pread(fd, back, sizeof back, 0), (ssize_t) sizeof back);

        for (size_t i = 0; i < 512; i++)
                assert_int_equal(back[i], 0xee); /* block 0 untouched */
        assert_memory_equal(back + 512, data, 512); /* block 1 */
        for (size_t i = 1024; i < 2048; i++)
                assert_int_equal(back[i], 0xee); /* blocks 2, 3 untouched: the hole consumed data[512..1024) */
        assert_memory_equal(back + 2048, data + 1024, 700);
        for (size_t i = 2048 + 700; i < 2048 + 1024; i++)
                assert_int_equal(back[i], 0); /* padding to the end of block 5 */
        for (size_t i = 3072; i < 4096; i++)
                assert_int_equal(back[i], 0xee); /* block 6 of the extent, beyond the data: untouched */
        free_op(op);
        close(fd);
}

static void test_bounds(void **state) {
        const uint64_t ext[][2] = { { 2, 2 } };
        InstallOperation *op = make_op(OP_REPLACE, ext, 1);
        int fd = target_fd(4096, 0);
        PayloadTarget t = { .fd = fd, .offset = 1024, .size = 3 * 1024, .name = "test" };
        uint8_t data[2048] = {};
        PayloadError e = {};

        /* blocks 2..3 of 1024 bytes end at 4096 > 3072 */
        assert_int_equal(payload_op_write(op, 1024, data, sizeof data, &t, "op", &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_OPERATION_EXECUTION_ERROR);
        assert_non_null(strstr(e.message, "beyond"));

        /* more data than the extents hold */
        e = (PayloadError) {};
        t.size = UINT64_MAX;
        uint8_t big[3000] = {};
        assert_int_equal(payload_op_write(op, 1024, big, sizeof big, &t, "op", &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_OPERATION_EXECUTION_ERROR);
        free_op(op);
        close(fd);
}

static void check_compressed(OpDecoder *d) {
        const uint64_t ext[][2] = { { 0, 4 } };
        InstallOperation *bz = make_op(OP_REPLACE_BZ, ext, 1), *xz = make_op(OP_REPLACE_XZ, ext, 1);
        uint8_t plain[4 * 4096], comp[8192];
        unsigned clen = sizeof comp;
        size_t xlen = 0;
        OpOutput out = {};
        PayloadError e = {};

        for (size_t i = 0; i < sizeof plain; i++)
                plain[i] = (uint8_t) (i / 100);
        assert_int_equal(payload_op_output_max(bz, 4096), sizeof plain);
        /* exactly as large as the extents: the end-of-stream marker must still be found */
        assert_int_equal(BZ2_bzBuffToBuffCompress((char *) comp, &clen, (char *) plain, sizeof plain, 9, 0, 0), BZ_OK);
        assert_int_equal(payload_op_decode(bz, 4096, comp, clen, d, &out, "bz", &e), 0);
        assert_int_equal(out.size, sizeof plain);
        assert_ptr_equal(out.data, out.buf.data);
        assert_memory_equal(out.data, plain, out.size);
        /* the output buffer is kept and reused, and a decoder's memory serves stream after stream */
        uint8_t *kept = out.buf.data;
        for (int k = 0; k < 3; k++) {
                memset(out.buf.data, 0, out.buf.size);
                assert_int_equal(payload_op_decode(bz, 4096, comp, clen, d, &out, "bz", &e), 0);
                assert_ptr_equal(out.buf.data, kept);
                assert_memory_equal(out.data, plain, sizeof plain);
        }

        /* corrupt and truncated */
        assert_int_equal(payload_op_decode(bz, 4096, comp, clen - 5, d, &out, "bz", &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_OPERATION_EXECUTION_ERROR);
        /* a failed stream leaves the decoder usable */
        assert_int_equal(payload_op_decode(bz, 4096, comp, clen, d, &out, "bz", &e), 0);
        assert_memory_equal(out.data, plain, sizeof plain);

        assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, plain, sizeof plain, comp, &xlen, sizeof comp),
                         LZMA_OK);
        for (int k = 0; k < 2; k++) {
                memset(out.buf.data, 0, out.buf.size);
                assert_int_equal(payload_op_decode(xz, 4096, comp, xlen, d, &out, "xz", &e), 0);
                assert_int_equal(out.size, sizeof plain);
                assert_memory_equal(out.data, plain, out.size);
        }

        /* output larger than the extents */
        e = (PayloadError) {};
        xz->dst_extents[0]->num_blocks = 3;
        assert_int_equal(payload_op_decode(xz, 4096, comp, xlen, d, &out, "xz", &e), -EBADMSG);
        assert_non_null(strstr(e.message, "expands beyond"));
        op_buffer_done(&out.buf);
        assert_null(out.buf.data);
        free_op(bz);
        free_op(xz);
}

static void test_compressed(void **state) {
        check_compressed(NULL);
}

/* The same with a kept decoder (as apply's threads use): results must not depend on reused state. */
static void test_compressed_kept_decoder(void **state) {
        _cleanup_(op_decoder_freep) OpDecoder *d = NULL;
        assert_int_equal(op_decoder_new(&d), 0);
        check_compressed(d);
}

static void test_buffer_reserve(void **state) {
        const size_t n = 1024 * 1024 + 100; /* large enough for a fresh mapping of untouched pages */
        OpBuffer b = {};

        assert_int_equal(op_buffer_reserve(&b, n), 0);
        assert_int_equal(b.size, n);
        /* every page is resident now, not on first use */
        uintptr_t first = (uintptr_t) b.data & ~(uintptr_t) 4095;
        size_t pages = ((uintptr_t) b.data + n - first + 4095) / 4096;
        unsigned char *vec = malloc(pages);
        assert_int_equal(mincore((void *) first, pages * 4096, vec), 0);
        for (size_t i = 0; i < pages; i++)
                assert_true(vec[i] & 1);
        free(vec);
        uint8_t *kept = b.data;
        assert_int_equal(op_buffer_reserve(&b, 100), 0); /* never shrinks */
        assert_ptr_equal(b.data, kept);
        assert_int_equal(op_buffer_reserve(&b, 2 * n), 0);
        assert_int_equal(b.size, 2 * n);
        op_buffer_done(&b);
        assert_null(b.data);
        assert_int_equal(b.size, 0);
}

static void test_delta_ops_refused(void **state) {
        const uint64_t ext[][2] = { { 0, 1 } };
        InstallOperation *op = make_op(OP_MOVE, ext, 1);
        OpOutput out = {};
        PayloadError e = {};

        assert_int_equal(payload_op_output_max(op, 4096), 0);
        assert_int_equal(payload_op_decode(op, 4096, NULL, 0, NULL, &out, "op 3", &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_OPERATION_EXECUTION_ERROR);
        assert_non_null(strstr(e.message, "not supported for full updates"));
        e = (PayloadError) {};
        op->type = OP_BSDIFF;
        assert_int_equal(payload_op_decode(op, 4096, NULL, 0, NULL, &out, "op 3", &e), -EBADMSG);
        assert_non_null(strstr(e.message, "BSDIFF"));
        e = (PayloadError) {};
        op->type = 77;
        assert_int_equal(payload_op_decode(op, 4096, NULL, 0, NULL, &out, "op 3", &e), -EBADMSG);
        assert_non_null(strstr(e.message, "unknown operation type 77"));
        free_op(op);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_replace_extents_holes_padding),
                cmocka_unit_test(test_bounds),
                cmocka_unit_test(test_compressed),
                cmocka_unit_test(test_compressed_kept_decoder),
                cmocka_unit_test(test_buffer_reserve),
                cmocka_unit_test(test_delta_ops_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
