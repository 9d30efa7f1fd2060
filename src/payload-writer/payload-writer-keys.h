/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Trusted public keys and RSASSA-PKCS1-v1_5/SHA-256 over the 32-byte payload hash (spec §4.5). */

#include <openssl/evp.h>

#include "macro.h"

#define PAYLOAD_DEFAULT_KEY "/usr/share/update_engine/update-payload-key.pub.pem"
#define PAYLOAD_DEFAULT_KEY_DIR "/etc/switchyard/payload-keys.d"

typedef struct TrustedKeys TrustedKeys;

int trusted_keys_new(TrustedKeys **ret);
TrustedKeys *trusted_keys_free(TrustedKeys *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(TrustedKeys *, trusted_keys_free);
/* Adds the PEM public key(s) of a file, or of every regular file in a directory (in name order).
 * With missing_ok a path that does not exist adds nothing. */
int trusted_keys_add_path(TrustedKeys *k, const char *path, bool missing_ok);
/* The set apply uses: every path given (each must exist), or, with none, the default key file and key
 * directory below root (NULL or "/" = the host), which may be missing. */
int trusted_keys_load(const char *root, char *const *paths, size_t n, TrustedKeys **ret);
size_t trusted_keys_count(const TrustedKeys *k);
const char *trusted_keys_name(const TrustedKeys *k, size_t i);
/* Returns the index of the first key under which sig is a valid signature of digest, or -EBADMSG. */
int trusted_keys_verify(const TrustedKeys *k, const uint8_t digest[32], const uint8_t *sig, size_t sig_size);

int private_key_load(const char *path, EVP_PKEY **ret);
size_t private_key_signature_size(EVP_PKEY *key);
int private_key_sign(EVP_PKEY *key, const uint8_t digest[32], uint8_t **ret_sig, size_t *ret_size);
int public_key_verify(EVP_PKEY *key, const uint8_t digest[32], const uint8_t *sig, size_t sig_size);
