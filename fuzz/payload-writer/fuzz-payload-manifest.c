/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"
#include "payload-writer-format.h"
#include "payload-writer-inspect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static FILE *null;
        _cleanup_(payload_manifest_freep) Manifest *m = NULL;
        uint64_t manifest_size;
        PayloadError e = {};

        if (!null) {
                log_set_target(LOG_TARGET_NULL);
                null = fopen("/dev/null", "we");
        }
        if (size < PAYLOAD_HEADER_SIZE || payload_header_parse(data, &manifest_size, &e) < 0)
                return 0;
        if (manifest_size > size - PAYLOAD_HEADER_SIZE)
                return 0;
        if (payload_manifest_parse(data + PAYLOAD_HEADER_SIZE, manifest_size, &m, &e) < 0)
                return 0;
        /* Everything a valid manifest promises must be safe to walk and print. */
        (void) payload_manifest_blob_size(m);
        for (size_t i = 0; i < payload_manifest_n_operations(m); i++) {
                uint64_t bytes;
                const InstallOperation *op = payload_manifest_operation(m, i, NULL);
                (void) payload_op_extents_size(op, payload_manifest_block_size(m), &bytes);
        }
        json_t *j = protobuf_to_json(&m->base);
        json_decref(j);
        protobuf_print_text(null, &m->base, 0);
        return 0;
}
