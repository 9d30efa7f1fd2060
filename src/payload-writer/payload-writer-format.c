/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <endian.h>
#include <inttypes.h>

#include "payload-writer-format.h"

const char *payload_error_code_to_string(int code) {
        switch (code) {
        case PAYLOAD_OK: return "Success";
        case PAYLOAD_ERROR: return "Error";
        case PAYLOAD_INSTALL_DEVICE_OPEN_ERROR: return "InstallDeviceOpenError";
        case PAYLOAD_KERNEL_DEVICE_OPEN_ERROR: return "KernelDeviceOpenError";
        case PAYLOAD_DOWNLOAD_TRANSFER_ERROR: return "DownloadTransferError";
        case PAYLOAD_HASH_MISMATCH_ERROR: return "PayloadHashMismatchError";
        case PAYLOAD_SIZE_MISMATCH_ERROR: return "PayloadSizeMismatchError";
        case PAYLOAD_VERIFICATION_ERROR: return "DownloadPayloadVerificationError";
        case PAYLOAD_NEW_PARTITION_INFO_ERROR: return "DownloadNewPartitionInfoError";
        case PAYLOAD_WRITE_ERROR: return "DownloadWriteError";
        case PAYLOAD_NEW_ROOTFS_VERIFICATION_ERROR: return "NewRootfsVerificationError";
        case PAYLOAD_NEW_KERNEL_VERIFICATION_ERROR: return "NewKernelVerificationError";
        case PAYLOAD_SIGNED_PAYLOAD_EXPECTED_ERROR: return "SignedDeltaPayloadExpectedError";
        case PAYLOAD_PUBKEY_VERIFICATION_ERROR: return "DownloadPayloadPubKeyVerificationError";
        case PAYLOAD_STATE_INITIALIZATION_ERROR: return "DownloadStateInitializationError";
        case PAYLOAD_INVALID_METADATA_MAGIC: return "DownloadInvalidMetadataMagicString";
        case PAYLOAD_SIGNATURE_MISSING_IN_MANIFEST: return "DownloadSignatureMissingInManifest";
        case PAYLOAD_MANIFEST_PARSE_ERROR: return "DownloadManifestParseError";
        case PAYLOAD_OPERATION_HASH_VERIFICATION_ERROR: return "DownloadOperationHashVerificationError";
        case PAYLOAD_OPERATION_EXECUTION_ERROR: return "DownloadOperationExecutionError";
        case PAYLOAD_OPERATION_HASH_MISMATCH: return "DownloadOperationHashMismatch";
        case PAYLOAD_OPERATION_HASH_MISSING: return "DownloadOperationHashMissingError";
        case PAYLOAD_NEW_PCR_POLICY_VERIFICATION_ERROR: return "NewPCRPolicyVerificationError";
        case PAYLOAD_DOWNLOAD_INCOMPLETE: return "DownloadIncomplete";
        default: return "Unknown";
        }
}

int payload_error_set(PayloadError *e, int code, int errno_value, const char *format, ...) {
        if (e && e->code == 0) {
                va_list ap;
                e->code = code;
                va_start(ap, format);
                (void) vsnprintf(e->message, sizeof e->message, format, ap);
                va_end(ap);
        }
        return -ERRNO_VALUE(errno_value);
}

int payload_header_parse(const uint8_t header[PAYLOAD_HEADER_SIZE], uint64_t *ret_manifest_size, PayloadError *e) {
        uint64_t version, size;

        if (memcmp(header, PAYLOAD_MAGIC, 4) != 0)
                return payload_fail(e, PAYLOAD_INVALID_METADATA_MAGIC,
                                    "bad magic %02x %02x %02x %02x, expected \"CrAU\"", header[0], header[1],
                                    header[2], header[3]);
        memcpy(&version, header + 4, 8);
        version = be64toh(version);
        if (version != PAYLOAD_FORMAT_VERSION)
                return payload_fail(e, PAYLOAD_INVALID_METADATA_MAGIC,
                                    "unsupported payload format version %" PRIu64 ", expected 1", version);
        memcpy(&size, header + 12, 8);
        size = be64toh(size);
        if (size == 0 || size > PAYLOAD_MANIFEST_MAX)
                return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR,
                                    "manifest length %" PRIu64 " is outside 1..%u", size, PAYLOAD_MANIFEST_MAX);
        *ret_manifest_size = size;
        return 0;
}

void payload_header_write(uint8_t header[PAYLOAD_HEADER_SIZE], uint64_t manifest_size) {
        uint64_t v = htobe64(PAYLOAD_FORMAT_VERSION), s = htobe64(manifest_size);
        memcpy(header, PAYLOAD_MAGIC, 4);
        memcpy(header + 4, &v, 8);
        memcpy(header + 12, &s, 8);
}

Manifest *payload_manifest_free(Manifest *m) {
        if (m)
                chromeos_update_engine__delta_archive_manifest__free_unpacked(m, NULL);
        return NULL;
}

uint32_t payload_manifest_block_size(const Manifest *m) {
        return m->has_block_size ? m->block_size : 4096;
}

