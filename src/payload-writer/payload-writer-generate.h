/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Writing payloads the way Flatcar's delta_generator writes full ones (spec §4.3), and (re-)signing them. */

#include "macro.h"

typedef enum Compression {
        COMPRESSION_NONE,
        COMPRESSION_BZ2,
        COMPRESSION_XZ,
        COMPRESSION_BEST,
        _COMPRESSION_MAX,
        _COMPRESSION_INVALID = -EINVAL,
} Compression;

Compression compression_from_string(const char *s);

typedef struct GenerateOptions {
        const char *image;
        const char *kernel;     /* NULL: no KERNEL procedure */
        const char *pcr_policy; /* NULL: no PCR_POLICY procedure */
        uint64_t chunk_size;    /* bytes, a multiple of block_size */
        uint32_t block_size;
        Compression compression;
        char **keys; /* private key PEM paths; none = unsigned payload */
        size_t n_keys;
        const char *output;
} GenerateOptions;

int payload_generate(const GenerateOptions *o);

/* Rewrites a payload (signed or not) with signatures by keys; input "-" reads stdin. */
int payload_sign(const char *input, const char *output, char **keys, size_t n_keys);
