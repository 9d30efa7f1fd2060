/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-http-get: drives http_perform(), http_fetch() and http_perform_many() from the command line for
 * the integration tests (tests/integration/shared/test_http.py). Built with the tests, never installed. */

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>

#include "fileio.h"
#include "hash.h"
#include "http.h"
#include "log.h"

#define MAX_HEADERS 16

static HttpRequest arg_req = {};
static HttpHeader arg_headers[MAX_HEADERS];
static char *arg_data = NULL;
static const char *arg_output = NULL;
static bool arg_fetch = false, arg_many = false, arg_json = false;
static uint64_t arg_abort_after = UINT64_MAX;

typedef struct Sink {
        int fd;
        Sha256 *hash;
        uint64_t size;
} Sink;

static int sink_write(const void *data, size_t size, void *userdata) {
        Sink *s = userdata;
        int r;

        if (s->size + size > arg_abort_after)
                return -ECANCELED;
        if (s->fd >= 0) {
                r = loop_write(s->fd, data, size);
                if (r < 0)
                        return r;
        }
        r = sha256_update(s->hash, data, size);
        if (r < 0)
                return r;
        s->size += size;
        return 0;
}

static void help(void) {
        printf("%s [OPTIONS] URL...\n\n"
               "Fetches URLs with switchyard's HTTP layer (a test driver).\n\n"
               "  -h --help                 Show this help\n"
               "     --version              Show the version\n"
               "     --ca=FILE              Trust this CA bundle instead of the system's\n"
               "  -X --method=METHOD        Request method\n"
               "  -d --data=STRING          Request body\n"
               "     --data-file=FILE       Request body from a file\n"
               "     --content-type=TYPE    Content-Type of the body\n"
               "  -H --header=NAME:VALUE    Extra request header (repeatable)\n"
               "     --https-only           Refuse http:// and redirects to it\n"
               "     --user=USER:PASSWORD   HTTP authentication\n"
               "     --allow-insecure-auth  Allow credentials over plain http://\n"
               "     --resume-from=BYTES    Ask for the body from this offset on\n"
               "     --max-size=BYTES       Fail bodies larger than this\n"
               "     --connect-timeout=SEC  Connect timeout\n"
               "     --timeout=SEC          Total timeout\n"
               "     --low-speed=BYTES:SEC  Stall when under BYTES/s for SEC seconds\n"
               "     --max-redirects=N      Redirects to follow\n"
               "     --abort-after=BYTES    Make the body handler fail past this many bytes\n"
               "  -o --output=FILE          Write the body here (with --many: FILE.0, FILE.1, ...)\n"
               "     --fetch                Use http_fetch() (one URL, needs --max-size)\n"
               "     --many                 Fetch all URLs concurrently with http_perform_many()\n"
               "     --json                 Print one JSON object per URL on stdout\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_CA,
                ARG_DATA_FILE,
                ARG_CONTENT_TYPE,
                ARG_HTTPS_ONLY,
                ARG_USER,
                ARG_ALLOW_INSECURE_AUTH,
                ARG_RESUME_FROM,
                ARG_MAX_SIZE,
                ARG_CONNECT_TIMEOUT,
                ARG_TIMEOUT,
                ARG_LOW_SPEED,
                ARG_MAX_REDIRECTS,
                ARG_ABORT_AFTER,
                ARG_FETCH,
                ARG_MANY,
                ARG_JSON,
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"ca", required_argument, NULL, ARG_CA},
                {"method", required_argument, NULL, 'X'},
                {"data", required_argument, NULL, 'd'},
                {"data-file", required_argument, NULL, ARG_DATA_FILE},
                {"content-type", required_argument, NULL, ARG_CONTENT_TYPE},
                {"header", required_argument, NULL, 'H'},
                {"https-only", no_argument, NULL, ARG_HTTPS_ONLY},
                {"user", required_argument, NULL, ARG_USER},
                {"allow-insecure-auth", no_argument, NULL, ARG_ALLOW_INSECURE_AUTH},
                {"resume-from", required_argument, NULL, ARG_RESUME_FROM},
                {"max-size", required_argument, NULL, ARG_MAX_SIZE},
                {"connect-timeout", required_argument, NULL, ARG_CONNECT_TIMEOUT},
                {"timeout", required_argument, NULL, ARG_TIMEOUT},
                {"low-speed", required_argument, NULL, ARG_LOW_SPEED},
                {"max-redirects", required_argument, NULL, ARG_MAX_REDIRECTS},
                {"abort-after", required_argument, NULL, ARG_ABORT_AFTER},
                {"output", required_argument, NULL, 'o'},
                {"fetch", no_argument, NULL, ARG_FETCH},
                {"many", no_argument, NULL, ARG_MANY},
                {"json", no_argument, NULL, ARG_JSON},
                {},
        };
        uint32_t u32;
        char *colon;
        size_t size;
        int c, r;

        while ((c = getopt_long(argc, argv, "hX:d:H:o:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("test-http-get %s\n", SWITCHYARD_VERSION);
                        return 0;
                case ARG_CA:
                        arg_req.ca_file = optarg;
                        break;
                case 'X':
                        arg_req.method = optarg;
                        break;
                case 'd':
                        free(arg_data);
                        arg_data = strdup(optarg);
                        if (!arg_data)
                                return log_oom();
                        arg_req.body = arg_data;
                        arg_req.body_size = strlen(arg_data);
                        break;
                case ARG_DATA_FILE:
                        arg_data = mfree(arg_data);
                        r = read_full_file(optarg, 64 * 1024 * 1024, &arg_data, &size);
                        if (r < 0)
                                return log_error_errno(r, "Failed to read %s: %m", optarg);
                        arg_req.body = arg_data;
                        arg_req.body_size = size;
                        break;
                case ARG_CONTENT_TYPE:
                        arg_req.content_type = optarg;
                        break;
                case 'H':
                        if (arg_req.n_headers >= MAX_HEADERS)
                                return log_error_errno(SYNTHETIC_ERRNO(E2BIG),
                                                       "Too many --header= options.");
                        colon = strchr(optarg, ':');
                        if (!colon)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "--header= needs NAME:VALUE: %s", optarg);
                        *colon = '\0';
                        arg_headers[arg_req.n_headers++] =
                                (HttpHeader){optarg, colon + 1 + strspn(colon + 1, " ")};
                        arg_req.headers = arg_headers;
                        break;
                case ARG_HTTPS_ONLY:
                        arg_req.https_only = true;
                        break;
                case ARG_USER:
                        colon = strchr(optarg, ':');
                        if (!colon)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "--user= needs USER:PASSWORD.");
                        *colon = '\0';
                        arg_req.username = optarg;
                        arg_req.password = colon + 1;
                        break;
                case ARG_ALLOW_INSECURE_AUTH:
                        arg_req.allow_insecure_auth = true;
                        break;
                case ARG_RESUME_FROM:
                        if (safe_atou64(optarg, &arg_req.resume_from) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid --resume-from=%s",
                                                       optarg);
                        break;
                case ARG_MAX_SIZE:
                        if (parse_size(optarg, &arg_req.max_body_size) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid --max-size=%s",
                                                       optarg);
                        break;
                case ARG_CONNECT_TIMEOUT:
                case ARG_TIMEOUT:
                case ARG_MAX_REDIRECTS:
                        if (safe_atou32(optarg, &u32) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid number: %s",
                                                       optarg);
                        if (c == ARG_CONNECT_TIMEOUT)
                                arg_req.connect_timeout_sec = u32;
                        else if (c == ARG_TIMEOUT)
                                arg_req.total_timeout_sec = u32;
                        else
                                arg_req.max_redirects = u32;
                        break;
                case ARG_LOW_SPEED:
                        colon = strchr(optarg, ':');
                        if (!colon)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "--low-speed= needs BYTES:SECONDS.");
                        *colon = '\0';
                        if (safe_atou32(optarg, &arg_req.low_speed_bytes) < 0 ||
                            safe_atou32(colon + 1, &arg_req.low_speed_seconds) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "Invalid --low-speed= value.");
                        break;
                case ARG_ABORT_AFTER:
                        if (safe_atou64(optarg, &arg_abort_after) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid --abort-after=%s",
                                                       optarg);
                        break;
                case 'o':
                        arg_output = optarg;
                        break;
                case ARG_FETCH:
                        arg_fetch = true;
                        break;
                case ARG_MANY:
                        arg_many = true;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unhandled option %c", c);
                }

        if (optind >= argc)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "No URL given (see --help).");
        if (argc - optind > 1 && !arg_many)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "More than one URL needs --many.");
        if (arg_fetch && arg_many)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--fetch and --many do not combine.");
        return 1;
}

