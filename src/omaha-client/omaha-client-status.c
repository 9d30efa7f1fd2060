/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

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

/* The fields of omaha_status_to_json(), in its order. */
static const char *const status_fields[] = {
        "current_operation", "last_checked_time", "progress", "new_version", "new_size", "bytes", "total_bytes",
        "last_error", "last_error_message", "next_check_usec", "jobs_started", "jobs_finished",
};

_printf_(3, 4) static int status_error(char *error, size_t error_size, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(error, error_size, fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

static int get_u64(json_t *o, const char *key, uint64_t *ret, char *error, size_t error_size) {
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return status_error(error, error_size, "status field \"%s\" is not a non-negative integer", key);
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int get_string(json_t *o, const char *key, char *buf, size_t size, char *error, size_t error_size) {
        json_t *v = json_object_get(o, key);

        if (!json_is_string(v))
                return status_error(error, error_size, "status field \"%s\" is not a string", key);
        if (json_string_length(v) >= size || strlen(json_string_value(v)) != json_string_length(v))
                return status_error(error, error_size, "status field \"%s\" is longer than %zu bytes or holds a NUL",
                                    key, size - 1);
        memcpy(buf, json_string_value(v), json_string_length(v) + 1);
        return 0;
}

int omaha_status_from_json(json_t *o, OmahaStatus *ret, char *error, size_t error_size) {
        OmahaStatus s = {};
        uint64_t u = 0;
        const char *key;
        json_t *v;
        int r;

        if (!json_is_object(o))
                return status_error(error, error_size, "status is not a JSON object");
        json_object_foreach(o, key, v) {
                bool known = false;
                for (size_t i = 0; i < ELEMENTSOF(status_fields); i++)
                        known = known || streq(key, status_fields[i]);
                if (!known)
                        return status_error(error, error_size, "unknown status field \"%.64s\"", key);
        }

        v = json_object_get(o, "current_operation");
        s.code = omaha_status_from_string(json_string_value(v));
        if (s.code < 0)
                return status_error(error, error_size, "status field \"current_operation\" is not a known operation");

        v = json_object_get(o, "progress");
        if (!json_is_number(v) || !(json_number_value(v) >= 0.0 && json_number_value(v) <= 1.0))
                return status_error(error, error_size, "status field \"progress\" is not a number from 0 to 1");
        s.progress = json_number_value(v);

        v = json_object_get(o, "last_error");
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
                return status_error(error, error_size, "status field \"last_error\" is not an error code");
        s.last_error = (int) json_integer_value(v);

        if ((r = get_u64(o, "last_checked_time", &u, error, error_size)) < 0)
                return r;
        if (u > INT64_MAX)
                return status_error(error, error_size, "status field \"last_checked_time\" is out of range");
        s.last_checked_time = (int64_t) u;
        if ((r = get_u64(o, "new_size", &s.new_size, error, error_size)) < 0 ||
            (r = get_u64(o, "bytes", &s.bytes_done, error, error_size)) < 0 ||
            (r = get_u64(o, "total_bytes", &s.bytes_total, error, error_size)) < 0 ||
            (r = get_u64(o, "next_check_usec", &s.next_check_usec, error, error_size)) < 0 ||
            (r = get_u64(o, "jobs_started", &s.jobs_started, error, error_size)) < 0 ||
            (r = get_u64(o, "jobs_finished", &s.jobs_finished, error, error_size)) < 0 ||
            (r = get_string(o, "new_version", s.new_version, sizeof s.new_version, error, error_size)) < 0 ||
            (r = get_string(o, "last_error_message", s.last_error_message, sizeof s.last_error_message, error,
                            error_size)) < 0)
                return r;

        *ret = s;
        return 0;
}
