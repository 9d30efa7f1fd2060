/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The status update_engine reports (spec §3.1), with Flatcar's names, plus progress detail. */

#include <jansson.h>

#include "macro.h"

typedef enum OmahaStatusCode {
        OMAHA_STATUS_IDLE,
        OMAHA_STATUS_CHECKING_FOR_UPDATE,
        OMAHA_STATUS_UPDATE_AVAILABLE,
        OMAHA_STATUS_DOWNLOADING,
        OMAHA_STATUS_VERIFYING,
        OMAHA_STATUS_FINALIZING,
        OMAHA_STATUS_UPDATED_NEED_REBOOT,
        OMAHA_STATUS_REPORTING_ERROR_EVENT,
        _OMAHA_STATUS_MAX,
        _OMAHA_STATUS_INVALID = -EINVAL,
} OmahaStatusCode;

typedef struct OmahaStatus {
        OmahaStatusCode code;
        int64_t last_checked_time; /* Unix seconds of the last good update-check response, 0 if none */
        double progress;           /* 0.0–1.0 of the current phase */
        char new_version[64];      /* "0.0.0" when none */
        uint64_t new_size;
        uint64_t bytes_done;       /* of the current phase */
        uint64_t bytes_total;
        int last_error;            /* Omaha error code of the last failure, 0 if none */
        char last_error_message[256];
        uint64_t next_check_usec;  /* CLOCK_REALTIME µs of the next scheduled check, 0 if none */
        uint64_t jobs_started;     /* checks started by this daemon; Check returns the number of its job */
        uint64_t jobs_finished;    /* checks that have ended (with or without an update) */
} OmahaStatus;

const char *omaha_status_to_string(OmahaStatusCode c);
OmahaStatusCode omaha_status_from_string(const char *s);
void omaha_status_init(OmahaStatus *s);
json_t *omaha_status_to_json(const OmahaStatus *s);
/* The inverse of omaha_status_to_json(), strict: every field present with its type and range, no other
 * field. Returns 0, or -EBADMSG with the first thing wrong written to error. On
 * error *ret is unchanged. */
int omaha_status_from_json(json_t *o, OmahaStatus *ret, char *error, size_t error_size);