static json_t *json_size(uint64_t v) {
        return v == UINT64_MAX ? json_null() : json_integer((json_int_t) v);
}

/* Prints the outcome of one request; returns 0 if it succeeded at the transport level. */
static int report(const char *url, int err, const HttpResponse *resp, const Sink *sink, const char *body,
                  size_t body_size) {
        uint8_t digest[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];
        int r;

        if (sink)
                r = sha256_final(sink->hash, digest);
        else
                r = sha256_buffer(body ?: "", body ? body_size : 0, digest);
        if (r < 0)
                return log_error_errno(r, "Failed to hash body: %m");
        hex_encode(digest, sizeof digest, hex);

        if (arg_json) {
                json_t *o = json_pack(
                        "{s:s, s:b, s:i, s:o, s:s, s:I, s:o, s:o, s:I, s:b, s:o, s:o, s:I, s:s}", "url", url,
                        "ok", err >= 0, "errno", ERRNO_VALUE(err), "error_name",
                        err < 0 && strerrorname_np(-err) ? json_string(strerrorname_np(-err)) : json_null(),
                        "message", resp->error, "status", (json_int_t) resp->status, "content_length",
                        json_size(resp->content_length), "total_size", json_size(resp->total_size),
                        "received", (json_int_t) resp->received, "resumed", resp->resumed, "content_type",
                        resp->content_type ? json_string(resp->content_type) : json_null(), "effective_url",
                        resp->effective_url ? json_string(resp->effective_url) : json_null(), "size",
                        (json_int_t) (sink ? sink->size : body_size), "sha256", hex);
                if (!o)
                        return log_oom();
                if (body) {
                        json_t *b = json_stringn(body, body_size);
                        if (b)
                                json_object_set_new(o, "body", b);
                }
                r = json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS);
                json_decref(o);
                if (r < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EIO), "Failed to write JSON.");
                putchar('\n');
        } else if (body && !arg_output)
                fwrite(body, 1, body_size, stdout);

        if (err < 0)
                log_error_errno(err, "%s: %m: %s", url, resp->error);
        return err;
}

