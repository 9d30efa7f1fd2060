/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <bzlib.h>
#include <inttypes.h>
#include <lzma.h>

#include "payload-writer-ops.h"

#define XZ_MEMLIMIT (256u * 1024u * 1024u)

static int decode_bz2(const uint8_t *data, size_t size, uint8_t *out, size_t cap, size_t *ret_size, const char *what,
                      PayloadError *e) {
        bz_stream s = {};
        int r;

        if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK)
                return payload_error_set(e, PAYLOAD_OPERATION_EXECUTION_ERROR, ENOMEM,
                                         "%s: cannot set up bzip2 decoder", what);
        s.next_in = (char *) data;
        s.avail_in = (unsigned) size;
        s.next_out = (char *) out;
        s.avail_out = (unsigned) cap;
        for (;;) {
                r = BZ2_bzDecompress(&s);
                if (r == BZ_STREAM_END)
                        break;
                if (r != BZ_OK) {
                        BZ2_bzDecompressEnd(&s);
                        return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR, "%s: bzip2 data is corrupt (%d)",
                                            what, r);
                }
                if (s.avail_out == 0) {
                        /* Full output may still be followed by just the end-of-stream marker. */
                        char scratch;
                        s.next_out = &scratch;
                        s.avail_out = 1;
                        r = BZ2_bzDecompress(&s);
                        if (r == BZ_STREAM_END && s.avail_out == 1) {
                                s.avail_out = 0;
                                break;
                        }
                        BZ2_bzDecompressEnd(&s);
                        return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR,
                                            "%s: bzip2 data expands beyond the %zu bytes its extents hold", what, cap);
                }
                if (s.avail_in == 0) {
                        BZ2_bzDecompressEnd(&s);
                        return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR, "%s: bzip2 stream is truncated",
                                            what);
                }
        }
        *ret_size = cap - s.avail_out;
        BZ2_bzDecompressEnd(&s);
        if (s.avail_in != 0)
                return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR,
                                    "%s: %u bytes follow the end of the bzip2 stream", what, s.avail_in);
        return 0;
}

static int decode_xz(const uint8_t *data, size_t size, uint8_t *out, size_t cap, size_t *ret_size, const char *what,
                     PayloadError *e) {
        lzma_stream s = LZMA_STREAM_INIT;
        lzma_ret r;

        if (lzma_stream_decoder(&s, XZ_MEMLIMIT, 0) != LZMA_OK)
                return payload_error_set(e, PAYLOAD_OPERATION_EXECUTION_ERROR, ENOMEM,
                                         "%s: cannot set up xz decoder", what);
        s.next_in = data;
        s.avail_in = size;
        s.next_out = out;
        s.avail_out = cap;
        for (;;) {
                r = lzma_code(&s, LZMA_FINISH);
                if (r == LZMA_STREAM_END)
                        break;
                if (r == LZMA_OK && s.avail_out == 0) {
                        /* Full output may still be followed by the index and footer only. */
                        uint8_t scratch;
                        s.next_out = &scratch;
                        s.avail_out = 1;
                        r = lzma_code(&s, LZMA_FINISH);
                        while (r == LZMA_OK && s.avail_out == 1 && s.avail_in > 0)
                                r = lzma_code(&s, LZMA_FINISH);
                        if (r == LZMA_STREAM_END && s.avail_out == 1) {
                                s.avail_out = 0;
                                break;
                        }
                        lzma_end(&s);
                        return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR,
                                            "%s: xz data expands beyond the %zu bytes its extents hold", what, cap);
                }
                if (r != LZMA_OK) {
                        lzma_end(&s);
                        return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR, "%s: xz data is corrupt (%d)", what,
                                            (int) r);
                }
        }
        *ret_size = cap - s.avail_out;
        lzma_end(&s);
        if (s.avail_in != 0)
                return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR,
                                    "%s: %zu bytes follow the end of the xz stream", what, s.avail_in);
        return 0;
}