size_t payload_manifest_n_operations(const Manifest *m) {
        size_t n = m->n_partition_operations;
        for (size_t i = 0; i < m->n_procedures; i++)
                n += m->procedures[i]->n_operations;
        return n;
}

const InstallOperation *payload_manifest_operation(const Manifest *m, size_t i, const InstallProcedure **ret_procedure) {
        if (i < m->n_partition_operations) {
                if (ret_procedure)
                        *ret_procedure = NULL;
                return m->partition_operations[i];
        }
        i -= m->n_partition_operations;
        for (size_t p = 0; p < m->n_procedures; p++) {
                if (i < m->procedures[p]->n_operations) {
                        if (ret_procedure)
                                *ret_procedure = m->procedures[p];
                        return m->procedures[p]->operations[i];
                }
                i -= m->procedures[p]->n_operations;
        }
        return NULL;
}

uint64_t payload_manifest_blob_size(const Manifest *m) {
        uint64_t total = 0;
        size_t n = payload_manifest_n_operations(m);
        for (size_t i = 0; i < n; i++) {
                const InstallOperation *op = payload_manifest_operation(m, i, NULL);
                total += op->has_data_length ? op->data_length : 0;
        }
        return total;
}

bool payload_manifest_is_signed(const Manifest *m) {
        return m->has_signatures_offset && m->has_signatures_size && m->signatures_size > 0;
}

int payload_op_extents_size(const InstallOperation *op, uint32_t block_size, uint64_t *ret) {
        uint64_t total = 0;
        for (size_t i = 0; i < op->n_dst_extents; i++) {
                uint64_t nb = op->dst_extents[i]->num_blocks, bytes;
                if (__builtin_mul_overflow(nb, (uint64_t) block_size, &bytes) ||
                    __builtin_add_overflow(total, bytes, &total))
                        return -EOVERFLOW;
        }
        *ret = total;
        return 0;
}

const char *payload_op_type_to_string(int type) {
        switch (type) {
        case OP_REPLACE: return "REPLACE";
        case OP_REPLACE_BZ: return "REPLACE_BZ";
        case OP_MOVE: return "MOVE";
        case OP_BSDIFF: return "BSDIFF";
        case OP_REPLACE_XZ: return "REPLACE_XZ";
        default: return "UNKNOWN";
        }
}

const char *payload_procedure_type_to_string(int type) {
        switch (type) {
        case PROC_KERNEL: return "KERNEL";
        case PROC_PCR_POLICY: return "PCR_POLICY";
        default: return "UNKNOWN";
        }
}

static int validate_info(const InstallInfo *info, const char *what, PayloadError *e) {
        if (info && info->has_hash && info->hash.len != 32)
                return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR, "%s hash is %zu bytes, expected 32", what,
                                    info->hash.len);
        return 0;
}

static int validate_op(const InstallOperation *op, size_t index, const char *where, uint32_t block_size,
                       uint64_t *blob_offset, PayloadError *e) {
        uint64_t bytes, off = op->has_data_offset ? op->data_offset : 0;
        uint64_t len = op->has_data_length ? op->data_length : 0;

        if (len > PAYLOAD_OP_DATA_MAX)
                return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR,
                                    "%s operation %zu carries %" PRIu64 " bytes, more than the limit of %u", where,
                                    index, len, PAYLOAD_OP_DATA_MAX);
        if (payload_op_extents_size(op, block_size, &bytes) < 0)
                return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR, "%s operation %zu has extents that overflow",
                                    where, index);
        for (size_t i = 0; i < op->n_dst_extents; i++) {
                const Extent *x = op->dst_extents[i];
                uint64_t end;
                if (x->start_block != PAYLOAD_SPARSE_HOLE &&
                    (__builtin_add_overflow(x->start_block, x->num_blocks, &end) ||
                     __builtin_mul_overflow(end, (uint64_t) block_size, &end)))
                        return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR,
                                            "%s operation %zu extent %zu lies beyond 2^64 bytes", where, index, i);
        }
        if (len == 0)
                return 0;
        if (off != *blob_offset)
                return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR,
                                    "%s operation %zu has data_offset %" PRIu64 ", expected %" PRIu64
                                    " (blobs must be contiguous)", where, index, off, *blob_offset);
        if (!op->has_data_sha256_hash || op->data_sha256_hash.len == 0)
                return payload_fail(e, PAYLOAD_OPERATION_HASH_MISSING, "%s operation %zu has data but no hash",
                                    where, index);
        if (op->data_sha256_hash.len != 32)
                return payload_fail(e, PAYLOAD_OPERATION_HASH_VERIFICATION_ERROR,
                                    "%s operation %zu hash is %zu bytes, expected 32", where, index,
                                    op->data_sha256_hash.len);
        *blob_offset += len;
        return 0;
}

