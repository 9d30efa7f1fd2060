/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Metadata requests with afterburn's retry policy (spec §4.1): up to max_retries+1 attempts, sleeping
 * 1 s, 2 s, 4 s, then 5 s between them; each attempt has a 30 s total timeout. A GET succeeds only on
 * 200, PUT/POST/PATCH on any 2xx. A 404 either means "no value" (none_on_404) or is an error. A 200
 * whose body does not parse in the expected format counts as a failed attempt and is retried. Requests
 * given together are performed concurrently (curl multi), and only the failed ones are retried.
 *
 * For tests the policy can be changed with SWITCHYARD_METADATA_RETRIES (max retries),
 * SWITCHYARD_METADATA_BACKOFF_MS (first sleep; the cap is five times it) and
 * SWITCHYARD_METADATA_TIMEOUT (seconds per attempt). */

#include <jansson.h>

#include "http.h"
#include "metadata-agent-xml.h"

#define METADATA_BODY_MAX (2u * 1024u * 1024u)

typedef enum BodyFormat {
        BODY_RAW,
        BODY_JSON,
        BODY_XML,
        BODY_YAML,
        _BODY_FORMAT_MAX,
        _BODY_FORMAT_INVALID = -EINVAL,
} BodyFormat;

typedef struct FetchRequest {
        /* input */
        char *url; /* owned */
        const char *method; /* NULL = GET */
        const char *body;
        size_t body_size;
        const char *content_type;
        HttpHeader headers[8];
        size_t n_headers;
        BodyFormat format;
        bool none_on_404;

        /* output */
        bool found;   /* false: 404 with none_on_404 */
        char *data;   /* the body (NUL-terminated) */
        size_t size;
        json_t *json; /* BODY_JSON, BODY_YAML */
        XmlNode *xml; /* BODY_XML */
} FetchRequest;

typedef struct FetchPolicy {
        unsigned max_retries;
        unsigned backoff_ms;
        unsigned backoff_max_ms;
        unsigned timeout_sec;
} FetchPolicy;

void fetch_policy_default(FetchPolicy *p);
/* Reads the SWITCHYARD_METADATA_* overrides; -EINVAL (logged) on a malformed value. */
int fetch_policy_from_env(FetchPolicy *p);

void fetch_request_done(FetchRequest *r);
/* Initialises r for url (copied) with the given headers (borrowed, must outlive the request). */
int fetch_request_init(FetchRequest *r, const char *url, const HttpHeader *headers, size_t n_headers,
                       BodyFormat format, bool none_on_404);
int fetch_request_add_header(FetchRequest *r, const char *name, const char *value);

/* Performs all requests, concurrently, retrying failed ones. Returns 0 if every one succeeded (or gave
 * none on 404), else the first failure's error, after logging what failed. */
int fetch_many(const FetchPolicy *p, FetchRequest *reqs, size_t n);
static inline int fetch_one(const FetchPolicy *p, FetchRequest *r) {
        return fetch_many(p, r, 1);
}
/* Metadata services live on link-local or provider-internal addresses that no proxy can reach, so they are
 * added to no_proxy (curl understands CIDR there): returns the new value for current (may be NULL). */
char *no_proxy_with_metadata_hosts(const char *current);
/* Applies that to NO_PROXY/no_proxy when a proxy is configured in the environment. */
int fetch_setup_proxy_env(void);

/* Validates/parses a body in the given format (exposed for the fuzzers). */
int fetch_parse_body(FetchRequest *r);