int payload_op_decode(const InstallOperation *op, uint32_t block_size, const uint8_t *data, size_t size,
                      uint8_t **ret_buf, size_t *ret_size, const char *what, PayloadError *e) {
        uint64_t cap;
        _cleanup_free_ uint8_t *out = NULL;
        size_t n = 0;
        int r;

        switch ((int) op->type) {
        case OP_REPLACE:
                *ret_buf = NULL;
                *ret_size = size;
                return 0;
        case OP_REPLACE_BZ:
        case OP_REPLACE_XZ:
                break;
        case OP_MOVE:
        case OP_BSDIFF:
                return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR,
                                    "%s: %s operations are not supported for full updates (delta payloads are not "
                                    "served to Flatcar hosts)", what, payload_op_type_to_string(op->type));
        default:
                return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR, "%s: unknown operation type %d", what,
                                    (int) op->type);
        }

        if (payload_op_extents_size(op, block_size, &cap) < 0)
                return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR, "%s: extents overflow", what);
        cap = MIN(cap, (uint64_t) PAYLOAD_OP_DATA_MAX);
        if (cap == 0)
                return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR, "%s: compressed data but no extents", what);
        out = malloc(cap);
        if (!out)
                return payload_error_set(e, PAYLOAD_OPERATION_EXECUTION_ERROR, ENOMEM,
                                         "%s: cannot allocate %" PRIu64 " bytes", what, cap);
        if (op->type == OP_REPLACE_BZ)
                r = decode_bz2(data, size, out, cap, &n, what, e);
        else
                r = decode_xz(data, size, out, cap, &n, what, e);
        if (r < 0)
                return r;
        *ret_buf = TAKE_PTR(out);
        *ret_size = n;
        return 0;
}

static int write_at(const PayloadTarget *t, uint64_t pos, const uint8_t *buf, size_t size, const char *what,
                    PayloadError *e) {
        uint64_t end;

        if (__builtin_add_overflow(pos, (uint64_t) size, &end) || end > t->size)
                return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR,
                                    "%s: writes bytes %" PRIu64 "..%" PRIu64 ", beyond the %" PRIu64
                                    " bytes of the %s target", what, pos, end, t->size, t->name);
        if (t->fd < 0)
                return 0;
        while (size > 0) {
                ssize_t k = pwrite(t->fd, buf, size, (off_t) (t->offset + pos));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return payload_error_set(e, PAYLOAD_WRITE_ERROR, errno,
                                                 "%s: writing the %s target at %" PRIu64 " failed: %s", what, t->name,
                                                 pos, strerror(errno));
                }
                if (k == 0)
                        return payload_error_set(e, PAYLOAD_WRITE_ERROR, EIO, "%s: short write to the %s target", what,
                                                 t->name);
                buf += k;
                size -= (size_t) k;
                pos += (uint64_t) k;
        }
        return 0;
}

int payload_op_write(const InstallOperation *op, uint32_t block_size, const uint8_t *buf, size_t size,
                     const PayloadTarget *t, const char *what, PayloadError *e) {
        static const uint8_t zeros[4096];
        size_t done = 0;
        int r;

        for (size_t i = 0; i < op->n_dst_extents && done < size; i++) {
                const Extent *x = op->dst_extents[i];
                uint64_t bytes = x->num_blocks * (uint64_t) block_size; /* overflow ruled out by validation */
                size_t take = (size_t) MIN(bytes, (uint64_t) (size - done));

                if (x->start_block != PAYLOAD_SPARSE_HOLE) {
                        uint64_t pos = x->start_block * (uint64_t) block_size;
                        r = write_at(t, pos, buf + done, take, what, e);
                        if (r < 0)
                                return r;
                        /* The data ended inside a block: the rest of that block becomes zeros. */
                        if (take < bytes && take % block_size != 0) {
                                uint64_t pad = block_size - take % block_size;
                                uint64_t p = pos + take;
                                while (pad > 0) {
                                        size_t chunk = (size_t) MIN(pad, (uint64_t) sizeof zeros);
                                        r = write_at(t, p, zeros, chunk, what, e);
                                        if (r < 0)
                                                return r;
                                        p += chunk;
                                        pad -= chunk;
                                }
                        }
                }
                done += take;
        }
        if (done < size)
                return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR,
                                    "%s: %zu bytes of data but its extents hold only %zu", what, size, done);
        return 0;
}
