/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Applying a full payload in one forward pass over its input (spec §4.6). */

#include <jansson.h>

#include "payload-writer-format.h"
#include "payload-writer-keys.h"

typedef struct PayloadProgress {
        uint64_t bytes, total_bytes;
        uint64_t operations, total_operations;
        unsigned percent;
} PayloadProgress;

typedef void (*PayloadProgressHandler)(const PayloadProgress *p, void *userdata);

typedef enum ResumeInput {
        RESUME_INPUT_RANGED, /* on resume the input is [0, metadata_size) + [metadata_size + blob_offset, end) */
        RESUME_INPUT_FULL,   /* on resume the input is the whole payload; done bytes are read and skipped */
} ResumeInput;

typedef struct PayloadApplyOptions {
        int input_fd;
        int target_fd;
        uint64_t target_offset;
        uint64_t target_size; /* UINT64_MAX: unbounded (regular files), else writes stay below it */
        int kernel_fd;        /* < 0: none */
        int pcr_fd;           /* < 0: none; PCR_POLICY data is then checked but not written */
        int checkpoint_fd;    /* < 0: no checkpoints (and no resume) */
        ResumeInput resume_input;
        uint64_t expected_size;      /* UINT64_MAX: not checked */
        const char *expected_sha256; /* base64, NULL: not checked */
        const TrustedKeys *keys;
        bool insecure_no_signature;
        uint64_t stop_after_operations; /* test hook: fail with DownloadIncomplete after N ops; 0 = off */
        const int *cancel;              /* set non-zero (atomically) from elsewhere to stop between operations */
        PayloadProgressHandler progress;
        void *userdata;
} PayloadApplyOptions;

#define PAYLOAD_APPLY_OPTIONS_INIT                                                                           \
        (PayloadApplyOptions) {                                                                              \
                .input_fd = -EBADF, .target_fd = -EBADF, .target_size = UINT64_MAX, .kernel_fd = -EBADF,     \
                .pcr_fd = -EBADF, .checkpoint_fd = -EBADF, .expected_size = UINT64_MAX,                      \
        }

typedef struct PayloadResult {
        uint64_t payload_size;
        uint8_t payload_sha256[32];
        uint64_t new_partition_size;
        uint8_t new_partition_sha256[32];
        bool has_kernel;
        uint64_t kernel_size;
        uint64_t operations;
        uint64_t resumed_at_operation; /* 0 when started from the beginning */
        int signature_key;             /* index of the trusted key that matched, -1 if unchecked */
} PayloadResult;

int payload_apply(const PayloadApplyOptions *o, PayloadResult *ret, PayloadError *e);

/* Reads a checkpoint fd (empty = none). Exposed for inspect/tests. */
int payload_checkpoint_read(int fd, json_t **ret);
