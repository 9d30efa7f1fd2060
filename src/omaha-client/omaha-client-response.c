/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <expat.h>
#include <inttypes.h>
#include <stdarg.h>

#include "log.h"
#include "omaha-client-response.h"

#define PATH_DEPTH_MAX 32

typedef struct Parser {
        XML_Parser xml;
        /* The element path from the root, as "response/app/…"; elements deeper than PATH_DEPTH_MAX only
         * count (no interesting path is that deep). */
        char path[1024];
        size_t path_len[PATH_DEPTH_MAX];
        unsigned depth, extra_depth;
        bool path_truncated[PATH_DEPTH_MAX];

        char *refused; /* why parsing was stopped by us (DTD, entity) */

        bool have_updatecheck, have_status;
        char *status, *poll_interval;
        char **codebases;
        size_t n_codebases;
        bool have_manifest, have_package, have_action;
        char *version;
        char *package_name, *package_size, *package_sha256;
        char *sha256, *max_failures, *is_delta, *disable_backoff;
} Parser;

OmahaResponse *omaha_response_free(OmahaResponse *r) {
        if (!r)
                return NULL;
        free(r->version);
        for (size_t i = 0; i < r->n_urls; i++)
                free(r->urls[i]);
        free(r->urls);
        free(r->package_name);
        free(r->sha256);
        free(r->package_sha256);
        return mfree(r);
}

static void parser_done(Parser *p) {
        if (p->xml)
                XML_ParserFree(p->xml);
        free(p->refused);
        free(p->status);
        free(p->poll_interval);
        for (size_t i = 0; i < p->n_codebases; i++)
                free(p->codebases[i]);
        free(p->codebases);
        free(p->version);
        free(p->package_name);
        free(p->package_size);
        free(p->package_sha256);
        free(p->sha256);
        free(p->max_failures);
        free(p->is_delta);
        free(p->disable_backoff);
}

static const char *attr(const XML_Char **atts, const char *name) {
        for (size_t i = 0; atts[i]; i += 2)
                if (streq(atts[i], name))
                        return atts[i + 1];
        return NULL;
}

static void parser_fail(Parser *p, const char *why) {
        if (!p->refused)
                p->refused = strdup(why);
        XML_StopParser(p->xml, XML_FALSE);
}

/* Copies an attribute (NULL stays NULL); stops the parser when memory runs out. */
static void take_attr(Parser *p, const XML_Char **atts, const char *name, char **ret) {
        const char *v = attr(atts, name);

        if (!v)
                return;
        *ret = strdup(v);
        if (!*ret)
                parser_fail(p, "out of memory");
}

static void on_start(void *userdata, const XML_Char *name, const XML_Char **atts) {
        Parser *p = userdata;
        const char *path;
        size_t cur, add;

        if (p->depth >= PATH_DEPTH_MAX) {
                p->extra_depth++;
                return;
        }
        cur = p->depth > 0 ? p->path_len[p->depth - 1] : 0;
        add = strlen(name) + (p->depth > 0);
        p->path_truncated[p->depth] = cur + add + 1 > sizeof p->path ||
                                      (p->depth > 0 && p->path_truncated[p->depth - 1]);
        if (!p->path_truncated[p->depth]) {
                if (p->depth > 0)
                        p->path[cur++] = '/';
                memcpy(p->path + cur, name, strlen(name) + 1);
                cur += strlen(name);
        }
        p->path_len[p->depth] = cur;
        p->depth++;
        if (p->path_truncated[p->depth - 1])
                return;

        path = p->path;
        if (streq(path, "response/app/updatecheck")) {
                if (p->have_updatecheck)
                        return;
                p->have_updatecheck = true;
                take_attr(p, atts, "status", &p->status);
                take_attr(p, atts, "PollInterval", &p->poll_interval);
        } else if (streq(path, "response/app/updatecheck/urls/url")) {
                const char *cb = attr(atts, "codebase");
                char **n;

                if (p->n_codebases >= 64) {
                        parser_fail(p, "more than 64 urls");
                        return;
                }
                n = reallocarray(p->codebases, p->n_codebases + 1, sizeof *n);
                if (!n) {
                        parser_fail(p, "out of memory");
                        return;
                }
                p->codebases = n;
                n[p->n_codebases] = strdup(cb ?: "");
                if (!n[p->n_codebases]) {
                        parser_fail(p, "out of memory");
                        return;
                }
                p->n_codebases++;
        } else if (streq(path, "response/app/updatecheck/manifest")) {
                if (p->have_manifest)
                        return;
                p->have_manifest = true;
                take_attr(p, atts, "version", &p->version);
        } else if (streq(path, "response/app/updatecheck/manifest/packages/package")) {
                if (p->have_package)
                        return;
                p->have_package = true;
                take_attr(p, atts, "name", &p->package_name);
                take_attr(p, atts, "size", &p->package_size);
                take_attr(p, atts, "hash_sha256", &p->package_sha256);
        } else if (streq(path, "response/app/updatecheck/manifest/actions/action")) {
                if (p->have_action || !streq_ptr(attr(atts, "event"), "postinstall"))
                        return;
                p->have_action = true;
                take_attr(p, atts, "sha256", &p->sha256);
                take_attr(p, atts, "MaxFailureCountPerUrl", &p->max_failures);
                take_attr(p, atts, "IsDeltaPayload", &p->is_delta);
                take_attr(p, atts, "DisablePayloadBackoff", &p->disable_backoff);
        }
}

