/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <time.h>

#include "log.h"
#include "metadata-agent-fetch.h"
#include "metadata-agent-yaml.h"

void fetch_policy_default(FetchPolicy *p) {
        *p = (FetchPolicy) {
                .max_retries = 10,
                .backoff_ms = 1000,
                .backoff_max_ms = 5000,
                .timeout_sec = 30,
        };
}

static int env_uint(const char *name, unsigned max, unsigned *ret) {
        const char *e = getenv(name);
        uint32_t v;

        if (isempty(e))
                return 0;
        if (safe_atou32(e, &v) < 0 || v > max)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid %s=%s (0..%u expected).", name, e, max);
        *ret = v;
        return 1;
}

int fetch_policy_from_env(FetchPolicy *p) {
        int r;

        fetch_policy_default(p);
        r = env_uint("SWITCHYARD_METADATA_RETRIES", 1000, &p->max_retries);
        if (r < 0)
                return r;
        r = env_uint("SWITCHYARD_METADATA_BACKOFF_MS", 600000, &p->backoff_ms);
        if (r < 0)
                return r;
        p->backoff_max_ms = p->backoff_ms * 5;
        r = env_uint("SWITCHYARD_METADATA_TIMEOUT", 3600, &p->timeout_sec);
        if (r < 0)
                return r;
        if (p->timeout_sec == 0)
                p->timeout_sec = 30;
        return 0;
}

void fetch_request_done(FetchRequest *r) {
        free(r->url);
        free(r->data);
        json_decref(r->json);
        xml_free(r->xml);
        *r = (FetchRequest) {};
}

int fetch_request_init(FetchRequest *r, const char *url, const HttpHeader *headers, size_t n_headers,
                       BodyFormat format, bool none_on_404) {
        *r = (FetchRequest) { .format = format, .none_on_404 = none_on_404 };
        if (n_headers > ELEMENTSOF(r->headers))
                return -E2BIG;
        r->url = strdup(url);
        if (!r->url)
                return -ENOMEM;
        if (n_headers > 0)
                memcpy(r->headers, headers, n_headers * sizeof(HttpHeader));
        r->n_headers = n_headers;
        return 0;
}

int fetch_request_add_header(FetchRequest *r, const char *name, const char *value) {
        if (r->n_headers >= ELEMENTSOF(r->headers))
                return -E2BIG;
        r->headers[r->n_headers++] = (HttpHeader) { name, value };
        return 0;
}

static const char *format_name(BodyFormat f) {
        static const char *const names[] = { "text", "JSON", "XML", "YAML" };
        return f >= 0 && f < _BODY_FORMAT_MAX ? names[f] : "?";
}

int fetch_parse_body(FetchRequest *r) {
        json_error_t err;
        int k;

        json_decref(TAKE_PTR(r->json));
        r->xml = xml_free(r->xml);
        switch (r->format) {
        case BODY_RAW:
                if (memchr(r->data, '\0', r->size))
                        return log_debug_errno(SYNTHETIC_ERRNO(EBADMSG), "Body contains a NUL byte.");
                return 0;
        case BODY_JSON:
                r->json = json_loadb(r->data, r->size, JSON_REJECT_DUPLICATES, &err);
                if (!r->json)
                        return log_debug_errno(SYNTHETIC_ERRNO(EBADMSG), "JSON error at line %d: %s", err.line,
                                               err.text);
                return 0;
        case BODY_YAML:
                k = yaml_parse_json(r->data, r->size, &r->json);
                return k == -ENODATA ? -EBADMSG : k;
        case BODY_XML:
                return xml_parse(r->data, r->size, &r->xml);
        default:
                return -EINVAL;
        }
}

typedef struct Sink {
        char *data;
        size_t size, alloc;
} Sink;

static int sink_write(const void *data, size_t size, void *userdata) {
        Sink *s = userdata;

        if (size > METADATA_BODY_MAX - s->size)
                return -EFBIG;
        if (s->size + size + 1 > s->alloc) {
                size_t n = MAX(s->alloc * 2, s->size + size + 1);
                char *d = realloc(s->data, n);
                if (!d)
                        return -ENOMEM;
                s->data = d;
                s->alloc = n;
        }
        memcpy(s->data + s->size, data, size);
        s->size += size;
        s->data[s->size] = '\0';
        return 0;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* What one attempt gave: 0 done, > 0 retry, < 0 a failure retrying cannot fix. */
static int evaluate(FetchRequest *r, int err, const HttpResponse *resp, Sink *sink, char *why, size_t why_size) {
        bool is_get = !r->method || streq(r->method, "GET");
        int k;

        if (err == -EFBIG) {
                snprintf(why, why_size, "response body larger than %u bytes", METADATA_BODY_MAX);
                return -EFBIG;
        }
        if (err < 0) {
                snprintf(why, why_size, "%s", resp->error[0] ? resp->error : strerror(-err));
                return -err;
        }
        if (resp->status == 404 && r->none_on_404) {
                r->found = false;
                return 0;
        }
        if (is_get ? resp->status != 200 : (resp->status < 200 || resp->status > 299)) {
                snprintf(why, why_size, "HTTP status %ld", resp->status);
                return resp->status == 404 ? ENOENT : EIO;
        }
        free(r->data);
        r->data = sink->data ? TAKE_PTR(sink->data) : strdup("");
        r->size = sink->size;
        if (!r->data)
                return -ENOMEM;
        k = fetch_parse_body(r);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                snprintf(why, why_size, "malformed %s in the response body", format_name(r->format));
                return EBADMSG;
        }
        r->found = true;
        return 0;
}

