/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <strings.h>

#include <curl/curl.h>

#include "http.h"
#include "log.h"

#define CONNECT_TIMEOUT_SEC_DEFAULT 30U
#define LOW_SPEED_BYTES_DEFAULT     10U
#define LOW_SPEED_SECONDS_DEFAULT   90U
#define MAX_REDIRECTS_DEFAULT       10U
/* Bodies of non-2xx responses are only read so the connection stays usable; past this we hang up. */
#define DROPPED_BODY_MAX (64U * 1024U)

#ifdef CURL_WRITEFUNC_ERROR
#define WRITE_ABORT CURL_WRITEFUNC_ERROR
#else
#define WRITE_ABORT 0
#endif

typedef struct Transfer {
        const HttpRequest *req;
        HttpBodyHandler handler;
        void *userdata;
        HttpResponse *response;

        CURL *easy;
        struct curl_slist *headers;
        char errbuf[CURL_ERROR_SIZE];

        /* State of the response whose header block is arriving; reset by every status line, since
         * 1xx and followed redirects come before the final one. */
        long status;
        bool have_content_range, bad_content_range;
        uint64_t range_first, range_total;
        bool body_started;
        uint64_t dropped;

        bool head;             /* HEAD: a Content-Length announces no body */
        int error;             /* our own failure; wins over curl's result code */
        bool dropped_body_cut; /* we hung up on purpose on an error body */
        bool finished;
} Transfer;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result = CURLE_OK;