static void on_end(void *userdata, const XML_Char *name) {
        Parser *p = userdata;

        if (p->extra_depth > 0)
                p->extra_depth--;
        else if (p->depth > 0)
                p->depth--;
}

static void on_doctype(void *userdata, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal_subset) {
        parser_fail(userdata, "document type declarations are not allowed");
}

static void on_entity(void *userdata, const XML_Char *name, int is_parameter, const XML_Char *value,
                      int value_length, const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
                      const XML_Char *notation) {
        parser_fail(userdata, "entity declarations are not allowed");
}

_printf_(4, 5) static int fail(int code, int *ret_code, char **ret_reason, const char *fmt, ...) {
        va_list ap;

        *ret_code = code;
        if (ret_reason) {
                va_start(ap, fmt);
                if (vasprintf(ret_reason, fmt, ap) < 0)
                        *ret_reason = NULL;
                va_end(ap);
        }
        return -EBADMSG;
}

static int build_result(Parser *p, OmahaResponse **ret, int *ret_code, char **ret_reason) {
        _cleanup_(omaha_response_freep) OmahaResponse *r = NULL;
        uint64_t u;

        if (!p->have_updatecheck)
                return fail(34, ret_code, ret_reason, "no /response/app/updatecheck element");
        if (!p->status)
                return fail(34, ret_code, ret_reason, "updatecheck has no status attribute");

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        if (p->poll_interval) {
                int64_t v;
                if (safe_atoi64(p->poll_interval, &v) >= 0 && v > 0)
                        r->poll_interval = v;
                else
                        log_warning("Ignoring PollInterval=\"%s\": not a positive number of seconds.",
                                    p->poll_interval);
        }
        if (streq(p->status, "noupdate")) {
                *ret = TAKE_PTR(r);
                return 0;
        }
        if (!streq(p->status, "ok"))
                return fail(34, ret_code, ret_reason, "updatecheck status is \"%s\"", p->status);
        r->update = true;

        if (!p->have_manifest)
                return fail(34, ret_code, ret_reason, "no updatecheck/manifest element");
        if (p->n_codebases == 0)
                return fail(34, ret_code, ret_reason, "no updatecheck/urls/url element");
        for (size_t i = 0; i < p->n_codebases; i++)
                if (isempty(p->codebases[i]))
                        return fail(34, ret_code, ret_reason, "url %zu has no codebase", i + 1);
        if (!p->have_package)
                return fail(34, ret_code, ret_reason, "no manifest/packages/package element");
        if (isempty(p->package_name))
                return fail(34, ret_code, ret_reason, "package has no name");
        if (!p->package_size || safe_atou64(p->package_size, &u) < 0 || u == 0 || u > INT64_MAX)
                return fail(34, ret_code, ret_reason, "package size \"%s\" is not a positive number",
                            p->package_size ?: "");
        r->size = u;
        if (!p->have_action)
                return fail(34, ret_code, ret_reason, "no manifest/actions/action with event=\"postinstall\"");
        if (isempty(p->sha256))
                return fail(34, ret_code, ret_reason, "postinstall action has no sha256");

        r->max_failure_count_per_url = 10;
        if (p->max_failures) {
                uint32_t m;
                if (safe_atou32(p->max_failures, &m) >= 0)
                        r->max_failure_count_per_url = m;
        }
        r->is_delta = streq_ptr(p->is_delta, "true");
        r->disable_payload_backoff = streq_ptr(p->disable_backoff, "true");

        r->version = strdup(p->version ?: "");
        r->package_name = strdup(p->package_name);
        r->sha256 = strdup(p->sha256);
        if (p->package_sha256)
                r->package_sha256 = strdup(p->package_sha256);
        r->urls = calloc(p->n_codebases, sizeof *r->urls);
        if (!r->version || !r->package_name || !r->sha256 || (p->package_sha256 && !r->package_sha256) || !r->urls)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_codebases; i++) {
                const char *cb = p->codebases[i];
                if (asprintf(&r->urls[i], "%s%s%s", cb, endswith(cb, "/") ? "" : "/", r->package_name) < 0)
                        return -ENOMEM;
                r->n_urls++;
        }
        *ret = TAKE_PTR(r);
        return 0;
}

