/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>

#include "fileio.h"
#include "hash.h"

struct Sha256 {
        EVP_MD_CTX *ctx;
};

int sha256_new(Sha256 **ret) {
        Sha256 *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(h->ctx);
                free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

Sha256 *sha256_free(Sha256 *h) {
        if (!h)
                return NULL;
        EVP_MD_CTX_free(h->ctx);
        return mfree(h);
}

int sha256_update(Sha256 *h, const void *data, size_t size) {
        if (size == 0)
                return 0;
        return EVP_DigestUpdate(h->ctx, data, size) == 1 ? 0 : -EIO;
}

int sha256_copy(const Sha256 *h, Sha256 **ret) {
        _cleanup_(sha256_freep) Sha256 *c = NULL;
        int r = sha256_new(&c);
        if (r < 0)
                return r;
        if (EVP_MD_CTX_copy_ex(c->ctx, h->ctx) != 1)
                return -EIO;
        *ret = TAKE_PTR(c);
        return 0;
}

int sha256_final(Sha256 *h, uint8_t ret[SHA256_DIGEST_SIZE]) {
        unsigned len = 0;
        if (EVP_DigestFinal_ex(h->ctx, ret, &len) != 1 || len != SHA256_DIGEST_SIZE)
                return -EIO;
        return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

int sha256_peek(const Sha256 *h, uint8_t ret[SHA256_DIGEST_SIZE]) {
        _cleanup_(sha256_freep) Sha256 *c = NULL;
        int r = sha256_copy(h, &c);
        if (r < 0)
                return r;
        return sha256_final(c, ret);
}

int sha256_buffer(const void *data, size_t size, uint8_t ret[SHA256_DIGEST_SIZE]) {
        unsigned len = 0;
        return EVP_Digest(data, size, ret, &len, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

int sha256_update_fd(Sha256 *h, int fd, uint64_t offset, uint64_t size, void *buf, size_t buf_size) {
        uint64_t done = 0;
        int r;

        while (done < size) {
                size_t want = (size_t) MIN((uint64_t) buf_size, size - done);
                ssize_t k = pread(fd, buf, want, (off_t) (offset + done));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0) {
                        if (size == UINT64_MAX)
                                break;
                        return -EIO;
                }
                r = sha256_update(h, buf, (size_t) k);
                if (r < 0)
                        return r;
                done += (uint64_t) k;
        }
        return 0;
}

int sha256_fd(int fd, uint64_t offset, uint64_t size, uint8_t ret[SHA256_DIGEST_SIZE]) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        const size_t bufsize = 1024 * 1024;
        int r;

        r = sha256_new(&h);
        if (r < 0)
                return r;
        buf = malloc(bufsize);
        if (!buf)
                return -ENOMEM;
        r = sha256_update_fd(h, fd, offset, size, buf, bufsize);
        if (r < 0)
                return r;
        return sha256_final(h, ret);
}

void hex_encode(const uint8_t *data, size_t size, char *ret) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < size; i++) {
                ret[2 * i] = digits[data[i] >> 4];
                ret[2 * i + 1] = digits[data[i] & 15];
        }
        ret[2 * size] = '\0';
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

int hex_decode(const char *s, uint8_t *ret, size_t size) {
        if (strlen(s) != size * 2)
                return -EINVAL;
        for (size_t i = 0; i < size; i++) {
                int a = unhex(s[2 * i]), b = unhex(s[2 * i + 1]);
                if (a < 0 || b < 0)
                        return -EINVAL;
                ret[i] = (uint8_t) (a << 4 | b);
        }
        return 0;
}

void base64_encode(const uint8_t *data, size_t size, char *ret) {
        (void) EVP_EncodeBlock((unsigned char *) ret, data, (int) size);
}

ssize_t base64_decode(const char *s, uint8_t *ret, size_t max_size) {
        size_t len = strlen(s), pad = 0, out;
        _cleanup_free_ uint8_t *buf = NULL;
        int k;

        if (len == 0 || len % 4 != 0 || len > (size_t) INT32_MAX)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                          c == '/' || (c == '=' && i >= len - 2);
                if (!ok)
                        return -EINVAL;
        }
        if (s[len - 1] == '=')
                pad++;
        if (s[len - 2] == '=')
                pad++;
        if (pad == 1 && s[len - 2] == '=')
                return -EINVAL;
        buf = malloc(len / 4 * 3 + 1);
        if (!buf)
                return -ENOMEM;
        k = EVP_DecodeBlock(buf, (const unsigned char *) s, (int) len);
        if (k < 0)
                return -EINVAL;
        out = (size_t) k - pad;
        if (out > max_size)
                return -ENOBUFS;
        memcpy(ret, buf, out);
        return (ssize_t) out;
}
