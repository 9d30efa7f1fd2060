/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>

#include "hash.h"
#include "payload-writer-hashstate.h"

struct HashState {
        SHA256_CTX ctx;
        uint64_t bytes;
};

int hash_state_new(HashState **ret) {
        HashState *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        if (SHA256_Init(&h->ctx) != 1) {
                free(h);
                return -EIO;
        }
        *ret = h;
        return 0;
}

HashState *hash_state_free(HashState *h) {
        return mfree(h);
}

void hash_state_update(HashState *h, const void *data, size_t size) {
        (void) SHA256_Update(&h->ctx, data, size);
        h->bytes += size;
}

void hash_state_peek(const HashState *h, uint8_t ret[32]) {
        SHA256_CTX copy = h->ctx;
        (void) SHA256_Final(ret, &copy);
}

uint64_t hash_state_bytes(const HashState *h) {
        return h->bytes;
}

/* The state is rebuilt from its definition (eight chaining words, the bytes of the pending partial
 * block, the total length) rather than from SHA256_CTX's memory, so the JSON does not depend on the
 * struct layout or byte order. */
int hash_state_to_json(const HashState *h, json_t **ret) {
        json_t *words = json_array(), *j;
        uint8_t tail[SHA256_CBLOCK];
        char hex[2 * SHA256_CBLOCK + 1];
        unsigned num = h->ctx.num;

        if (!words)
                return -ENOMEM;
        for (size_t i = 0; i < 8; i++)
                json_array_append_new(words, json_integer((json_int_t) h->ctx.h[i]));
        /* SHA256_Update copies pending input bytes into data[] as they are (md32_common.h). */
        memcpy(tail, h->ctx.data, num);
        hex_encode(tail, num, hex);
        j = json_pack("{s:o, s:I, s:s}", "h", words, "length", (json_int_t) h->bytes, "tail", hex);
        if (!j)
                return -ENOMEM;
        *ret = j;
        return 0;
}

int hash_state_from_json(json_t *j, HashState **ret) {
        _cleanup_(hash_state_freep) HashState *h = NULL;
        json_t *words = json_object_get(j, "h"), *len = json_object_get(j, "length"),
               *tail = json_object_get(j, "tail");
        uint8_t buf[SHA256_CBLOCK];
        const char *tailhex;
        size_t num;
        int r;

        if (!json_is_array(words) || json_array_size(words) != 8 || !json_is_integer(len) ||
            json_integer_value(len) < 0 || !json_is_string(tail))
                return -EINVAL;
        tailhex = json_string_value(tail);
        num = strlen(tailhex) / 2;
        if (num >= SHA256_CBLOCK || (uint64_t) json_integer_value(len) % SHA256_CBLOCK != num)
                return -EINVAL;
        r = hex_decode(tailhex, buf, num);
        if (r < 0)
                return r;
        r = hash_state_new(&h);
        if (r < 0)
                return r;
        for (size_t i = 0; i < 8; i++) {
                json_t *w = json_array_get(words, i);
                if (!json_is_integer(w) || json_integer_value(w) < 0 || json_integer_value(w) > UINT32_MAX)
                        return -EINVAL;
                h->ctx.h[i] = (SHA_LONG) json_integer_value(w);
        }
        h->bytes = (uint64_t) json_integer_value(len);
        /* Bit length of the data already folded into h[], split the way SHA256_Update keeps it. */
        uint64_t bits = (h->bytes - num) * 8;
        h->ctx.Nl = (SHA_LONG) (bits & 0xffffffffu);
        h->ctx.Nh = (SHA_LONG) (bits >> 32);
        h->ctx.num = 0;
        memset(h->ctx.data, 0, sizeof h->ctx.data);
        /* Feeding the tail through Update rebuilds data[], num and adds its bits to Nl/Nh. */
        if (num > 0)
                (void) SHA256_Update(&h->ctx, buf, num);
        *ret = TAKE_PTR(h);
        return 0;
}
