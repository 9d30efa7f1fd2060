/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A SHA-256 whose midstate can be saved to a checkpoint and restored after a restart, so that a
 * resumed apply does not have to re-read the bytes it already consumed. OpenSSL 3's EVP API cannot
 * export a midstate, so this one file uses the (deprecated, still shipped) SHA256_CTX API. */

#include <jansson.h>

#include "macro.h"

typedef struct HashState HashState;

int hash_state_new(HashState **ret);
HashState *hash_state_free(HashState *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(HashState *, hash_state_free);
void hash_state_update(HashState *h, const void *data, size_t size);
/* Digest of everything so far; h stays usable. */
void hash_state_peek(const HashState *h, uint8_t ret[32]);
uint64_t hash_state_bytes(const HashState *h);
/* {"h": [8 words], "length": bytes, "tail": "hex of the unprocessed partial block"} */
int hash_state_to_json(const HashState *h, json_t **ret);
int hash_state_from_json(json_t *j, HashState **ret);
