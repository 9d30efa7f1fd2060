/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Streams a payload from HTTP(S) into a pipe that payload-writer reads, on its own thread, so that the
 * thread driving payload-writer's varlink call can keep reading its progress replies.
 *
 * A fresh download is counted and hashed on the way: more bytes than the response announced, a
 * Content-Length that disagrees with it, or a SHA-256 that differs from the response's, fail with the
 * matching Omaha error code. A resumed download (from payload-writer's checkpoint) asks for
 * [0, metadata_size) and then [metadata_size + blob_offset, size) with HTTP ranges; the hash of the
 * whole payload is then payload-writer's to check. */

#include <pthread.h>

#include "omaha-client-config.h"

typedef struct OmahaDownload {
        /* input */
        const OmahaConfig *config;
        const char *url;
        uint64_t size;                 /* announced payload size */
        uint8_t sha256[32];            /* announced payload hash */
        bool resume;
        uint64_t metadata_size;        /* resume only */
        uint64_t blob_offset;          /* resume only */
        int pipe_fd;                   /* write end; owned, closed when the thread ends */

        /* progress, updated by the thread (read with __atomic loads) */
        uint64_t received;             /* payload bytes passed on (including skipped range when resuming) */
        bool cancel;                   /* set by the owner to stop */

        /* result */
        int error;                     /* 0 or negative errno */
        int omaha_code;                /* 0 or the Omaha error code */
        long http_status;
        char message[256];

        pthread_t thread;
        bool started;
} OmahaDownload;

int omaha_download_start(OmahaDownload *d);
/* Stops (if still running) and joins. */
void omaha_download_finish(OmahaDownload *d);
uint64_t omaha_download_received(OmahaDownload *d);

/* Reads payload-writer's checkpoint (JSON: metadata_size, blob_offset). -ENODATA if empty or unusable. */
int omaha_checkpoint_read(int fd, uint64_t *ret_metadata_size, uint64_t *ret_blob_offset);
