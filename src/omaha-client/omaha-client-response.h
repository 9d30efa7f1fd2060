/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Parses an Omaha v3 response the way update_engine reads it (spec §1.4): the first
 * /response/app/updatecheck, its status and PollInterval, all /response/app/updatecheck/urls/url, the first
 * manifest, its first package and its first postinstall action. Framing, whitespace, extra elements and
 * attributes are ignored; a document type declaration or an entity declaration is refused. */

#include <jansson.h>

#include "omaha-client-error.h"

#define OMAHA_RESPONSE_MAX (1024u * 1024u)

typedef struct OmahaResponse {
        bool update;            /* status="ok"; false for "noupdate" */
        int64_t poll_interval;  /* seconds, 0 if not given */
        char *version;          /* manifest version, may be "" */
        char **urls;            /* codebase + '/' + package name, in order */
        size_t n_urls;
        char *package_name;
        uint64_t size;
        char *sha256;           /* action sha256 as sent (base64 expected) */
        char *package_sha256;   /* package hash_sha256 (hex), NULL if absent */
        unsigned max_failure_count_per_url;
        bool is_delta;
        bool disable_payload_backoff;
} OmahaResponse;

OmahaResponse *omaha_response_free(OmahaResponse *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(OmahaResponse *, omaha_response_free);

/* Returns 0 and the parsed response, or a negative errno with *ret_code set to the Omaha error code
 * (30 empty, 31 not XML, 34 invalid) and *ret_reason to a message naming what was wrong. */
int omaha_response_parse(const void *data, size_t size, OmahaResponse **ret, int *ret_code, char **ret_reason);

/* A JSON object describing r (for --json output and status). */
json_t *omaha_response_to_json(const OmahaResponse *r);

/* A stable fingerprint of what decides the payload (urls, size, sha256, flags); update_engine resets
 * its per-payload retry state when this changes. */
int omaha_response_signature(const OmahaResponse *r, char **ret);