int payload_manifest_parse(const uint8_t *data, size_t size, Manifest **ret, PayloadError *e) {
        _cleanup_(payload_manifest_freep) Manifest *m = NULL;
        uint64_t blob = 0;
        uint32_t bs;
        int r;

        m = chromeos_update_engine__delta_archive_manifest__unpack(NULL, size, data);
        if (!m)
                return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR, "manifest (%zu bytes) is not a valid protobuf",
                                    size);
        bs = payload_manifest_block_size(m);
        if (bs == 0 || bs > PAYLOAD_BLOCK_SIZE_MAX)
                return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR, "block size %" PRIu32 " is outside 1..%u", bs,
                                    PAYLOAD_BLOCK_SIZE_MAX);
        if (payload_manifest_n_operations(m) > PAYLOAD_OPS_MAX || m->n_noop_operations > PAYLOAD_OPS_MAX)
                return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR, "manifest has more than %u operations",
                                    PAYLOAD_OPS_MAX);
        for (size_t i = 0; i < m->n_partition_operations; i++) {
                r = validate_op(m->partition_operations[i], i, "partition", bs, &blob, e);
                if (r < 0)
                        return r;
        }
        for (size_t p = 0; p < m->n_procedures; p++) {
                const InstallProcedure *proc = m->procedures[p];
                char where[64];
                snprintf(where, sizeof where, "procedure %zu (%s)", p,
                         payload_procedure_type_to_string(proc->has_type ? (int) proc->type : PROC_KERNEL));
                for (size_t i = 0; i < proc->n_operations; i++) {
                        r = validate_op(proc->operations[i], i, where, bs, &blob, e);
                        if (r < 0)
                                return r;
                }
                r = validate_info(proc->new_info, where, e);
                if (r < 0)
                        return r;
        }
        r = validate_info(m->new_partition_info, "new_partition_info", e);
        if (r < 0)
                return r;
        if (m->has_signatures_offset != m->has_signatures_size)
                return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR,
                                    "manifest has only one of signatures_offset and signatures_size");
        if (m->has_signatures_offset) {
                if (m->signatures_offset != blob)
                        return payload_fail(e, PAYLOAD_OPERATION_EXECUTION_ERROR,
                                            "signatures_offset is %" PRIu64 " but the operations' data ends at %" PRIu64,
                                            m->signatures_offset, blob);
                if (m->signatures_size > PAYLOAD_SIGNATURES_MAX)
                        return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR,
                                            "signatures_size %" PRIu64 " exceeds the limit of %u", m->signatures_size,
                                            PAYLOAD_SIGNATURES_MAX);
        }
        *ret = TAKE_PTR(m);
        return 0;
}

int payload_signatures_pack(const uint8_t *const *sigs, const size_t *sizes, size_t n, uint8_t **ret, size_t *ret_size) {
        Signatures s = CHROMEOS_UPDATE_ENGINE__SIGNATURES__INIT;
        _cleanup_free_ Signature *entries = NULL;
        _cleanup_free_ Signature **ptrs = NULL;
        uint8_t *buf;
        size_t len;

        if (n == 0 || n > PAYLOAD_SIGNING_KEYS_MAX)
                return -EINVAL;
        entries = calloc(n, sizeof *entries);
        ptrs = calloc(n, sizeof *ptrs);
        if (!entries || !ptrs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                chromeos_update_engine__signatures__signature__init(&entries[i]);
                entries[i].has_version = true;
                entries[i].version = (uint32_t) (PAYLOAD_SIGNATURE_VERSION + 1 - n + i);
                entries[i].has_data = true;
                entries[i].data.data = (uint8_t *) sigs[i];
                entries[i].data.len = sizes[i];
                ptrs[i] = &entries[i];
        }
        s.n_signatures = n;
        s.signatures = ptrs;
        len = chromeos_update_engine__signatures__get_packed_size(&s);
        buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        chromeos_update_engine__signatures__pack(&s, buf);
        *ret = buf;
        *ret_size = len;
        return 0;
}

int payload_signatures_find(const uint8_t *blob, size_t size, uint32_t version, uint8_t **ret_sig, size_t *ret_size,
                            PayloadError *e) {
        Signatures *s = chromeos_update_engine__signatures__unpack(NULL, size, blob);
        int r = 0;

        if (!s)
                return payload_fail(e, PAYLOAD_PUBKEY_VERIFICATION_ERROR,
                                    "signature blob (%zu bytes) is not a valid Signatures message", size);
        for (size_t i = 0; i < s->n_signatures; i++) {
                const Signature *sig = s->signatures[i];
                if (!sig->has_version || sig->version != version)
                        continue;
                if (!sig->has_data || sig->data.len == 0) {
                        r = payload_fail(e, PAYLOAD_PUBKEY_VERIFICATION_ERROR, "version %" PRIu32 " signature is empty",
                                         version);
                        break;
                }
                uint8_t *copy = malloc(sig->data.len);
                if (!copy) {
                        r = -ENOMEM;
                        break;
                }
                memcpy(copy, sig->data.data, sig->data.len);
                *ret_sig = copy;
                *ret_size = sig->data.len;
                chromeos_update_engine__signatures__free_unpacked(s, NULL);
                return 0;
        }
        if (r == 0)
                r = payload_fail(e, PAYLOAD_PUBKEY_VERIFICATION_ERROR,
                                 "signature blob has no version %" PRIu32 " signature (%zu entries)", version,
                                 s->n_signatures);
        chromeos_update_engine__signatures__free_unpacked(s, NULL);
        return r;
}
