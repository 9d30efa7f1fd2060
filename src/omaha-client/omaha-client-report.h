/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the job helper (omaha-client-job) tells the daemon over a pipe: one JSON object per line,
 *   {"status": {...omaha_status_to_json()...}}   after every status change, and
 *   {"result": {"http_status": N, "poll_interval": N}}   once, last.
 * The daemon treats these lines as untrusted input: omaha_report_parse_line() is strict and names what
 * was wrong. */

#include "omaha-client-status.h"

#define OMAHA_REPORT_LINE_MAX 4096

typedef struct OmahaJobResult {
        long http_status;      /* of the update check; 0 = no answer */
        int64_t poll_interval; /* from the response; 0 = none */
} OmahaJobResult;

typedef enum OmahaReportKind {
        OMAHA_REPORT_STATUS = 1,
        OMAHA_REPORT_RESULT = 2,
} OmahaReportKind;

/* Each writes one line; a reader that went away is not an error of the job (-EPIPE is returned). */
int omaha_report_write_status(int fd, const OmahaStatus *s);
int omaha_report_write_result(int fd, const OmahaJobResult *r);

/* Parses one line (without its newline). Returns OMAHA_REPORT_STATUS with *ret_status set,
 * OMAHA_REPORT_RESULT with *ret_result set, or -EBADMSG with the reason written to error. */
int omaha_report_parse_line(const char *line, size_t size, OmahaStatus *ret_status, OmahaJobResult *ret_result,
                            char *error, size_t error_size);
