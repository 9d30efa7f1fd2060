/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "fileio.h"
#include "hash.h"
#include "log.h"
#include "payload-writer-format.h"
#include "payload-writer-inspect.h"

static const void *field_ptr(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
        return (const uint8_t *) msg + f->offset;
}

static bool field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, size_t *ret_n) {
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                *ret_n = *(const size_t *) ((const uint8_t *) msg + f->quantifier_offset);
                return *ret_n > 0;
        }
        *ret_n = 1;
        if (f->label == PROTOBUF_C_LABEL_REQUIRED)
                return true;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
                return *(const void *const *) field_ptr(msg, f) != NULL;
        return *(const protobuf_c_boolean *) ((const uint8_t *) msg + f->quantifier_offset);
}

static const void *element(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, size_t i) {
        size_t sz;
        if (f->label != PROTOBUF_C_LABEL_REPEATED)
                return field_ptr(msg, f);
        switch (f->type) {
        case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_FIXED64: sz = 8; break;
        case PROTOBUF_C_TYPE_BYTES: sz = sizeof(ProtobufCBinaryData); break;
        case PROTOBUF_C_TYPE_MESSAGE: case PROTOBUF_C_TYPE_STRING: sz = sizeof(void *); break;
        case PROTOBUF_C_TYPE_BOOL: sz = sizeof(protobuf_c_boolean); break;
        default: sz = 4; break;
        }
        return *(const uint8_t *const *) field_ptr(msg, f) + i * sz;
}

static const char *enum_name(const ProtobufCFieldDescriptor *f, int v) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? ev->name : NULL;
}

static json_t *value_to_json(const ProtobufCFieldDescriptor *f, const void *p) {
        switch (f->type) {
        case PROTOBUF_C_TYPE_UINT32: return json_integer(*(const uint32_t *) p);
        case PROTOBUF_C_TYPE_INT32: return json_integer(*(const int32_t *) p);
        case PROTOBUF_C_TYPE_UINT64: {
                uint64_t v = *(const uint64_t *) p;
                /* JSON integers here are signed 64-bit; the sparse-hole marker does not fit, so values
                 * beyond are written exactly, as decimal strings. */
                if (v > INT64_MAX) {
                        char buf[24];
                        snprintf(buf, sizeof buf, "%" PRIu64, v);
                        return json_string(buf);
                }
                return json_integer((json_int_t) v);
        }
        case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *) p);
        case PROTOBUF_C_TYPE_ENUM: {
                const char *n = enum_name(f, *(const int *) p);
                return n ? json_string(n) : json_integer(*(const int *) p);
        }
        case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *b = p;
                char *hex = malloc(b->len * 2 + 1);
                json_t *j;
                if (!hex)
                        return NULL;
                hex_encode(b->data, b->len, hex);
                j = json_string(hex);
                free(hex);
                return j;
        }
        case PROTOBUF_C_TYPE_MESSAGE: return protobuf_to_json(*(const ProtobufCMessage *const *) p);
        default: return json_null();
        }
}

json_t *protobuf_to_json(const ProtobufCMessage *msg) {
        json_t *o = json_object();
        for (unsigned i = 0; o && i < msg->descriptor->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &msg->descriptor->fields[i];
                size_t n;
                if (!field_present(msg, f, &n))
                        continue;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        json_t *a = json_array();
                        for (size_t k = 0; a && k < n; k++)
                                json_array_append_new(a, value_to_json(f, element(msg, f, k)));
                        json_object_set_new(o, f->name, a);
                } else
                        json_object_set_new(o, f->name, value_to_json(f, field_ptr(msg, f)));
        }
        return o;
}

static void print_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p, unsigned indent) {
        switch (f->type) {
        case PROTOBUF_C_TYPE_UINT32: fprintf(out, "%" PRIu32 "\n", *(const uint32_t *) p); break;
        case PROTOBUF_C_TYPE_INT32: fprintf(out, "%" PRIi32 "\n", *(const int32_t *) p); break;
        case PROTOBUF_C_TYPE_UINT64: fprintf(out, "%" PRIu64 "\n", *(const uint64_t *) p); break;
        case PROTOBUF_C_TYPE_BOOL: fprintf(out, "%s\n", *(const protobuf_c_boolean *) p ? "true" : "false"); break;
        case PROTOBUF_C_TYPE_ENUM: {
                const char *n = enum_name(f, *(const int *) p);
                if (n)
                        fprintf(out, "%s\n", n);
                else
                        fprintf(out, "%d\n", *(const int *) p);
                break;
        }
        case PROTOBUF_C_TYPE_BYTES: {
                /* protoc's C-style escaping: printable ASCII as is, the rest as 3-digit octal. */
                const ProtobufCBinaryData *b = p;
                fputc('"', out);
                for (size_t i = 0; i < b->len; i++) {
                        uint8_t c = b->data[i];
                        if (c == '"' || c == '\\' || c == '\'')
                                fprintf(out, "\\%c", c);
                        else if (c == '\n')
                                fputs("\\n", out);
                        else if (c == '\r')
                                fputs("\\r", out);
                        else if (c == '\t')
                                fputs("\\t", out);
                        else if (c >= 0x20 && c < 0x7f)
                                fputc(c, out);
                        else
                                fprintf(out, "\\%03o", c);
                }
                fputs("\"\n", out);
                break;
        }
        case PROTOBUF_C_TYPE_MESSAGE:
                fputs("{\n", out);
                protobuf_print_text(out, *(const ProtobufCMessage *const *) p, indent + 2);
                fprintf(out, "%*s}\n", (int) indent, "");
                break;
        default: fputs("?\n", out); break;
        }
}

