/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The read-back check of a target region, done while apply still writes: a thread of its own hashes
 * the region strictly in order, from the start up to the point apply says is final (no operation still
 * to come writes below it). Every stretch is first written back to the device (sync_file_range: no
 * cache flush, that stays apply's one fdatasync per checkpoint and at the end), dropped from the page
 * cache, then read: the digest is of what the disk holds, not of what apply wrote into memory.
 *
 * When no thread can be had, or the kernel cannot write back a range of this descriptor, the rest is
 * read at the end instead, in read_back_finish(), after the caller's final fdatasync. The result is
 * the same either way; only the time differs. */

#include <stdint.h>

#include "macro.h"

typedef struct ReadBack ReadBack;

/* Starts reading back [offset, offset + size) of fd. -ENOMEM only: a missing thread is not an error. */
int read_back_new(int fd, uint64_t offset, uint64_t size, ReadBack **ret);
/* Bytes of the region before upto (counted from its start) will not be written again. */
void read_back_final_upto(ReadBack *rb, uint64_t upto);
/* Call after the caller's last write and its fdatasync: reads whatever is left and returns the
 * SHA-256 of the whole region, or the first read error (-EIO when the region ends early). */
int read_back_finish(ReadBack *rb, uint8_t ret[32]);
/* Stops the thread (at most one stretch later) and frees everything. */
ReadBack *read_back_free(ReadBack *rb);
DEFINE_TRIVIAL_CLEANUP_FUNC(ReadBack *, read_back_free);
