/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* HTTP(S) through libcurl, streaming the body to a callback.
 *
 * TLS is 1.2 or newer, and peer and host verification are always on; HttpRequest.ca_file names the CA
 * bundle to trust instead of the system's (tests, private servers). Proxies come from the environment
 * the way curl reads them (http_proxy, https_proxy/HTTPS_PROXY, all_proxy/ALL_PROXY, no_proxy/NO_PROXY;
 * curl ignores upper-case HTTP_PROXY on purpose). Only http:// and https:// are ever spoken, also across redirects; https_only
 * narrows both to https://. Every transfer has a connect timeout and a stall timeout (fewer than
 * low_speed_bytes per second for low_speed_seconds aborts it).
 *
 * Bodies: only the body of a final 2xx response reaches the handler, so an error page can never end
 * up in a payload stream; bodies of other statuses are read (at most 64 KiB) and dropped.
 *
 * Resume: with resume_from > 0 a "Range: bytes=N-" is sent, and a 2xx answer is accepted only as 206
 * with a Content-Range starting exactly at N; anything else (a 200 with the whole file, a wrong start)
 * fails with -ERANGE before a single byte reaches the handler. Non-2xx statuses (416 included) are
 * reported as statuses. */

#include "macro.h"

typedef struct HttpHeader {
        const char *name, *value;
} HttpHeader;

typedef struct HttpRequest {
        const char *url;
        const char *method;           /* NULL: GET, or POST when body is set; "HEAD", "PUT", ... */
        const void *body;             /* request body, may be NULL; must stay valid during the call */
        size_t body_size;
        const char *content_type;     /* e.g. "text/xml" */
        const HttpHeader *headers;    /* extra request headers (override built-in ones of the same name) */
        size_t n_headers;
        const char *ca_file;          /* CA bundle trusted instead of the system's, NULL = system default */
        const char *username, *password; /* HTTP auth "any"; refused (-EPERM) over plain http:// unless
                                          * allow_insecure_auth, and then redirects are held to https:// */
        bool allow_insecure_auth;
        bool https_only;              /* refuse plain http:// (-EPROTONOSUPPORT) and redirects to it */
        uint64_t resume_from;         /* 0 = whole body */
        uint64_t max_body_size;       /* 0 = unlimited; larger bodies fail with -EFBIG */
        unsigned connect_timeout_sec; /* 0 = 30 */
        unsigned total_timeout_sec;   /* 0 = none */
        unsigned low_speed_bytes;     /* 0 = 10 */
        unsigned low_speed_seconds;   /* 0 = 90 */
        unsigned max_redirects;       /* 0 = 10 */
} HttpRequest;

typedef struct HttpResponse {
        long status;             /* HTTP status of the final response, 0 if no response at all */
        uint64_t content_length; /* UINT64_MAX if unknown (of this response, i.e. after the range) */
        uint64_t total_size;     /* size of the whole resource (Content-Range total, or the
                                  * Content-Length of a 200), UINT64_MAX if unknown */
        uint64_t received;       /* body bytes handed to the callback */
        bool resumed;            /* the server honoured the range */
        char *content_type;      /* owned, may be NULL */
        char *effective_url;     /* owned, the URL after redirects, may be NULL */
        char error[256];         /* what went wrong when the call failed (curl's message or ours) */
} HttpResponse;

void http_response_done(HttpResponse *r);

/* Called with body bytes as they arrive. Return < 0 to abort the transfer with that error. */
typedef int (*HttpBodyHandler)(const void *data, size_t size, void *userdata);

/* Performs the request. Returns 0 when a response arrived (any status; check ret->status), or a negative
 * errno: -ECONNREFUSED (or the connect(2) errno, e.g. -ENETUNREACH; also a proxy refusing the CONNECT
 * tunnel, -EACCES if it wants proxy authentication), -EHOSTUNREACH (name or proxy not
 * resolvable), -ETIMEDOUT (connect, stall or total timeout), -ECONNRESET (connection cut, body shorter
 * than announced, empty reply), -EPROTO (TLS handshake or verification, malformed HTTP),
 * -EPROTONOSUPPORT (scheme or redirect not allowed), -ELOOP (too many redirects), -EFBIG (over
 * max_body_size), -ERANGE (range not honoured), -EPERM (credentials over plain HTTP), -EINVAL (bad
 * request: URL, header with CR/LF), or the handler's error. ret is filled in either case (ret->error says
 * what failed) and must be released with http_response_done(). handler may be NULL (body dropped). */
int http_perform(const HttpRequest *req, HttpBodyHandler handler, void *userdata, HttpResponse *ret);

/* Collects the body in memory (NUL-terminated), capped by req->max_body_size (which must be set,
 * else -EINVAL). On success *ret_body is the body of a 2xx response, or empty for other statuses. */
int http_fetch(const HttpRequest *req, char **ret_body, size_t *ret_size, HttpResponse *ret);

/* Many independent requests at once (curl multi); results in the same order. Each gets its own
 * callback/userdata pair (handlers and userdatas may be NULL, as may their entries); returns 0 when
 * all finished (each result's own status/errno in rets/errs), < 0 only if nothing could be started. */
int http_perform_many(const HttpRequest *reqs, size_t n, HttpBodyHandler *handlers, void **userdatas,
                      HttpResponse *rets, int *errs);

/* Must be called once before any thread starts (curl_global_init). Idempotent. http_perform*() call it
 * themselves, which is fine for single-threaded programs. */
int http_global_init(void);

/* Pure helpers, exposed for tests. */

/* Maps a CURLcode to a negative errno as documented for http_perform(); os_errno is CURLINFO_OS_ERRNO
 * (used for connect failures when non-zero). CURLE_OK → 0. */
int http_errno_from_curl(int curl_code, long os_errno);

/* Parses a Content-Range value "bytes FIRST-LAST/TOTAL"; an unknown total (an asterisk) gives
 * UINT64_MAX. -EBADMSG if malformed or inconsistent (LAST < FIRST, LAST >= TOTAL). */
int http_parse_content_range(const char *value, uint64_t *ret_first, uint64_t *ret_last, uint64_t *ret_total);

/* Parses a status line "HTTP/1.1 206 Partial Content" or "HTTP/2 200" into the status code. */
int http_parse_status_line(const char *line, long *ret_status);