void protobuf_print_text(FILE *out, const ProtobufCMessage *msg, unsigned indent) {
        for (unsigned i = 0; i < msg->descriptor->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &msg->descriptor->fields[i];
                size_t n;
                if (!field_present(msg, f, &n))
                        continue;
                for (size_t k = 0; k < n; k++) {
                        fprintf(out, "%*s%s%s", (int) indent, "", f->name,
                                f->type == PROTOBUF_C_TYPE_MESSAGE ? " " : ": ");
                        print_value(out, f, element(msg, f, k), indent);
                }
        }
}

int payload_inspect(int fd, const char *name, const TrustedKeys *keys, bool json) {
        _cleanup_(payload_manifest_freep) Manifest *m = NULL;
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        _cleanup_free_ uint8_t *manifest = NULL, *buf = NULL, *sigblob = NULL;
        _cleanup_(json_decrefp) json_t *report = NULL, *problems = NULL, *sigs_json = NULL;
        uint8_t header[PAYLOAD_HEADER_SIZE], signed_digest[32], digest[32], one;
        char hex[SHA256_HEX_SIZE], b64[SHA256_BASE64_SIZE], shex[SHA256_HEX_SIZE];
        uint64_t manifest_size, pos, n_ops, sig_size = 0;
        PayloadError e = {};
        bool ok = true;
        ssize_t n;

        problems = json_array();
        sigs_json = json_array();
        if (!problems || !sigs_json || sha256_new(&h) < 0)
                return log_oom();
#define PROBLEM(...)                                                                                          \
        do {                                                                                                  \
                char _m_[640];                                                                                \
                snprintf(_m_, sizeof _m_, __VA_ARGS__);                                                       \
                json_array_append_new(problems, json_string(_m_));                                            \
                ok = false;                                                                                   \
        } while (0)

        n = loop_read(fd, header, sizeof header);
        if (n != (ssize_t) sizeof header)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: error 11 (PayloadSizeMismatchError): truncated header.",
                                       name);
        if (payload_header_parse(header, &manifest_size, &e) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: error %d (%s): %s", name, e.code,
                                       payload_error_code_to_string(e.code), e.message);
        manifest = malloc(manifest_size);
        if (!manifest)
                return log_oom();
        if (loop_read(fd, manifest, manifest_size) != (ssize_t) manifest_size)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                       "%s: error 11 (PayloadSizeMismatchError): truncated manifest.", name);
        if (payload_manifest_parse(manifest, manifest_size, &m, &e) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: error %d (%s): %s", name, e.code,
                                       payload_error_code_to_string(e.code), e.message);
        (void) sha256_update(h, header, sizeof header);
        (void) sha256_update(h, manifest, manifest_size);
        pos = PAYLOAD_HEADER_SIZE + manifest_size;

        n_ops = payload_manifest_n_operations(m);
        for (uint64_t i = 0; i < n_ops; i++) {
                const InstallOperation *op = payload_manifest_operation(m, i, NULL);
                uint64_t len = op->has_data_length ? op->data_length : 0;
                uint8_t d[32];
                if (len == 0)
                        continue;
                free(buf);
                buf = malloc(len);
                if (!buf)
                        return log_oom();
                if (loop_read(fd, buf, len) != (ssize_t) len) {
                        PROBLEM("payload is truncated inside operation %" PRIu64, i);
                        goto done;
                }
                (void) sha256_update(h, buf, len);
                (void) sha256_buffer(buf, len, d);
                if (memcmp(d, op->data_sha256_hash.data, 32) != 0)
                        PROBLEM("operation %" PRIu64 ": data does not match its SHA-256 hash (error 29)", i);
                pos += len;
        }
        (void) sha256_peek(h, signed_digest);
        if (payload_manifest_is_signed(m)) {
                Signatures *s;
                sig_size = m->signatures_size;
                sigblob = malloc(sig_size);
                if (!sigblob)
                        return log_oom();
                if (loop_read(fd, sigblob, sig_size) != (ssize_t) sig_size) {
                        PROBLEM("payload is truncated inside the signature blob");
                        goto done;
                }
                (void) sha256_update(h, sigblob, sig_size);
                pos += sig_size;
                s = chromeos_update_engine__signatures__unpack(NULL, sig_size, sigblob);
                if (!s)
                        PROBLEM("signature blob is not a valid Signatures message (error 18)");
                for (size_t i = 0; s && i < s->n_signatures; i++) {
                        const Signature *sig = s->signatures[i];
                        json_t *o = json_pack("{s:i, s:I}", "version", sig->has_version ? (int) sig->version : -1,
                                              "size", (json_int_t) sig->data.len);
                        if (trusted_keys_count(keys) > 0) {
                                int k = trusted_keys_verify(keys, signed_digest, sig->data.data, sig->data.len);
                                json_object_set_new(o, "verified_by", k >= 0 ? json_string(trusted_keys_name(keys, (size_t) k))
                                                                             : json_null());
                        }
                        json_array_append_new(sigs_json, o);
                }
                if (s && trusted_keys_count(keys) > 0) {
                        _cleanup_free_ uint8_t *v2 = NULL;
                        size_t v2_size;
                        PayloadError se = {};
                        if (payload_signatures_find(sigblob, sig_size, PAYLOAD_SIGNATURE_VERSION, &v2, &v2_size, &se) < 0)
                                PROBLEM("%s (error 18)", se.message);
                        else if (trusted_keys_verify(keys, signed_digest, v2, v2_size) < 0)
                                PROBLEM("version 2 signature does not verify with any given key (error 18)");
                }
                if (s)
                        chromeos_update_engine__signatures__free_unpacked(s, NULL);
        } else if (trusted_keys_count(keys) > 0)
                PROBLEM("payload is not signed (error 17)");
        n = loop_read(fd, &one, 1);
        if (n > 0)
                PROBLEM("payload continues past its end at byte %" PRIu64 " (error 11)", pos);
