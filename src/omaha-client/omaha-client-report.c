/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "fileio.h"
#include "omaha-client-report.h"

static int write_line(int fd, json_t *o) {
        _cleanup_free_ char *s = NULL;
        size_t n;
        int r;

        if (!o)
                return -ENOMEM;
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        n = strlen(s);
        if (n + 1 > OMAHA_REPORT_LINE_MAX)
                return -E2BIG;
        s[n] = '\n'; /* replaces the NUL; the length is known */
        r = loop_write(fd, s, n + 1);
        s[n] = '\0';
        return r;
}

int omaha_report_write_status(int fd, const OmahaStatus *s) {
        json_t *st = omaha_status_to_json(s);
        return write_line(fd, st ? json_pack("{s:o}", "status", st) : NULL);
}

int omaha_report_write_result(int fd, const OmahaJobResult *r) {
        return write_line(fd, json_pack("{s:{s:I, s:I}}", "result", "http_status", (json_int_t) r->http_status,
                                        "poll_interval", (json_int_t) r->poll_interval));
}

static int parse_result(json_t *o, OmahaJobResult *ret, char *error, size_t error_size) {
        json_t *status = json_object_get(o, "http_status"), *poll = json_object_get(o, "poll_interval");

        if (!json_is_object(o) || json_object_size(o) != 2 || !json_is_integer(status) || !json_is_integer(poll)) {
                snprintf(error, error_size, "result is not {\"http_status\": INTEGER, \"poll_interval\": INTEGER}");
                return -EBADMSG;
        }
        if (json_integer_value(status) < 0 || json_integer_value(status) > 999 || json_integer_value(poll) < 0) {
                snprintf(error, error_size, "result holds an HTTP status outside 0..999 or a negative poll interval");
                return -EBADMSG;
        }
        *ret = (OmahaJobResult) { .http_status = (long) json_integer_value(status),
                                  .poll_interval = (int64_t) json_integer_value(poll) };
        return 0;
}

int omaha_report_parse_line(const char *line, size_t size, OmahaStatus *ret_status, OmahaJobResult *ret_result,
                            char *error, size_t error_size) {
        json_t *o;
        json_error_t e;
        const char *key;
        json_t *v;
        int r = -EBADMSG;

        o = json_loadb(line, size, JSON_REJECT_DUPLICATES, &e);
        if (!o) {
                snprintf(error, error_size, "not JSON (%s at column %d)", e.text, e.column);
                return -EBADMSG;
        }
        if (!json_is_object(o) || json_object_size(o) != 1) {
                json_decref(o);
                snprintf(error, error_size, "not an object with exactly one of \"status\" or \"result\"");
                return -EBADMSG;
        }
        json_object_foreach(o, key, v) {
                if (streq(key, "status"))
                        r = omaha_status_from_json(v, ret_status, error, error_size) < 0 ? -EBADMSG
                                                                                        : OMAHA_REPORT_STATUS;
                else if (streq(key, "result"))
                        r = parse_result(v, ret_result, error, error_size) < 0 ? -EBADMSG : OMAHA_REPORT_RESULT;
                else {
                        snprintf(error, error_size, "unknown message \"%.64s\"", key);
                        r = -EBADMSG;
                }
        }
        json_decref(o);
        return r;
}
