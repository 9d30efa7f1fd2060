/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Streaming SHA-256 over OpenSSL EVP (SHA-NI where the CPU has it), plus the encodings the update
 * stack uses for digests: lower-case hex and standard base64 with '=' padding. */

#include "macro.h"

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE (SHA256_DIGEST_SIZE * 2 + 1)
#define SHA256_BASE64_SIZE 45 /* 44 characters + NUL */

typedef struct Sha256 Sha256;

int sha256_new(Sha256 **ret);
Sha256 *sha256_free(Sha256 *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sha256 *, sha256_free);
int sha256_update(Sha256 *h, const void *data, size_t size);
/* Writes the digest of everything so far; h stays usable (it is finalised on a copy). */
int sha256_peek(const Sha256 *h, uint8_t ret[SHA256_DIGEST_SIZE]);
/* Finalises and resets h for reuse. */
int sha256_final(Sha256 *h, uint8_t ret[SHA256_DIGEST_SIZE]);
int sha256_copy(const Sha256 *h, Sha256 **ret);

/* One-shot helpers. */
int sha256_buffer(const void *data, size_t size, uint8_t ret[SHA256_DIGEST_SIZE]);
/* Hashes size bytes of fd from offset (or to EOF when size is UINT64_MAX); -EIO if it ends early. */
int sha256_fd(int fd, uint64_t offset, uint64_t size, uint8_t ret[SHA256_DIGEST_SIZE]);
/* Adds size bytes of fd from offset (or to EOF when size is UINT64_MAX) to h, reading through the
 * caller's buf; -EIO if fd ends early. */
int sha256_update_fd(Sha256 *h, int fd, uint64_t offset, uint64_t size, void *buf, size_t buf_size);

void hex_encode(const uint8_t *data, size_t size, char *ret /* 2*size+1 */);
/* Decodes exactly 2*size hex characters (either case); -EINVAL otherwise. */
int hex_decode(const char *s, uint8_t *ret, size_t size);
/* Standard base64 with padding; ret must hold 4*ceil(size/3)+1 bytes. */
void base64_encode(const uint8_t *data, size_t size, char *ret);
/* Strict standard base64 with padding; returns the decoded length or -EINVAL. */
ssize_t base64_decode(const char *s, uint8_t *ret, size_t max_size);