static int open_output(size_t index, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        int fd;

        if (!arg_output) {
                *ret_fd = arg_json ? -EBADF : STDOUT_FILENO;
                return 0;
        }
        if (arg_many) {
                if (asprintf(&path, "%s.%zu", arg_output, index) < 0)
                        return log_oom();
        } else {
                path = strdup(arg_output);
                if (!path)
                        return log_oom();
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", path);
        *ret_fd = fd;
        return 0;
}

static int run_fetch(const char *url) {
        _cleanup_free_ char *body = NULL;
        HttpRequest req = arg_req;
        HttpResponse resp;
        size_t size = 0;
        int r, err;

        req.url = url;
        err = http_fetch(&req, &body, &size, &resp);
        if (err >= 0 && arg_output) {
                r = write_file_atomic(arg_output, body, size, 0644);
                if (r < 0) {
                        http_response_done(&resp);
                        return log_error_errno(r, "Failed to write %s: %m", arg_output);
                }
        }
        r = report(url, err, &resp, NULL, body, size);
        http_response_done(&resp);
        return r;
}

static int run_perform(char **urls, size_t n) {
        _cleanup_free_ HttpRequest *reqs = calloc(n, sizeof *reqs);
        _cleanup_free_ HttpResponse *resps = calloc(n, sizeof *resps);
        _cleanup_free_ Sink *sinks = calloc(n, sizeof *sinks);
        _cleanup_free_ HttpBodyHandler *handlers = calloc(n, sizeof *handlers);
        _cleanup_free_ void **userdatas = calloc(n, sizeof *userdatas);
        _cleanup_free_ int *errs = calloc(n, sizeof *errs);
        int r = 0, ret = 0;

        if (!reqs || !resps || !sinks || !handlers || !userdatas || !errs)
                return log_oom();

        for (size_t i = 0; i < n; i++)
                sinks[i].fd = -EBADF;
        for (size_t i = 0; i < n && r >= 0; i++) {
                reqs[i] = arg_req;
                reqs[i].url = urls[i];
                handlers[i] = sink_write;
                userdatas[i] = &sinks[i];
                r = sha256_new(&sinks[i].hash);
                if (r >= 0)
                        r = open_output(i, &sinks[i].fd);
        }

        if (r >= 0) {
                if (arg_many)
                        r = http_perform_many(reqs, n, handlers, userdatas, resps, errs);
                else
                        r = errs[0] = http_perform(&reqs[0], handlers[0], userdatas[0], &resps[0]);
                if (r < 0 && arg_many)
                        log_error_errno(r, "http_perform_many() failed: %m");
                else {
                        r = 0;
                        for (size_t i = 0; i < n; i++)
                                if (report(urls[i], errs[i], &resps[i], &sinks[i], NULL, 0) < 0)
                                        ret = -EIO;
                }
        }

        for (size_t i = 0; i < n; i++) {
                http_response_done(&resps[i]);
                sha256_free(sinks[i].hash);
                if (sinks[i].fd != STDOUT_FILENO)
                        safe_close(sinks[i].fd);
        }
        return r < 0 ? r : ret;
}

int main(int argc, char *argv[]) {
        int r;

        log_setup(argv[0]);
        r = parse_argv(argc, argv);
        if (r <= 0) {
                free(arg_data);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
        r = http_global_init();
        if (r < 0) {
                free(arg_data);
                return log_error_errno(r, "Failed to initialize the HTTP layer: %m"), EXIT_FAILURE;
        }

        if (arg_fetch)
                r = run_fetch(argv[optind]);
        else
                r = run_perform(argv + optind, (size_t) (argc - optind));

        free(arg_data);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
