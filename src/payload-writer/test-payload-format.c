/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include <jansson.h>
#include <openssl/rsa.h>

#include "fileio.h"
#include "hash.h"
#include "payload-writer-format.h"
#include "payload-writer-hashstate.h"
#include "payload-writer-keys.h"

/* The shared fixtures live next to the source tree (../shared), or where SWITCHYARD_SHARED_DIR says. */
static char *fixture(const char *rel) {
        const char *shared = getenv("SWITCHYARD_SHARED_DIR");
        char *p = NULL;
        if (shared)
                assert_true(asprintf(&p, "%s/fixtures/%s", shared, rel) > 0);
        else
                assert_true(asprintf(&p, "%s/%s", FIXTURES_DIR, rel) > 0);
        if (access(p, F_OK) < 0) {
                print_message("fixture %s not found (set SWITCHYARD_SHARED_DIR)\n", p);
                free(p);
                skip();
        }
        return p;
}

static uint8_t *vector_data(json_t *v, size_t *ret_size) {
        const char *name = json_string_value(json_object_get(v, "name"));
        size_t len = (size_t) json_integer_value(json_object_get(v, "length"));
        uint8_t *d = malloc(len + 1);
        assert_non_null(d);
        if (streq(name, "rand")) {
                _cleanup_free_ char *path = fixture("omaha/payload/rand-4096.b64"), *text = NULL, *flat = NULL;
                size_t size, k = 0;
                assert_int_equal(read_full_file(path, 1 << 20, &text, &size), 0);
                flat = malloc(size + 1);
                for (size_t i = 0; i < size; i++)
                        if (text[i] != '\n' && text[i] != '\r')
                                flat[k++] = text[i];
                flat[k] = 0;
                assert_int_equal(base64_decode(flat, d, len), (ssize_t) len);
        } else
                memset(d, streq(name, "empty") ? 0 : 0xff, len);
        *ret_size = len;
        return d;
}

/* The fixture's vectors, hashed whole, and through a checkpointed midstate split at every position
 * class (block-aligned, mid-block, tail-only). */
static void test_hash_vectors(void **state) {
        _cleanup_free_ char *path = fixture("omaha/payload/hash-vectors.json");
        json_t *root = json_load_file(path, 0, NULL), *vectors;
        assert_non_null(root);
        vectors = json_object_get(root, "vectors");
        assert_int_equal(json_array_size(vectors), 4);
        for (size_t i = 0; i < json_array_size(vectors); i++) {
                json_t *v = json_array_get(vectors, i);
                size_t len;
                _cleanup_free_ uint8_t *data = vector_data(v, &len);
                const size_t splits[] = { 0, 1, 63, 64, 65, 1000, len / 2, len };
                for (size_t s = 0; s < ELEMENTSOF(splits); s++) {
                        size_t at = MIN(splits[s], len);
                        _cleanup_(hash_state_freep) HashState *h = NULL, *h2 = NULL;
                        json_t *j = NULL;
                        uint8_t d[32];
                        char hex[SHA256_HEX_SIZE], b64[SHA256_BASE64_SIZE];

                        assert_int_equal(hash_state_new(&h), 0);
                        hash_state_update(h, data, at);
                        assert_int_equal(hash_state_to_json(h, &j), 0);
                        /* Through text, as a checkpoint file would carry it. */
                        char *text = json_dumps(j, 0);
                        json_decref(j);
                        j = json_loads(text, 0, NULL);
                        free(text);
                        assert_int_equal(hash_state_from_json(j, &h2), 0);
                        json_decref(j);
                        assert_int_equal(hash_state_bytes(h2), at);
                        hash_state_update(h2, data + at, len - at);
                        hash_state_peek(h2, d);
                        hex_encode(d, 32, hex);
                        base64_encode(d, 32, b64);
                        assert_string_equal(hex, json_string_value(json_object_get(v, "sha256_hex")));
                        assert_string_equal(b64, json_string_value(json_object_get(v, "sha256_base64")));
                }
        }
        json_decref(root);
}

static void test_hash_state_rejects_garbage(void **state) {
        HashState *h = NULL;
        json_t *j = json_pack("{s:[i,i], s:i, s:s}", "h", 1, 2, "length", 3, "tail", "00");
        assert_int_equal(hash_state_from_json(j, &h), -EINVAL);
        json_decref(j);
        j = json_pack("{s:[i,i,i,i,i,i,i,i], s:i, s:s}", "h", 1, 2, 3, 4, 5, 6, 7, 8, "length", 3, "tail", "00");
        assert_int_equal(hash_state_from_json(j, &h), -EINVAL); /* tail length does not match length % 64 */
        json_decref(j);
        assert_null(h);
}

static void parse_hex_bytes(const char *s, uint8_t *out, size_t *ret_n) {
        size_t n = 0;
        while (*s) {
                if (*s == ' ') {
                        s++;
                        continue;
                }
                char two[3] = { s[0], s[1], 0 };
                assert_int_equal(hex_decode(two, out + n, 1), 0);
                n++;
                s += 2;
        }
        *ret_n = n;
}

