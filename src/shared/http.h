/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* HTTP(S) through libcurl, streaming the body to a callback.
 *
 * TLS peer and host verification are always on; HttpRequest.ca_file adds a CA bundle (tests, private
 * servers). Proxies come from the environment the way curl reads them (http_proxy, https_proxy,
 * all_proxy, no_proxy). Every transfer has a connect timeout and a stall timeout (fewer than
 * low_speed_bytes per second for low_speed_seconds aborts it). A resumed download asks for a Range
 * starting at resume_from and checks that the server honoured it (206 with the right Content-Range). */

#include "macro.h"

typedef struct HttpHeader {
        const char *name, *value;
} HttpHeader;

typedef struct HttpRequest {
        const char *url;
        const char *method;           /* NULL: GET, or POST when body is set */
        const void *body;             /* request body, may be NULL */
        size_t body_size;
        const char *content_type;     /* e.g. "text/xml" */
        const HttpHeader *headers;    /* extra request headers */
        size_t n_headers;
        const char *ca_file;          /* extra CA bundle, NULL = system default */
        const char *username, *password; /* HTTP auth "any"; only sent over HTTPS unless allow_insecure_auth */
        bool allow_insecure_auth;
        bool https_only;              /* refuse plain http:// and redirects to it */
        uint64_t resume_from;         /* 0 = whole body */
        uint64_t max_body_size;       /* 0 = unlimited; larger bodies fail with -EFBIG */
        unsigned connect_timeout_sec; /* 0 = 30 */
        unsigned total_timeout_sec;   /* 0 = none */
        unsigned low_speed_bytes;     /* 0 = 10 */
        unsigned low_speed_seconds;   /* 0 = 90 */
        unsigned max_redirects;       /* 0 = 10 */
} HttpRequest;

typedef struct HttpResponse {
        long status;             /* HTTP status, 0 if no response at all */
        uint64_t content_length; /* UINT64_MAX if unknown (of this response, i.e. after the range) */
        uint64_t received;       /* body bytes handed to the callback */
        bool resumed;            /* the server honoured the range */
        char *content_type;      /* owned, may be NULL */
        char error[256];         /* curl's message on transport failure */
} HttpResponse;

void http_response_done(HttpResponse *r);

/* Called with body bytes as they arrive. Return < 0 to abort the transfer with that error. */
typedef int (*HttpBodyHandler)(const void *data, size_t size, void *userdata);

/* Performs the request. Returns 0 when a response arrived (any status; check ret->status), or a negative
 * errno for transport failures: -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT (connect or stall timeout),
 * -EPROTO (TLS or protocol error), -EFBIG (over max_body_size), -ERANGE (range not honoured), or the
 * handler's error. ret is filled in either case (must be released with http_response_done). */
int http_perform(const HttpRequest *req, HttpBodyHandler handler, void *userdata, HttpResponse *ret);

/* Collects the body in memory (NUL-terminated), capped by req->max_body_size (which must be set). */
int http_fetch(const HttpRequest *req, char **ret_body, size_t *ret_size, HttpResponse *ret);

/* Many independent requests at once (curl multi); results in the same order. Each gets its own
 * callback/userdata pair; returns 0 when all finished (each result's own status/errno in rets/errs). */
int http_perform_many(const HttpRequest *reqs, size_t n, HttpBodyHandler *handlers, void **userdatas,
                      HttpResponse *rets, int *errs);

/* Must be called once before any thread starts (curl_global_init). Idempotent. */
int http_global_init(void);