done:
        (void) sha256_final(h, digest);
        hex_encode(digest, 32, hex);
        base64_encode(digest, 32, b64);
        hex_encode(signed_digest, 32, shex);

        report = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:o, s:O, s:O}",
                           "magic", PAYLOAD_MAGIC, "version", PAYLOAD_FORMAT_VERSION,
                           "manifest_size", (json_int_t) manifest_size,
                           "metadata_size", (json_int_t) (PAYLOAD_HEADER_SIZE + manifest_size),
                           "operations", (json_int_t) n_ops,
                           "signatures_size", (json_int_t) sig_size, "size", (json_int_t) pos,
                           "sha256", b64, "sha256_hex", hex, "signed_sha256_hex", shex,
                           "manifest", protobuf_to_json(&m->base), "signatures", sigs_json, "problems", problems);
        if (!report)
                return log_oom();
        if (json) {
                json_dumpf(report, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                fputc('\n', stdout);
        } else {
                printf("Payload:            %s\n", name);
                printf("Magic/version:      CrAU / 1\n");
                printf("Manifest size:      %" PRIu64 "\n", manifest_size);
                printf("Metadata size:      %" PRIu64 "\n", PAYLOAD_HEADER_SIZE + manifest_size);
                printf("Block size:         %" PRIu32 "\n", payload_manifest_block_size(m));
                printf("Operations:         %zu partition, %" PRIu64 " in all, %zu noop\n",
                       m->n_partition_operations, n_ops, m->n_noop_operations);
                for (size_t i = 0; i < m->n_procedures; i++)
                        printf("Procedure:          %s, %zu operations, %" PRIu64 " bytes\n",
                               payload_procedure_type_to_string(m->procedures[i]->has_type ? (int) m->procedures[i]->type : 0),
                               m->procedures[i]->n_operations,
                               m->procedures[i]->new_info ? m->procedures[i]->new_info->size : 0);
                if (m->new_partition_info)
                        printf("New partition:      %" PRIu64 " bytes\n", m->new_partition_info->size);
                printf("Signatures:         %zu, %" PRIu64 " bytes\n", json_array_size(sigs_json), sig_size);
                for (size_t i = 0; i < json_array_size(sigs_json); i++) {
                        json_t *s = json_array_get(sigs_json, i), *v = json_object_get(s, "verified_by");
                        printf("  version %" JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT " bytes%s%s\n",
                               json_integer_value(json_object_get(s, "version")),
                               json_integer_value(json_object_get(s, "size")),
                               v ? (json_is_string(v) ? ", verified by " : ", NOT verified by any given key") : "",
                               json_is_string(v) ? json_string_value(v) : "");
                }
                printf("Size:               %" PRIu64 "\n", pos);
                printf("SHA-256 (base64):   %s\n", b64);
                printf("SHA-256 (hex):      %s\n", hex);
                printf("Signed hash (hex):  %s\n", shex);
                printf("\nManifest:\n");
                protobuf_print_text(stdout, &m->base, 2);
                for (size_t i = 0; i < json_array_size(problems); i++)
                        printf("PROBLEM: %s\n", json_string_value(json_array_get(problems, i)));
        }
        if (!ok)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: %s", name,
                                       json_string_value(json_array_get(problems, 0)));
        return 0;
#undef PROBLEM
}