static void global_init_once(void) {
        global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_global_init(void) {
        (void) pthread_once(&global_once, global_init_once);
        return global_result == CURLE_OK ? 0 : -ENOMEM;
}

void http_response_done(HttpResponse *r) {
        if (!r)
                return;
        r->content_type = mfree(r->content_type);
        r->effective_url = mfree(r->effective_url);
}

int http_errno_from_curl(int curl_code, long os_errno) {
        switch ((CURLcode) curl_code) {
        case CURLE_OK:
                return 0;
        case CURLE_COULDNT_CONNECT:
                return os_errno > 0 && os_errno < 4096 ? -(int) os_errno : -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
                return -ECONNRESET;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CIPHER:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_USE_SSL_FAILED:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CLIENTCERT:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_HTTP3:
        case CURLE_QUIC_CONNECT_ERROR:
        case CURLE_PROXY:
                return -EPROTO;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_TOO_MANY_REDIRECTS:
                return -ELOOP;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        case CURLE_RANGE_ERROR:
        case CURLE_BAD_DOWNLOAD_RESUME:
                return -ERANGE;
        case CURLE_BAD_CONTENT_ENCODING:
                return -EBADMSG;
        case CURLE_REMOTE_ACCESS_DENIED:
        case CURLE_LOGIN_DENIED:
                return -EACCES;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_AGAIN:
                return -EAGAIN;
        case CURLE_WRITE_ERROR:
        case CURLE_ABORTED_BY_CALLBACK:
                return -ECANCELED;
        /* Local configuration the caller gave us, not the peer's fault. */
        case CURLE_URL_MALFORMAT:
        case CURLE_BAD_FUNCTION_ARGUMENT:
        case CURLE_SETOPT_OPTION_SYNTAX:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
                return -EINVAL;
        case CURLE_NOT_BUILT_IN:
        case CURLE_UNKNOWN_OPTION:
        case CURLE_FUNCTION_NOT_FOUND:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
                return -EOPNOTSUPP;
        case CURLE_INTERFACE_FAILED:
                return -EADDRNOTAVAIL;
        default:
                return -EIO;
        }
}

static const char *skip_space(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* Parses a run of decimal digits at *p, advancing it. */
static int parse_digits(const char **p, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;

        if (!isdigit((unsigned char) *s))
                return -EBADMSG;
        for (; isdigit((unsigned char) *s); s++) {
                unsigned d = (unsigned) (*s - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
        }
        *p = s;
        *ret = v;
        return 0;
}

int http_parse_content_range(const char *value, uint64_t *ret_first, uint64_t *ret_last,
                             uint64_t *ret_total) {
        uint64_t first, last, total = UINT64_MAX;
        const char *p;

        if (!value)
                return -EBADMSG;
        p = skip_space(value);
        if (strncasecmp(p, "bytes", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
                return -EBADMSG;
        p = skip_space(p + 5);
        if (parse_digits(&p, &first) < 0 || *p++ != '-' || parse_digits(&p, &last) < 0 || *p++ != '/')
                return -EBADMSG;
        if (*p == '*')
                p++;
        else if (parse_digits(&p, &total) < 0)
                return -EBADMSG;
        if (*skip_space(p) != '\0')
                return -EBADMSG;
        if (last < first || (total != UINT64_MAX && last >= total))
                return -EBADMSG;

        *ret_first = first;
        *ret_last = last;
        *ret_total = total;
        return 0;
}

int http_parse_status_line(const char *line, long *ret_status) {
        const char *p;
        long status = 0;

        if (!line)
                return -EBADMSG;
        p = startswith(line, "HTTP/");
        if (!p)
                return -EBADMSG;
        while (*p && *p != ' ')
                p++;
        p = skip_space(p);
        for (int i = 0; i < 3; i++, p++) {
                if (!isdigit((unsigned char) *p))
                        return -EBADMSG;
                status = status * 10 + (*p - '0');
        }
        if (*p != '\0' && *p != ' ' && *p != '\r' && *p != '\n')
                return -EBADMSG;
        if (status < 100)
                return -EBADMSG;
        *ret_status = status;
        return 0;
}

_printf_(3, 4) static int transfer_fail(Transfer *t, int error, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(t->response->error, sizeof t->response->error, format, ap);
        va_end(ap);
        t->error = error;
        return error;
}

static bool status_is_success(long status) {
        return status >= 200 && status < 300;
}

/* Decides whether the final response may deliver its body: the range must be honoured exactly and
 * a known length must fit. Runs before the first body byte, or at the end if there was none. */
static int transfer_check_start(Transfer *t) {
        const HttpRequest *req = t->req;
        curl_off_t cl = -1;

        if (!status_is_success(t->status))
                return 0;

        if (t->status == 206 || req->resume_from > 0) {
                if (t->status != 206)
                        return transfer_fail(t, -ERANGE,
                                             "Server ignored the range request for bytes %" PRIu64
                                             "- and answered with status %ld",
                                             req->resume_from, t->status);
                if (t->bad_content_range || !t->have_content_range)
                        return transfer_fail(t, -ERANGE,
                                             "Partial response (206) without a valid Content-Range");
                if (t->range_first != req->resume_from)
                        return transfer_fail(t, -ERANGE,
                                             "Server sent a range starting at byte %" PRIu64
                                             ", asked for %" PRIu64,
                                             t->range_first, req->resume_from);
                t->response->resumed = req->resume_from > 0;
        }

        if (!t->head && req->max_body_size > 0 &&
            curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0 &&
            (uint64_t) cl > req->max_body_size)
                return transfer_fail(t, -EFBIG,
                                     "Response body of %" PRIu64 " bytes exceeds the limit of %" PRIu64
                                     " bytes",
                                     (uint64_t) cl, req->max_body_size);
        return 0;
}

static size_t header_cb(char *buffer, size_t size, size_t nitems, void *userdata) {
        Transfer *t = userdata;
        size_t n = size * nitems;
        _cleanup_free_ char *line = NULL;
        const char *v;
        size_t l;

        if (n < 5 ||
            (strncmp(buffer, "HTTP/", 5) != 0 && (n < 14 || strncasecmp(buffer, "content-range:", 14) != 0)))
                return n;

        line = strndup(buffer, n);
        if (!line) {
                (void) transfer_fail(t, -ENOMEM, "Out of memory");
                return 0;
        }
        l = strlen(line);
        while (l > 0 &&
               (line[l - 1] == '\r' || line[l - 1] == '\n' || line[l - 1] == ' ' || line[l - 1] == '\t'))
                line[--l] = '\0';

        if (startswith(line, "HTTP/")) {
                long status;
                if (http_parse_status_line(line, &status) < 0) {
                        (void) transfer_fail(t, -EPROTO, "Malformed HTTP status line");
                        return 0;
                }
                t->status = status;
                t->have_content_range = t->bad_content_range = false;
                t->body_started = false;
                t->dropped = 0;
                return n;
        }

        v = line + 14;
        if (http_parse_content_range(v, &t->range_first, &(uint64_t){0}, &t->range_total) < 0)
                t->bad_content_range = true;
        else
                t->have_content_range = true;
        return n;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Transfer *t = userdata;
        HttpResponse *resp = t->response;
        size_t n = size * nmemb;
        int r;

        if (t->error < 0)
                return WRITE_ABORT;

        if (!t->body_started) {
                t->body_started = true;
                if (transfer_check_start(t) < 0)
                        return WRITE_ABORT;
        }

        if (!status_is_success(t->status)) {
                t->dropped += n;
                if (t->dropped > DROPPED_BODY_MAX) {
                        t->dropped_body_cut = true;
                        return WRITE_ABORT;
                }
                return n;
        }

        if (t->req->max_body_size > 0 &&
            (resp->received + n > t->req->max_body_size || resp->received + n < n)) {
                (void) transfer_fail(t, -EFBIG, "Response body exceeds the limit of %" PRIu64 " bytes",
                                     t->req->max_body_size);
                return WRITE_ABORT;
        }

        if (t->handler && n > 0) {
                r = t->handler(ptr, n, t->userdata);
                if (r < 0) {
                        (void) transfer_fail(t, r, "Body handler failed after %" PRIu64 " bytes: %s",
                                             resp->received, strerror(-r));
                        return WRITE_ABORT;
                }
        }
        resp->received += n;
        return n;
}

static bool header_token_ok(const char *s) {
        if (isempty(s))
                return false;
        for (; *s; s++)
                if (*s <= ' ' || *s == ':' || *s >= 127)
                        return false;
        return true;
}

static bool header_value_ok(const char *s) {
        return s && !strpbrk(s, "\r\n");
}

static bool method_ok(const char *s) {
        if (isempty(s) || strlen(s) > 32)
                return false;
        for (; *s; s++)
                if (!isupper((unsigned char) *s) && *s != '-' && *s != '_')
                        return false;
        return true;
}

static int transfer_add_header(Transfer *t, const char *name, const char *value) {
        _cleanup_free_ char *h = NULL;
        struct curl_slist *l;
        int r;

        /* curl's syntax: "Name:" drops one of its own headers, "Name;" sends an empty one. */
        if (!value)
                r = asprintf(&h, "%s:", name);
        else if (isempty(value))
                r = asprintf(&h, "%s;", name);
        else
                r = asprintf(&h, "%s: %s", name, value);
        if (r < 0) {
                h = NULL; /* undefined after a failed asprintf() */
                return -ENOMEM;
        }
        l = curl_slist_append(t->headers, h);
        if (!l)
                return -ENOMEM;
        t->headers = l;
        return 0;
}

static void transfer_done(Transfer *t) {
        if (t->easy)
                curl_easy_cleanup(t->easy);
        t->easy = NULL;
        curl_slist_free_all(t->headers);
        t->headers = NULL;
}

#define SETOPT(t, opt, value)                                                                               \
        ({                                                                                                  \
                CURLcode _c_ = curl_easy_setopt((t)->easy, (opt), (value));                                 \
                _c_ == CURLE_OK ? 0                                                                         \
                                : transfer_fail((t), http_errno_from_curl(_c_, 0), "Failed to set %s: %s",  \
                                                #opt, curl_easy_strerror(_c_));                             \
        })

static int transfer_setup(Transfer *t, const HttpRequest *req, HttpBodyHandler handler, void *userdata,
                          HttpResponse *resp) {
        bool is_https, creds, has_body, secure_only;
        const char *method;
        int r;

        *t = (Transfer){
                .req = req,
                .handler = handler,
                .userdata = userdata,
                .response = resp,
        };
        *resp = (HttpResponse){
                .content_length = UINT64_MAX,
                .total_size = UINT64_MAX,
        };

        if (isempty(req->url))
                return transfer_fail(t, -EINVAL, "No URL given");
        is_https = strncasecmp(req->url, "https://", 8) == 0;
        if (!is_https && strncasecmp(req->url, "http://", 7) != 0)
                return transfer_fail(t, -EPROTONOSUPPORT,
                                     "Unsupported URL scheme (only http:// and https://): %s", req->url);
        if (req->https_only && !is_https)
                return transfer_fail(t, -EPROTONOSUPPORT,
                                     "Refusing plain http:// URL, https:// is required: %s", req->url);

        creds = req->username || req->password;
        if (creds && !is_https && !req->allow_insecure_auth)
                return transfer_fail(t, -EPERM, "Refusing to send credentials over plain http://: %s",
                                     req->url);
        /* Credentials, once given, must not follow a redirect to plain HTTP either. */
        secure_only = req->https_only || (creds && !req->allow_insecure_auth);

        has_body = req->body || req->body_size > 0;
        if (req->body_size > 0 && !req->body)
                return transfer_fail(t, -EINVAL, "Request body size given without a body");
        method = req->method ?: (has_body ? "POST" : "GET");
        if (!method_ok(method))
                return transfer_fail(t, -EINVAL, "Invalid HTTP method \"%s\"", method);
        if (has_body && (streq(method, "GET") || streq(method, "HEAD")))
                return transfer_fail(t, -EINVAL, "A %s request cannot carry a body", method);
        if (req->content_type && !header_value_ok(req->content_type))
                return transfer_fail(t, -EINVAL, "Invalid Content-Type (contains a line break)");
        for (size_t i = 0; i < req->n_headers; i++) {
                if (!header_token_ok(req->headers[i].name))
                        return transfer_fail(t, -EINVAL, "Invalid request header name \"%s\"",
                                             req->headers[i].name ?: "");
                if (req->headers[i].value && !header_value_ok(req->headers[i].value))
                        return transfer_fail(t, -EINVAL,
                                             "Invalid value of request header %s (contains a line break)",
                                             req->headers[i].name);
        }
        if (req->ca_file && access(req->ca_file, R_OK) < 0)
                return transfer_fail(t, -errno, "Cannot read CA file %s: %s", req->ca_file, strerror(errno));

        r = http_global_init();
        if (r < 0)
                return transfer_fail(t, r, "Failed to initialize libcurl");

        t->easy = curl_easy_init();
        if (!t->easy)
                return transfer_fail(t, -ENOMEM, "Failed to create a curl handle");

        if ((r = SETOPT(t, CURLOPT_ERRORBUFFER, t->errbuf)) < 0 ||
            (r = SETOPT(t, CURLOPT_URL, req->url)) < 0 || (r = SETOPT(t, CURLOPT_NOSIGNAL, 1L)) < 0 ||
            (r = SETOPT(t, CURLOPT_PRIVATE, (void *) t)) < 0 ||
            (r = SETOPT(t, CURLOPT_PROTOCOLS_STR, secure_only ? "https" : "http,https")) < 0 ||
            (r = SETOPT(t, CURLOPT_REDIR_PROTOCOLS_STR, secure_only ? "https" : "http,https")) < 0 ||
            (r = SETOPT(t, CURLOPT_FOLLOWLOCATION, 1L)) < 0 ||
            (r = SETOPT(t, CURLOPT_MAXREDIRS, (long) (req->max_redirects ?: MAX_REDIRECTS_DEFAULT))) < 0 ||
            (r = SETOPT(t, CURLOPT_SSL_VERIFYPEER, 1L)) < 0 ||
            (r = SETOPT(t, CURLOPT_SSL_VERIFYHOST, 2L)) < 0 ||
            (r = SETOPT(t, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2)) < 0 ||
            (r = SETOPT(t, CURLOPT_PROXY_SSL_VERIFYPEER, 1L)) < 0 ||
            (r = SETOPT(t, CURLOPT_PROXY_SSL_VERIFYHOST, 2L)) < 0 ||
            (r = SETOPT(t, CURLOPT_CONNECTTIMEOUT,
                        (long) (req->connect_timeout_sec ?: CONNECT_TIMEOUT_SEC_DEFAULT))) < 0 ||
            (r = SETOPT(t, CURLOPT_LOW_SPEED_LIMIT,
                        (long) (req->low_speed_bytes ?: LOW_SPEED_BYTES_DEFAULT))) < 0 ||
            (r = SETOPT(t, CURLOPT_LOW_SPEED_TIME,
                        (long) (req->low_speed_seconds ?: LOW_SPEED_SECONDS_DEFAULT))) < 0 ||
            (r = SETOPT(t, CURLOPT_TIMEOUT, (long) req->total_timeout_sec)) < 0 ||
            (r = SETOPT(t, CURLOPT_USERAGENT, "switchyard/" SWITCHYARD_VERSION)) < 0 ||
            (r = SETOPT(t, CURLOPT_HEADERFUNCTION, header_cb)) < 0 ||
            (r = SETOPT(t, CURLOPT_HEADERDATA, (void *) t)) < 0 ||
            (r = SETOPT(t, CURLOPT_WRITEFUNCTION, write_cb)) < 0 ||
            (r = SETOPT(t, CURLOPT_WRITEDATA, (void *) t)) < 0)
                return r;

        if (req->ca_file) {
                /* Trust exactly this bundle: also drop the compiled-in CA directory. */
                if ((r = SETOPT(t, CURLOPT_CAINFO, req->ca_file)) < 0 ||
                    (r = SETOPT(t, CURLOPT_CAPATH, (char *) NULL)) < 0)
                        return r;
        }

        if (req->resume_from > 0) {
                char range[32];
                (void) snprintf(range, sizeof range, "%" PRIu64 "-", req->resume_from);
                if ((r = SETOPT(t, CURLOPT_RANGE, range)) < 0)
                        return r;
        }

        t->head = streq(method, "HEAD");
        if (t->head)
                r = SETOPT(t, CURLOPT_NOBODY, 1L);
        else if (streq(method, "GET"))
                r = SETOPT(t, CURLOPT_HTTPGET, 1L);
        else {
                if ((r = SETOPT(t, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_size)) < 0 ||
                    (r = SETOPT(t, CURLOPT_POSTFIELDS, req->body ?: (const void *) "")) < 0)
                        return r;
                if (!streq(method, "POST"))
                        r = SETOPT(t, CURLOPT_CUSTOMREQUEST, method);
                /* No "Expect: 100-continue" round trip for larger bodies. */
                if (r >= 0 && (r = transfer_add_header(t, "Expect", NULL)) < 0)
                        return transfer_fail(t, r, "Out of memory");
                /* curl would claim application/x-www-form-urlencoded otherwise. */
                if (r >= 0 && !req->content_type && (r = transfer_add_header(t, "Content-Type", NULL)) < 0)
                        return transfer_fail(t, r, "Out of memory");
        }
        if (r < 0)
                return r;

        if (req->content_type && (r = transfer_add_header(t, "Content-Type", req->content_type)) < 0)
                return transfer_fail(t, r, "Out of memory");
        for (size_t i = 0; i < req->n_headers; i++)
                if ((r = transfer_add_header(t, req->headers[i].name, req->headers[i].value)) < 0)
                        return transfer_fail(t, r, "Out of memory");
        if (t->headers && (r = SETOPT(t, CURLOPT_HTTPHEADER, t->headers)) < 0)
                return r;

        if (creds) {
                if ((r = SETOPT(t, CURLOPT_HTTPAUTH, (long) CURLAUTH_ANY)) < 0 ||
                    (r = SETOPT(t, CURLOPT_USERNAME, req->username ?: "")) < 0 ||
                    (r = SETOPT(t, CURLOPT_PASSWORD, req->password ?: "")) < 0)
                        return r;
        }

        return 0;
}

static int strdup_info(CURL *easy, CURLINFO info, char **ret) {
        const char *s = NULL;

        if (curl_easy_getinfo(easy, info, &s) != CURLE_OK || !s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int transfer_finish(Transfer *t, CURLcode cc) {
        HttpResponse *resp = t->response;
        curl_off_t cl = -1;
        long status = 0, os_errno = 0, connect_code = 0;
        int r;

        t->finished = true;
        (void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        resp->status = status;
        if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0)
                resp->content_length = (uint64_t) cl;
        if (strdup_info(t->easy, CURLINFO_CONTENT_TYPE, &resp->content_type) < 0 ||
            strdup_info(t->easy, CURLINFO_EFFECTIVE_URL, &resp->effective_url) < 0)
                return transfer_fail(t, -ENOMEM, "Out of memory");

        if (t->error < 0)
                r = t->error;
        else if (cc == CURLE_WRITE_ERROR && t->dropped_body_cut)
                r = 0;
        else if (cc != CURLE_OK) {
                (void) curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
                r = http_errno_from_curl(cc, cc == CURLE_COULDNT_CONNECT ? os_errno : 0);
                /* Our own checks refuse bad schemes before curl runs, so curl's "unsupported protocol"
                 * is either a redirect we do not follow or a reply that is not HTTP/1+ at all. */
                if (cc == CURLE_UNSUPPORTED_PROTOCOL && !(status >= 300 && status < 400))
                        r = -EPROTO;
                /* A proxy that refuses the CONNECT tunnel is not a connection reset. */
                if (curl_easy_getinfo(t->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code) == CURLE_OK &&
                    connect_code >= 300)
                        r = connect_code == 407 ? -EACCES : -ECONNREFUSED;
                (void) snprintf(resp->error, sizeof resp->error, "%s",
                                isempty(t->errbuf) ? curl_easy_strerror(cc) : t->errbuf);
        } else if (!t->body_started) {
                t->status = status;
                r = transfer_check_start(t);
        } else
                r = 0;

        if (r >= 0 && status_is_success(status)) {
                if (status == 206 && t->have_content_range)
                        resp->total_size = t->range_total;
                else if (status != 206)
                        resp->total_size = resp->content_length;
        }

        log_debug("HTTP %s → %s%ld, %" PRIu64 " bytes%s%s", t->req->url, r < 0 ? "failed, status " : "",
                  status, resp->received, r < 0 ? ": " : "", r < 0 ? resp->error : "");
        return r;
}

int http_perform_many(const HttpRequest *reqs, size_t n, HttpBodyHandler *handlers, void **userdatas,
                      HttpResponse *rets, int *errs) {
        _cleanup_free_ Transfer *ts = NULL;
        CURLM *multi = NULL;
        size_t active = 0;
        int r = 0;

        for (size_t i = 0; i < n; i++) {
                rets[i] = (HttpResponse){.content_length = UINT64_MAX, .total_size = UINT64_MAX};
                errs[i] = 0;
        }
        if (n == 0)
                return 0;

        r = http_global_init();
        if (r < 0)
                return r;
        ts = calloc(n, sizeof *ts);
        if (!ts)
                return -ENOMEM;
        multi = curl_multi_init();
        if (!multi)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                errs[i] = transfer_setup(&ts[i], &reqs[i], handlers ? handlers[i] : NULL,
                                         userdatas ? userdatas[i] : NULL, &rets[i]);
                if (errs[i] < 0) {
                        ts[i].finished = true;
                        continue;
                }
                if (curl_multi_add_handle(multi, ts[i].easy) != CURLM_OK) {
                        errs[i] = transfer_fail(&ts[i], -ENOMEM,
                                                "Failed to add transfer to curl multi handle");
                        ts[i].finished = true;
                        continue;
                }
                active++;
        }

        while (active > 0) {
                int running = 0, queued;
                CURLMcode mc;
                CURLMsg *msg;

                mc = curl_multi_perform(multi, &running);
                if (mc == CURLM_OK)
                        while ((msg = curl_multi_info_read(multi, &queued))) {
                                Transfer *t = NULL;
                                if (msg->msg != CURLMSG_DONE)
                                        continue;
                                (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
                                if (!t || t->finished)
                                        continue;
                                errs[t - ts] = transfer_finish(t, msg->data.result);
                                (void) curl_multi_remove_handle(multi, t->easy);
                                active--;
                        }
                if (mc == CURLM_OK && active > 0)
                        mc = curl_multi_poll(multi, NULL, 0, 1000, NULL);
                if (mc != CURLM_OK) {
                        /* The multi handle itself broke: fail whatever has not finished. */
                        for (size_t i = 0; i < n; i++)
                                if (!ts[i].finished) {
                                        errs[i] = transfer_fail(&ts[i], -EIO, "curl multi failure: %s",
                                                                curl_multi_strerror(mc));
                                        ts[i].finished = true;
                                        (void) curl_multi_remove_handle(multi, ts[i].easy);
                                }
                        break;
                }
        }

        for (size_t i = 0; i < n; i++)
                transfer_done(&ts[i]);
        curl_multi_cleanup(multi);
        return 0;
}

int http_perform(const HttpRequest *req, HttpBodyHandler handler, void *userdata, HttpResponse *ret) {
        int err = 0, r;

        r = http_perform_many(req, 1, &handler, &userdata, ret, &err);
        return r < 0 ? r : err;
}

typedef struct Buffer {
        char *data;
        size_t size, allocated;
} Buffer;

static int buffer_append(const void *data, size_t size, void *userdata) {
        Buffer *b = userdata;

        if (b->size + size + 1 > b->allocated) {
                size_t a = MAX(b->allocated * 2, b->size + size + 1);
                char *p = realloc(b->data, MAX(a, (size_t) 4096));
                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->allocated = MAX(a, (size_t) 4096);
        }
        memcpy(b->data + b->size, data, size);
        b->size += size;
        return 0;
}

int http_fetch(const HttpRequest *req, char **ret_body, size_t *ret_size, HttpResponse *ret) {
        Buffer b = {};
        int r;

        if (req->max_body_size == 0 || req->max_body_size >= SIZE_MAX) {
                *ret = (HttpResponse){.content_length = UINT64_MAX, .total_size = UINT64_MAX};
                (void) snprintf(ret->error, sizeof ret->error, "http_fetch() needs max_body_size");
                return -EINVAL;
        }

        r = http_perform(req, buffer_append, &b, ret);
        if (r < 0) {
                free(b.data);
                return r;
        }
        if (!b.data) {
                b.data = strdup("");
                if (!b.data)
                        return -ENOMEM;
        } else
                b.data[b.size] = '\0';

        *ret_body = b.data;
        if (ret_size)
                *ret_size = b.size;
        return 0;
}
