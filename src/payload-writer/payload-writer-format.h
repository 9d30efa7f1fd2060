/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The CrAU payload container (spec §4.1-4.5): header, manifest limits and validation, signature blob,
 * and the error codes of spec §1.6 that every refusal carries. */

#include <stdarg.h>

#include "macro.h"
#include "update_metadata.pb-c.h"

typedef ChromeosUpdateEngine__DeltaArchiveManifest Manifest;
typedef ChromeosUpdateEngine__InstallOperation InstallOperation;
typedef ChromeosUpdateEngine__InstallProcedure InstallProcedure;
typedef ChromeosUpdateEngine__InstallInfo InstallInfo;
typedef ChromeosUpdateEngine__Extent Extent;
typedef ChromeosUpdateEngine__Signatures Signatures;
typedef ChromeosUpdateEngine__Signatures__Signature Signature;

#define PAYLOAD_MAGIC "CrAU"
#define PAYLOAD_HEADER_SIZE 20u
#define PAYLOAD_FORMAT_VERSION 1u
/* Production manifests are ~60 KiB; anything near this is not a payload we should parse. */
#define PAYLOAD_MANIFEST_MAX (16u * 1024u * 1024u)
/* One operation's blob and its decoded output are held in memory: this bounds both. */
#define PAYLOAD_OP_DATA_MAX (64u * 1024u * 1024u)
#define PAYLOAD_OPS_MAX (1u << 20)
#define PAYLOAD_BLOCK_SIZE_MAX (64u * 1024u * 1024u)
#define PAYLOAD_SIGNATURES_MAX (64u * 1024u)
#define PAYLOAD_SPARSE_HOLE UINT64_MAX
/* The only Signatures entry a client checks (kSignatureMessageCurrentVersion). */
#define PAYLOAD_SIGNATURE_VERSION 2u
#define PAYLOAD_SIGNING_KEYS_MAX 3u

#define OP_REPLACE CHROMEOS_UPDATE_ENGINE__INSTALL_OPERATION__TYPE__REPLACE
#define OP_REPLACE_BZ CHROMEOS_UPDATE_ENGINE__INSTALL_OPERATION__TYPE__REPLACE_BZ
#define OP_MOVE CHROMEOS_UPDATE_ENGINE__INSTALL_OPERATION__TYPE__MOVE
#define OP_BSDIFF CHROMEOS_UPDATE_ENGINE__INSTALL_OPERATION__TYPE__BSDIFF
#define OP_REPLACE_XZ CHROMEOS_UPDATE_ENGINE__INSTALL_OPERATION__TYPE__REPLACE_XZ
#define PROC_KERNEL CHROMEOS_UPDATE_ENGINE__INSTALL_PROCEDURE__TYPE__KERNEL
#define PROC_PCR_POLICY CHROMEOS_UPDATE_ENGINE__INSTALL_PROCEDURE__TYPE__PCR_POLICY

/* update_engine's ErrorCode numbers (spec §1.6) used by the payload path. */
typedef enum PayloadErrorCode {
        PAYLOAD_OK = 0,
        PAYLOAD_ERROR = 1,
        PAYLOAD_INSTALL_DEVICE_OPEN_ERROR = 7,
        PAYLOAD_KERNEL_DEVICE_OPEN_ERROR = 8,
        PAYLOAD_DOWNLOAD_TRANSFER_ERROR = 9,
        PAYLOAD_HASH_MISMATCH_ERROR = 10,
        PAYLOAD_SIZE_MISMATCH_ERROR = 11,
        PAYLOAD_VERIFICATION_ERROR = 12,
        PAYLOAD_NEW_PARTITION_INFO_ERROR = 13,
        PAYLOAD_WRITE_ERROR = 14,
        PAYLOAD_NEW_ROOTFS_VERIFICATION_ERROR = 15,
        PAYLOAD_NEW_KERNEL_VERIFICATION_ERROR = 16,
        PAYLOAD_SIGNED_PAYLOAD_EXPECTED_ERROR = 17,
        PAYLOAD_PUBKEY_VERIFICATION_ERROR = 18,
        PAYLOAD_STATE_INITIALIZATION_ERROR = 20,
        PAYLOAD_INVALID_METADATA_MAGIC = 21,
        PAYLOAD_SIGNATURE_MISSING_IN_MANIFEST = 22,
        PAYLOAD_MANIFEST_PARSE_ERROR = 23,
        PAYLOAD_OPERATION_HASH_VERIFICATION_ERROR = 27,
        PAYLOAD_OPERATION_EXECUTION_ERROR = 28,
        PAYLOAD_OPERATION_HASH_MISMATCH = 29,
        PAYLOAD_OPERATION_HASH_MISSING = 38,
        PAYLOAD_NEW_PCR_POLICY_VERIFICATION_ERROR = 42,
        PAYLOAD_DOWNLOAD_INCOMPLETE = 100,
} PayloadErrorCode;

const char *payload_error_code_to_string(int code);

typedef struct PayloadError {
        int code; /* PayloadErrorCode; 0 = none */
        char message[512];
} PayloadError;

/* Records the first error only (later ones are consequences); returns -errno_value. */
int payload_error_set(PayloadError *e, int code, int errno_value, const char *format, ...) _printf_(4, 5);
#define payload_fail(e, code, ...) payload_error_set((e), (code), EBADMSG, __VA_ARGS__)

/* Header: magic, version, manifest length (big-endian). */
int payload_header_parse(const uint8_t header[PAYLOAD_HEADER_SIZE], uint64_t *ret_manifest_size, PayloadError *e);
void payload_header_write(uint8_t header[PAYLOAD_HEADER_SIZE], uint64_t manifest_size);

/* Unpacks and validates a manifest: block size, op count and sizes, extents that do not overflow,
 * blobs contiguous from 0 in execution order (partition ops, then each procedure's ops), hashes on
 * every op with data, signatures_offset at the end of the blobs. */
int payload_manifest_parse(const uint8_t *data, size_t size, Manifest **ret, PayloadError *e);
Manifest *payload_manifest_free(Manifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manifest *, payload_manifest_free);

uint32_t payload_manifest_block_size(const Manifest *m);
/* Operations in execution order: the partition's, then each procedure's. */
size_t payload_manifest_n_operations(const Manifest *m);
/* The i-th op in execution order; ret_procedure is NULL for partition ops. */
const InstallOperation *payload_manifest_operation(const Manifest *m, size_t i, const InstallProcedure **ret_procedure);
/* Sum of data lengths of all executed ops = where the signature blob starts. */
uint64_t payload_manifest_blob_size(const Manifest *m);
bool payload_manifest_is_signed(const Manifest *m);

/* Bytes the extents of op cover, sparse holes included; -EOVERFLOW on overflow. */
int payload_op_extents_size(const InstallOperation *op, uint32_t block_size, uint64_t *ret);
const char *payload_op_type_to_string(int type);
const char *payload_procedure_type_to_string(int type);

/* Signatures blob (spec §4.5). versions are assigned 2+1-N ... 2. */
int payload_signatures_pack(const uint8_t *const *sigs, const size_t *sizes, size_t n, uint8_t **ret, size_t *ret_size);
int payload_signatures_find(const uint8_t *blob, size_t size, uint32_t version, uint8_t **ret_sig, size_t *ret_size,
                            PayloadError *e);
