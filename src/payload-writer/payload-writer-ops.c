/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <bzlib.h>
#include <inttypes.h>
#include <lzma.h>
#include <sys/mman.h>

#include "payload-writer-ops.h"

#define XZ_MEMLIMIT (256u * 1024u * 1024u)

/* A decoder asks for a handful of blocks per stream (bzip2: its state and one array sized by the
 * stream's block size; xz: a few more), the same sizes stream after stream. Blocks of a size asked for
 * before are handed out again; past OP_DECODER_BLOCKS distinct blocks, memory is plain malloc/free. */
#define OP_DECODER_BLOCKS 16
#define HUGE_PAGE (2u * 1024u * 1024u)

struct OpDecoder {
        struct {
                void *p;
                size_t size;
                bool used;
        } blocks[OP_DECODER_BLOCKS];
};

int op_decoder_new(OpDecoder **ret) {
        *ret = calloc(1, sizeof **ret);
        return *ret ? 0 : -ENOMEM;
}

OpDecoder *op_decoder_free(OpDecoder *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < OP_DECODER_BLOCKS; i++)
                free(d->blocks[i].p);
        free(d);
        return NULL;
}

/* Faults in every page of a buffer now. (memset to zero would not do: the compiler may turn malloc +
 * memset into calloc, which leaves fresh pages untouched.) */
static void touch_pages(void *p, size_t size) {
        const size_t page = 4096;
        for (size_t i = 0; i < size; i += page)
                ((volatile uint8_t *) p)[i] = 0;
        if (size > 0)
                ((volatile uint8_t *) p)[size - 1] = 0;
}

/* touch: fault the block in when it is first kept. bzip2's blocks are used whole (a 900k block fills
 * its 3.6 MiB array), so they are claimed at once; xz's dictionary is sized by the stream's header
 * (8 MiB for the default preset) and mostly unused for 1 MiB chunks, so its pages come as used. */
static void *op_decoder_alloc(OpDecoder *d, size_t size, bool touch) {
        void *p;

        if (!d)
                return malloc(size);
        for (size_t i = 0; i < OP_DECODER_BLOCKS; i++)
                if (d->blocks[i].p && !d->blocks[i].used && d->blocks[i].size == size) {
                        d->blocks[i].used = true;
                        return d->blocks[i].p;
                }
        if (touch && size >= HUGE_PAGE) {
                /* bzip2's inverse BWT follows a chain of random reads through its 3.6 MiB array: on
                 * 2 MiB pages that array needs two TLB entries instead of ~900. */
                size_t n = ALIGN_TO(size, (size_t) HUGE_PAGE);
                if (posix_memalign(&p, HUGE_PAGE, n) != 0)
                        p = NULL;
                else
                        (void) madvise(p, n, MADV_HUGEPAGE);
        } else
                p = malloc(size);
        for (size_t i = 0; p && i < OP_DECODER_BLOCKS; i++)
                if (!d->blocks[i].p) {
                        if (touch)
                                touch_pages(p, size);
                        d->blocks[i].p = p;
                        d->blocks[i].size = size;
                        d->blocks[i].used = true;
                        break;
                }
        return p;
}

static void op_decoder_release(OpDecoder *d, void *p) {
        for (size_t i = 0; d && p && i < OP_DECODER_BLOCKS; i++)
                if (d->blocks[i].p == p) {
                        d->blocks[i].used = false;
                        return;
                }
        free(p);
}

static void *bz_alloc(void *opaque, int items, int size) {
        size_t n;
        if (items < 0 || size < 0 || __builtin_mul_overflow((size_t) items, (size_t) size, &n))
                return NULL;
        return op_decoder_alloc(opaque, n, true);
}

static void bz_free(void *opaque, void *p) {
        op_decoder_release(opaque, p);
}

static void *xz_alloc(void *opaque, size_t nmemb, size_t size) {
        size_t n;
        if (__builtin_mul_overflow(nmemb, size, &n))
                return NULL;
        return op_decoder_alloc(opaque, n, false);
}

static void xz_free(void *opaque, void *p) {
        op_decoder_release(opaque, p);
}

int op_buffer_reserve(OpBuffer *b, size_t n) {
        uint8_t *p;

        if (b->size >= n)
                return 0;
        p = malloc(n);
        if (!p)
                return -ENOMEM;
        touch_pages(p, n);
        free(b->data);
        b->data = p;
        b->size = n;
        return 0;
}

void op_buffer_done(OpBuffer *b) {
        b->data = mfree(b->data);
        b->size = 0;
}

static int decode_bz2(OpDecoder *d, const uint8_t *data, size_t size, uint8_t *out, size_t cap, size_t *ret_size,
                      const char *what, PayloadError *e) {
        bz_stream s = { .bzalloc = bz_alloc, .bzfree = bz_free, .opaque = d };
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

static int decode_xz(OpDecoder *d, const uint8_t *data, size_t size, uint8_t *out, size_t cap, size_t *ret_size,
                     const char *what, PayloadError *e) {
        lzma_stream s = LZMA_STREAM_INIT;
        const lzma_allocator allocator = { .alloc = xz_alloc, .free = xz_free, .opaque = d };
        lzma_ret r;

        s.allocator = &allocator;
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

uint64_t payload_op_output_max(const InstallOperation *op, uint32_t block_size) {
        uint64_t cap;

        if (op->type != OP_REPLACE_BZ && op->type != OP_REPLACE_XZ)
                return 0;
        if (payload_op_extents_size(op, block_size, &cap) < 0)
                return PAYLOAD_OP_DATA_MAX;
        return MIN(cap, (uint64_t) PAYLOAD_OP_DATA_MAX);
}

int payload_op_decode(const InstallOperation *op, uint32_t block_size, const uint8_t *data, size_t size,
                      OpDecoder *d, OpOutput *out, const char *what, PayloadError *e) {
        uint64_t cap;
        size_t n = 0;
        int r;

        out->data = NULL;
        out->size = 0;
        switch ((int) op->type) {
        case OP_REPLACE:
                out->data = data;
                out->size = size;
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
        if (op_buffer_reserve(&out->buf, (size_t) cap) < 0)
                return payload_error_set(e, PAYLOAD_OPERATION_EXECUTION_ERROR, ENOMEM,
                                         "%s: cannot allocate %" PRIu64 " bytes", what, cap);
        if (op->type == OP_REPLACE_BZ)
                r = decode_bz2(d, data, size, out->buf.data, (size_t) cap, &n, what, e);
        else
                r = decode_xz(d, data, size, out->buf.data, (size_t) cap, &n, what, e);
        if (r < 0)
                return r;
        out->data = out->buf.data;
        out->size = n;
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
