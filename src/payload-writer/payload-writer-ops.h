/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Executing one install operation, in two steps kept apart so that decoding can move to worker
 * threads while writes stay ordered: payload_op_decode() turns a verified blob into the bytes to
 * write (pure, no I/O), payload_op_write() lays them out over the destination extents. */

#include "payload-writer-format.h"

typedef struct PayloadTarget {
        int fd;          /* < 0: the data is consumed and checked but not written */
        uint64_t offset; /* byte offset of block 0 inside fd */
        uint64_t size;   /* writable bytes from offset; UINT64_MAX = unbounded */
        const char *name;
} PayloadTarget;

/* The memory one decoding thread keeps between operations: the bzip2 and xz decoder states (a 900k
 * bzip2 block needs 3.6 MiB), which libbz2 and liblzma would otherwise allocate, fault in and free
 * again for every operation. Use one per thread: it is not locked. */
typedef struct OpDecoder OpDecoder;
int op_decoder_new(OpDecoder **ret);
OpDecoder *op_decoder_free(OpDecoder *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(OpDecoder *, op_decoder_free);

/* A buffer kept across operations: grown when an operation needs more, never shrunk. */
typedef struct OpBuffer {
        uint8_t *data;
        size_t size;
} OpBuffer;

/* Makes b hold at least n bytes, with every page faulted in now: memory is claimed before the first
 * operation rather than in the middle of an update. The contents are unspecified. */
int op_buffer_reserve(OpBuffer *b, size_t n);
void op_buffer_done(OpBuffer *b);

/* Where an operation's bytes come out. buf belongs to the caller and is kept across operations (decode
 * grows it when an operation needs more); data and size are the result: buf's bytes, or the input
 * itself for REPLACE. */
typedef struct OpOutput {
        OpBuffer buf;
        const uint8_t *data;
        size_t size;
} OpOutput;

/* The largest output a decoded operation may have (its extents, at most PAYLOAD_OP_DATA_MAX); 0 for
 * operations that are not decoded. */
uint64_t payload_op_output_max(const InstallOperation *op, uint32_t block_size);

/* Decodes a verified blob into out (d may be NULL: plain allocations). MOVE/BSDIFF and unknown types
 * are refused. */
int payload_op_decode(const InstallOperation *op, uint32_t block_size, const uint8_t *data, size_t size,
                      OpDecoder *d, OpOutput *out, const char *what, PayloadError *e);

/* Writes buf across the op's dst extents (sparse holes consume without writing), zero-pads the block in
 * which the data ends, and refuses anything beyond the target's bounds or the extents. */
int payload_op_write(const InstallOperation *op, uint32_t block_size, const uint8_t *buf, size_t size,
                     const PayloadTarget *t, const char *what, PayloadError *e);