static void test_signature_blob_layout(void **state) {
        _cleanup_free_ char *path = fixture("omaha/payload/signatures-blob-layout.json");
        json_t *root = json_load_file(path, 0, NULL), *one;
        uint8_t sig1[256], sig2[256], prefix[16];
        const uint8_t *sigs[2] = { sig1, sig2 };
        size_t sizes[2] = { 256, 256 }, n_prefix;
        _cleanup_free_ uint8_t *blob = NULL, *blob2 = NULL, *found = NULL;
        size_t size, found_size;
        PayloadError e = {};

        assert_non_null(root);
        one = json_object_get(root, "one_2048bit_signature");
        memset(sig1, 0xa5, sizeof sig1);
        memset(sig2, 0x5a, sizeof sig2);
        assert_int_equal(payload_signatures_pack(sigs, sizes, 1, &blob, &size), 0);
        assert_int_equal(size, json_integer_value(json_object_get(one, "total_size")));
        parse_hex_bytes(json_string_value(json_object_get(one, "hex_prefix_before_256_signature_bytes")), prefix, &n_prefix);
        assert_int_equal(n_prefix, 8);
        assert_memory_equal(blob, prefix, n_prefix);
        assert_memory_equal(blob + 8, sig1, 256);

        /* Two keys: versions 1 and 2, and the client picks version 2. */
        assert_int_equal(payload_signatures_pack(sigs, sizes, 2, &blob2, &size), 0);
        assert_int_equal(size, json_integer_value(json_object_get(json_object_get(root, "two_signatures_versions_1_and_2"),
                                                                   "total_size")));
        assert_int_equal(payload_signatures_find(blob2, size, 2, &found, &found_size, &e), 0);
        assert_int_equal(found_size, 256);
        assert_memory_equal(found, sig2, 256);
        assert_int_equal(payload_signatures_find(blob2, size, 3, &found, &found_size, &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_PUBKEY_VERIFICATION_ERROR);
        json_decref(root);
}

/* Signs with a fresh key and opens the signature raw: the block must be exactly the EMSA-PKCS1-v1_5
 * layout of the fixture (00 01, 202 x ff, 00, DigestInfo prefix, digest). */
static void test_pkcs1_padding(void **state) {
        _cleanup_free_ char *path = fixture("omaha/payload/rsa-pkcs1v15-sha256-padding.txt"), *text = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        uint8_t digest[32], block[256], expected[256], info[19];
        size_t size, sig_size, block_size = sizeof block;
        const char *prefix_hex = NULL;
        EVP_PKEY *key;
        EVP_PKEY_CTX *ctx;

        assert_int_equal(read_full_file(path, 1 << 16, &text, &size), 0);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
                if (line[0] != '#' && strlen(line) == 38)
                        prefix_hex = line;
        assert_non_null(prefix_hex);
        assert_int_equal(hex_decode(prefix_hex, info, sizeof info), 0);

        key = EVP_RSA_gen(2048);
        assert_non_null(key);
        assert_int_equal(sha256_buffer("switchyard", 10, digest), 0);
        assert_int_equal(private_key_sign(key, digest, &sig, &sig_size), 0);
        assert_int_equal(sig_size, 256);
        assert_int_equal(public_key_verify(key, digest, sig, sig_size), 0);
        digest[0] ^= 1;
        assert_int_equal(public_key_verify(key, digest, sig, sig_size), -EBADMSG);
        digest[0] ^= 1;

        ctx = EVP_PKEY_CTX_new(key, NULL);
        assert_int_equal(EVP_PKEY_verify_recover_init(ctx), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
        assert_int_equal(EVP_PKEY_verify_recover(ctx, block, &block_size, sig, sig_size), 1);
        assert_int_equal(block_size, 256);
        expected[0] = 0x00;
        expected[1] = 0x01;
        memset(expected + 2, 0xff, 202);
        expected[204] = 0x00;
        memcpy(expected + 205, info, 19);
        memcpy(expected + 224, digest, 32);
        assert_memory_equal(block, expected, 256);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(key);
}

static void test_key_fixtures(void **state) {
        _cleanup_free_ char *dir = fixture("omaha/keys"), *dev = fixture("omaha/keys/developer-v1.pub.pem");
        _cleanup_(trusted_keys_freep) TrustedKeys *k = NULL, *k2 = NULL;
        uint8_t digest[32] = {}, sig[256] = {};

        assert_int_equal(trusted_keys_new(&k), 0);
        assert_int_equal(trusted_keys_add_path(k, dir, false), 2);
        assert_int_equal(trusted_keys_count(k), 2);
        assert_non_null(strstr(trusted_keys_name(k, 0), "developer-v1.pub.pem"));
        assert_non_null(strstr(trusted_keys_name(k, 1), "official-v2.pub.pem"));
        assert_int_equal(trusted_keys_verify(k, digest, sig, sizeof sig), -EBADMSG);

        assert_int_equal(trusted_keys_new(&k2), 0);
        assert_int_equal(trusted_keys_add_path(k2, dev, false), 1);
        assert_int_equal(trusted_keys_add_path(k2, "/nonexistent/key.pem", true), 0);
        assert_true(trusted_keys_add_path(k2, "/nonexistent/key.pem", false) < 0);
        _cleanup_free_ char *not_a_key = fixture("omaha/payload/hash-vectors.json");
        assert_true(trusted_keys_add_path(k2, not_a_key, false) < 0);
        assert_int_equal(trusted_keys_count(k2), 1);
}

static void test_header(void **state) {
        uint8_t h[PAYLOAD_HEADER_SIZE];
        uint64_t size = 0;
        PayloadError e = {};

        payload_header_write(h, 60711);
        assert_memory_equal(h, "CrAU\0\0\0\0\0\0\0\1\0\0\0\0\0\0\xed\x27", 20);
        assert_int_equal(payload_header_parse(h, &size, &e), 0);
        assert_int_equal(size, 60711);

        h[0] = 'X';
        assert_int_equal(payload_header_parse(h, &size, &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_INVALID_METADATA_MAGIC);
        e = (PayloadError) {};
        payload_header_write(h, 1);
        h[11] = 2;
        assert_int_equal(payload_header_parse(h, &size, &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_INVALID_METADATA_MAGIC);
        e = (PayloadError) {};
        payload_header_write(h, PAYLOAD_MANIFEST_MAX + 1ULL);
        assert_int_equal(payload_header_parse(h, &size, &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_MANIFEST_PARSE_ERROR);
}

static int pack_manifest(Manifest *m, uint8_t **ret) {
        size_t n = chromeos_update_engine__delta_archive_manifest__get_packed_size(m);
        *ret = malloc(n + 1);
        chromeos_update_engine__delta_archive_manifest__pack(m, *ret);
        return (int) n;
}

static void test_manifest_validation(void **state) {
        Manifest m = CHROMEOS_UPDATE_ENGINE__DELTA_ARCHIVE_MANIFEST__INIT;
        InstallOperation a = CHROMEOS_UPDATE_ENGINE__INSTALL_OPERATION__INIT, b = CHROMEOS_UPDATE_ENGINE__INSTALL_OPERATION__INIT;
        InstallOperation *ops[2] = { &a, &b };
        uint8_t hash[32] = {};
        Manifest *out = NULL;
        PayloadError e = {};
        uint8_t *buf;
        int n;

        a.has_data_offset = a.has_data_length = b.has_data_offset = b.has_data_length = true;
        a.data_length = 100;
        b.data_offset = 100;
        b.data_length = 50;
        a.has_data_sha256_hash = b.has_data_sha256_hash = true;
        a.data_sha256_hash = b.data_sha256_hash = (ProtobufCBinaryData) { 32, hash };
        m.partition_operations = ops;
        m.n_partition_operations = 2;
        m.has_signatures_offset = m.has_signatures_size = true;
        m.signatures_offset = 150;
        m.signatures_size = 264;

        n = pack_manifest(&m, &buf);
        assert_int_equal(payload_manifest_parse(buf, n, &out, &e), 0);
        assert_int_equal(payload_manifest_blob_size(out), 150);
        assert_int_equal(payload_manifest_block_size(out), 4096);
        out = payload_manifest_free(out);
        free(buf);

        b.data_offset = 101; /* gap between blobs */
        n = pack_manifest(&m, &buf);
        assert_int_equal(payload_manifest_parse(buf, n, &out, &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_OPERATION_EXECUTION_ERROR);
        free(buf);
        b.data_offset = 100;

        e = (PayloadError) {};
        b.has_data_sha256_hash = false;
        n = pack_manifest(&m, &buf);
        assert_int_equal(payload_manifest_parse(buf, n, &out, &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_OPERATION_HASH_MISSING);
        free(buf);
        b.has_data_sha256_hash = true;

        e = (PayloadError) {};
        m.signatures_offset = 149;
        n = pack_manifest(&m, &buf);
        assert_int_equal(payload_manifest_parse(buf, n, &out, &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_OPERATION_EXECUTION_ERROR);
        free(buf);

        e = (PayloadError) {};
        assert_int_equal(payload_manifest_parse((const uint8_t *) "\xff\xff\xff", 3, &out, &e), -EBADMSG);
        assert_int_equal(e.code, PAYLOAD_MANIFEST_PARSE_ERROR);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hash_vectors),
                cmocka_unit_test(test_hash_state_rejects_garbage),
                cmocka_unit_test(test_signature_blob_layout),
                cmocka_unit_test(test_pkcs1_padding),
                cmocka_unit_test(test_key_fixtures),
                cmocka_unit_test(test_header),
                cmocka_unit_test(test_manifest_validation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
