/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "omaha-client-status.h"

static const char *const status_names[_OMAHA_STATUS_MAX] = {
        [OMAHA_STATUS_IDLE] = "UPDATE_STATUS_IDLE",
        [OMAHA_STATUS_CHECKING_FOR_UPDATE] = "UPDATE_STATUS_CHECKING_FOR_UPDATE",
        [OMAHA_STATUS_UPDATE_AVAILABLE] = "UPDATE_STATUS_UPDATE_AVAILABLE",
        [OMAHA_STATUS_DOWNLOADING] = "UPDATE_STATUS_DOWNLOADING",
        [OMAHA_STATUS_VERIFYING] = "UPDATE_STATUS_VERIFYING",
        [OMAHA_STATUS_FINALIZING] = "UPDATE_STATUS_FINALIZING",
        [OMAHA_STATUS_UPDATED_NEED_REBOOT] = "UPDATE_STATUS_UPDATED_NEED_REBOOT",
        [OMAHA_STATUS_REPORTING_ERROR_EVENT] = "UPDATE_STATUS_REPORTING_ERROR_EVENT",
};

const char *omaha_status_to_string(OmahaStatusCode c) {
        if (c < 0 || c >= _OMAHA_STATUS_MAX)
                return NULL;
        return status_names[c];
}

OmahaStatusCode omaha_status_from_string(const char *s) {
        for (int i = 0; i < _OMAHA_STATUS_MAX; i++)
                if (streq_ptr(s, status_names[i]))
                        return (OmahaStatusCode) i;
        return _OMAHA_STATUS_INVALID;
}

void omaha_status_init(OmahaStatus *s) {
        *s = (OmahaStatus) { .code = OMAHA_STATUS_IDLE };
        strcpy(s->new_version, "0.0.0");
}

json_t *omaha_status_to_json(const OmahaStatus *s) {
        return json_pack("{s:s, s:I, s:f, s:s, s:I, s:I, s:I, s:i, s:s, s:I, s:I, s:I}",
                         "current_operation", omaha_status_to_string(s->code),
                         "last_checked_time", (json_int_t) s->last_checked_time,
                         "progress", s->progress,
                         "new_version", s->new_version,
                         "new_size", (json_int_t) s->new_size,
                         "bytes", (json_int_t) s->bytes_done,
                         "total_bytes", (json_int_t) s->bytes_total,
                         "last_error", s->last_error,
                         "last_error_message", s->last_error_message,
                         "next_check_usec", (json_int_t) s->next_check_usec,
                         "jobs_started", (json_int_t) s->jobs_started,
                         "jobs_finished", (json_int_t) s->jobs_finished);
}
