/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One check, and the update it may lead to, from the request to UPDATED_NEED_REBOOT. Runs on a worker
 * thread; status changes go through a StatusBox that wakes the daemon's event loop. */

#include <pthread.h>

#include "omaha-client-config.h"
#include "omaha-client-status.h"

typedef struct StatusBox {
        pthread_mutex_t lock;
        OmahaStatus status;
        int wake_fd; /* eventfd written on every change */
} StatusBox;

void status_box_wake(StatusBox *b);
void status_box_snapshot(StatusBox *b, OmahaStatus *ret);
void status_box_set_code(StatusBox *b, OmahaStatusCode code);

typedef struct OmahaJobResult {
        long http_status;      /* of the update check */
        int64_t poll_interval; /* from the response */
} OmahaJobResult;

/* cli carries the root and the peer addresses given on the command line; the configuration files are
 * read afresh for every check. */
void omaha_job_run(const OmahaConfig *cli, StatusBox *box, bool interactive, OmahaJobResult *ret);

/* Reads the state at daemon start: an update applied by an earlier run that is waiting for a reboot. */
int omaha_job_restore(const OmahaConfig *c, StatusBox *box);
/* ResetStatus: forgets the applied update (the slot stays as it is). */
int omaha_job_reset(const OmahaConfig *c, StatusBox *box);
