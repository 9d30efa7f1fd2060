/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One check, and the update it may lead to, from the request to UPDATED_NEED_REBOOT. Runs in the job
 * helper (omaha-client-job), a process of its own: this is the code that talks to the network and
 * parses what comes back. Status changes go to the daemon as lines on a pipe (omaha-client-report.h). */

#include "omaha-client-config.h"
#include "omaha-client-report.h"

/* The job's view of the status: starts as the daemon's, and every change is sent on fd. */
typedef struct StatusBox {
        OmahaStatus status;
        int fd; /* < 0: not sent anywhere */
} StatusBox;

typedef struct OmahaJobArgs {
        const char *root; /* NULL = the host */
        /* NULL keeps what the configuration says */
        const char *slots_address, *payload_writer_address, *verity_address;
        bool interactive;
} OmahaJobArgs;

/* The configuration files are read afresh for every check. */
void omaha_job_run(const OmahaJobArgs *a, StatusBox *box, OmahaJobResult *ret);
