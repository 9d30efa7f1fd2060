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

/* On success *ret_buf is either a new buffer the caller frees, or NULL when the data is written as is
 * (REPLACE); *ret_size is the decoded length. MOVE/BSDIFF and unknown types are refused. */
int payload_op_decode(const InstallOperation *op, uint32_t block_size, const uint8_t *data, size_t size,
                      uint8_t **ret_buf, size_t *ret_size, const char *what, PayloadError *e);

/* Writes buf across the op's dst extents (sparse holes consume without writing), zero-pads the block in
 * which the data ends, and refuses anything beyond the target's bounds or the extents. */
int payload_op_write(const InstallOperation *op, uint32_t block_size, const uint8_t *buf, size_t size,
                     const PayloadTarget *t, const char *what, PayloadError *e);
