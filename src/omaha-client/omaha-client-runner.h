/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's side of a job: starts the job helper (omaha-client-job check) for one check, reads the
 * status lines it writes on a pipe (omaha-client-report.h), and notices when it ends. What the helper
 * writes is untrusted: a bad line ends the job (the helper is killed) with an error naming it; so does a
 * helper that crashes, is killed, fails, or ends without a result.
 *
 * The helper is found at $SWITCHYARD_OMAHA_JOB (an override for tests), else next to the running
 * executable (a build tree), else at OMAHA_JOB_HELPER (the installed path). */

#include <systemd/sd-event.h>

#include "omaha-client-config.h"
#include "omaha-client-report.h"

typedef struct OmahaRunner OmahaRunner;

typedef struct OmahaRunnerOps {
        /* A status line from the helper. */
        void (*status)(const OmahaStatus *st, void *userdata);
        /* The helper has ended. error is NULL when it ended well, else says what went wrong (result is then
         * what it reported, zeroes if nothing). Last call for this runner: it may be freed here. */
        void (*finished)(const OmahaJobResult *result, const char *error, void *userdata);
} OmahaRunnerOps;

int omaha_job_helper_path(char **ret);

/* c gives the root and the peer addresses; initial is the status the job starts from. SIGCHLD must be
 * blocked (sd_event_add_child). */
int omaha_runner_start(sd_event *e, const OmahaConfig *c, bool interactive, const OmahaStatus *initial,
                       const OmahaRunnerOps *ops, void *userdata, OmahaRunner **ret);
pid_t omaha_runner_pid(const OmahaRunner *r);
/* A helper still running is terminated (SIGTERM) and waited for. */
OmahaRunner *omaha_runner_free(OmahaRunner *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(OmahaRunner *, omaha_runner_free);