int omaha_response_parse(const void *data, size_t size, OmahaResponse **ret, int *ret_code, char **ret_reason) {
        Parser p = {};
        int r;

        if (ret_reason)
                *ret_reason = NULL;
        if (size == 0)
                return fail(30, ret_code, ret_reason, "empty response");
        if (size > OMAHA_RESPONSE_MAX)
                return fail(31, ret_code, ret_reason, "response larger than %u bytes", OMAHA_RESPONSE_MAX);

        p.xml = XML_ParserCreate(NULL);
        if (!p.xml)
                return -ENOMEM;
        XML_SetUserData(p.xml, &p);
        XML_SetElementHandler(p.xml, on_start, on_end);
        XML_SetStartDoctypeDeclHandler(p.xml, on_doctype);
        XML_SetEntityDeclHandler(p.xml, on_entity);

        if (XML_Parse(p.xml, data, (int) size, XML_TRUE) != XML_STATUS_OK) {
                if (p.refused)
                        r = fail(31, ret_code, ret_reason, "%s", p.refused);
                else
                        r = fail(31, ret_code, ret_reason, "not well-formed XML: line %lu: %s",
                                 (unsigned long) XML_GetCurrentLineNumber(p.xml),
                                 XML_ErrorString(XML_GetErrorCode(p.xml)));
                parser_done(&p);
                return r;
        }
        r = build_result(&p, ret, ret_code, ret_reason);
        parser_done(&p);
        return r;
}

json_t *omaha_response_to_json(const OmahaResponse *r) {
        json_t *o, *urls;

        if (!r->update)
                return json_pack("{s:s, s:I}", "status", "noupdate", "poll_interval", (json_int_t) r->poll_interval);
        urls = json_array();
        if (!urls)
                return NULL;
        for (size_t i = 0; i < r->n_urls; i++)
                json_array_append_new(urls, json_string(r->urls[i]));
        o = json_pack("{s:s, s:I, s:s, s:o, s:s, s:I, s:s, s:s?, s:I, s:b, s:b}",
                      "status", "ok",
                      "poll_interval", (json_int_t) r->poll_interval,
                      "version", r->version,
                      "urls", urls,
                      "package_name", r->package_name,
                      "size", (json_int_t) r->size,
                      "sha256", r->sha256,
                      "package_sha256", r->package_sha256,
                      "max_failure_count_per_url", (json_int_t) r->max_failure_count_per_url,
                      "is_delta", r->is_delta,
                      "disable_payload_backoff", r->disable_payload_backoff);
        return o;
}

int omaha_response_signature(const OmahaResponse *r, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        fprintf(f, "NumURLs = %zu\n", r->n_urls);
        for (size_t i = 0; i < r->n_urls; i++)
                fprintf(f, "Url%zu = %s\n", i, r->urls[i]);
        fprintf(f, "Payload Size = %" PRIu64 "\nPayload Sha256 Hash = %s\nIs Delta Payload = %d\n"
                   "Max Failure Count Per Url = %u\nDisable Payload Backoff = %d\n",
                r->size, r->sha256 ?: "", r->is_delta, r->max_failure_count_per_url, r->disable_payload_backoff);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}