int fetch_many(const FetchPolicy *p, FetchRequest *reqs, size_t n) {
        _cleanup_free_ HttpRequest *hreqs = NULL;
        _cleanup_free_ HttpResponse *resps = NULL;
        _cleanup_free_ HttpBodyHandler *handlers = NULL;
        _cleanup_free_ void **uds = NULL;
        _cleanup_free_ Sink *sinks = NULL;
        _cleanup_free_ int *errs = NULL, *state = NULL;
        _cleanup_free_ size_t *idx = NULL;
        unsigned backoff = p->backoff_ms;
        char why[300] = "";
        int r = 0;

        if (n == 0)
                return 0;
        hreqs = calloc(n, sizeof(*hreqs));
        resps = calloc(n, sizeof(*resps));
        handlers = calloc(n, sizeof(*handlers));
        uds = calloc(n, sizeof(*uds));
        sinks = calloc(n, sizeof(*sinks));
        errs = calloc(n, sizeof(*errs));
        state = calloc(n, sizeof(*state));
        idx = calloc(n, sizeof(*idx));
        if (!hreqs || !resps || !handlers || !uds || !sinks || !errs || !state || !idx)
                return log_oom();
        for (size_t i = 0; i < n; i++)
                state[i] = 1; /* pending */

        for (unsigned attempt = 0;; attempt++) {
                size_t m = 0;

                for (size_t i = 0; i < n; i++) {
                        FetchRequest *q = &reqs[i];

                        if (state[i] <= 0)
                                continue;
                        idx[m] = i;
                        hreqs[m] = (HttpRequest) {
                                .url = q->url,
                                .method = q->method,
                                .body = q->body,
                                .body_size = q->body_size,
                                .content_type = q->content_type,
                                .headers = q->headers,
                                .n_headers = q->n_headers,
                                .max_body_size = METADATA_BODY_MAX,
                                .connect_timeout_sec = p->timeout_sec,
                                .total_timeout_sec = p->timeout_sec,
                        };
                        free(sinks[m].data);
                        sinks[m] = (Sink) {};
                        handlers[m] = sink_write;
                        uds[m] = &sinks[m];
                        resps[m] = (HttpResponse) {};
                        errs[m] = 0;
                        m++;
                }
                if (m == 0)
                        break;

                r = http_perform_many(hreqs, m, handlers, uds, resps, errs);
                if (r < 0) {
                        for (size_t j = 0; j < m; j++)
                                http_response_done(&resps[j]);
                        return log_error_errno(r, "Failed to start metadata requests: %m");
                }
                for (size_t j = 0; j < m; j++) {
                        size_t i = idx[j];
                        int k = evaluate(&reqs[i], errs[j], &resps[j], &sinks[j], why, sizeof(why));

                        http_response_done(&resps[j]);
                        if (k == 0) {
                                state[i] = 0;
                                continue;
                        }
                        if (k < 0 || attempt >= p->max_retries) {
                                int e = k < 0 ? k : -k;
                                for (size_t x = 0; x < m; x++) {
                                        free(sinks[x].data);
                                        sinks[x] = (Sink) {};
                                        if (x > j)
                                                http_response_done(&resps[x]);
                                }
                                return log_error_errno(e, "%s %s failed after %u attempt%s: %s",
                                                       reqs[i].method ?: "GET", reqs[i].url, attempt + 1,
                                                       attempt == 0 ? "" : "s", why);
                        }
                        log_info("%s %s failed (%s), retrying in %u ms.", reqs[i].method ?: "GET", reqs[i].url,
                                 why, backoff);
                }
                for (size_t j = 0; j < m; j++) {
                        free(sinks[j].data);
                        sinks[j] = (Sink) {};
                }
                bool pending = false;
                for (size_t i = 0; i < n; i++)
                        pending = pending || state[i] > 0;
                if (!pending)
                        break;
                sleep_ms(backoff);
                backoff = MIN(backoff * 2, p->backoff_max_ms);
        }
        return 0;
}

#define METADATA_NO_PROXY "169.254.0.0/16,fe80::/10,100.100.100.200,168.63.129.16"

char *no_proxy_with_metadata_hosts(const char *current) {
        char *r;

        if (isempty(current))
                return strdup(METADATA_NO_PROXY);
        if (streq(current, "*") || strstr(current, METADATA_NO_PROXY))
                return strdup(current);
        if (asprintf(&r, "%s,%s", current, METADATA_NO_PROXY) < 0)
                return NULL;
        return r;
}

int fetch_setup_proxy_env(void) {
        static const char *const proxies[] = { "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" };
        _cleanup_free_ char *v = NULL;
        bool any = false;

        for (size_t i = 0; i < ELEMENTSOF(proxies); i++)
                any = any || !isempty(getenv(proxies[i]));
        if (!any)
                return 0;
        /* curl reads no_proxy before NO_PROXY; set both to the same value. */
        v = no_proxy_with_metadata_hosts(getenv("no_proxy") ?: getenv("NO_PROXY"));
        if (!v)
                return -ENOMEM;
        if (setenv("no_proxy", v, 1) < 0 || setenv("NO_PROXY", v, 1) < 0)
                return -errno;
        log_debug("no_proxy=%s", v);
        return 0;
}
