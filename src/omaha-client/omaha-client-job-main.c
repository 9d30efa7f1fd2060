/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* omaha-client-job: the part of omaha-client that talks to the network. The daemon starts it for each
 * check and reads its status lines; it also serves `omaha-client parse-response`. Not for direct use. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>

#include "fileio.h"
#include "http.h"
#include "log.h"
#include "omaha-client-job.h"
#include "omaha-client-response.h"

static OmahaJobArgs arg_job = {};
static const char *arg_status = NULL;
static int arg_status_fd = -EBADF;
static bool arg_json = false;

static void help(void) {
        printf("omaha-client-job [OPTIONS] COMMAND\n\n"
               "The update job of omaha-client, started by its daemon; not meant to be run by hand.\n\n"
               "Commands:\n"
               "  check                One update check, and the update it may lead to\n"
               "  parse-response FILE  Parse an Omaha response (- = stdin), as omaha-client parse-response\n\n"
               "Options:\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n"
               "     --json            parse-response: machine-readable output\n"
               "     --root=DIR        Read configuration and identity below DIR\n"
               "     --slots=PATH      slot-manager socket\n"
               "     --payload-writer=PATH  payload-writer socket\n"
               "     --verity=PATH     verity-check socket\n"
               "     --interactive     check: an on-demand check\n"
               "     --status=JSON     check: the daemon's status to start from\n"
               "     --status-fd=FD    check: write the status lines and the result there\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_ROOT,
                ARG_SLOTS,
                ARG_PAYLOAD_WRITER,
                ARG_VERITY,
                ARG_INTERACTIVE,
                ARG_STATUS,
                ARG_STATUS_FD,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_JSON },
                { "root", required_argument, NULL, ARG_ROOT },
                { "slots", required_argument, NULL, ARG_SLOTS },
                { "payload-writer", required_argument, NULL, ARG_PAYLOAD_WRITER },
                { "verity", required_argument, NULL, ARG_VERITY },
                { "interactive", no_argument, NULL, ARG_INTERACTIVE },
                { "status", required_argument, NULL, ARG_STATUS },
                { "status-fd", required_argument, NULL, ARG_STATUS_FD },
                {}
        };
        uint32_t fd;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("omaha-client-job %s\n", SWITCHYARD_VERSION);
                        return 0;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_ROOT:
                        arg_job.root = optarg;
                        break;
                case ARG_SLOTS:
                        arg_job.slots_address = optarg;
                        break;
                case ARG_PAYLOAD_WRITER:
                        arg_job.payload_writer_address = optarg;
                        break;
                case ARG_VERITY:
                        arg_job.verity_address = optarg;
                        break;
                case ARG_INTERACTIVE:
                        arg_job.interactive = true;
                        break;
                case ARG_STATUS:
                        arg_status = optarg;
                        break;
                case ARG_STATUS_FD:
                        if (safe_atou32(optarg, &fd) < 0 || fd > INT_MAX || fcntl(fd, F_GETFD) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EBADF), "--status-fd=%s is not an open file descriptor.",
                                                       optarg);
                        arg_status_fd = (int) fd;
                        break;
                default:
                        return -EINVAL;
                }
        return 1;
}

/* omaha-client parse-response: parses a saved response as the job would. */
static int verb_parse_response(const char *path, bool json) {
        _cleanup_(omaha_response_freep) OmahaResponse *resp = NULL;
        _cleanup_free_ char *data = NULL, *reason = NULL;
        size_t size;
        int r, code = 0;

        if (streq(path, "-"))
                r = read_full_fd(STDIN_FILENO, OMAHA_RESPONSE_MAX + 1, &data, &size);
        else
                r = read_full_file(path, OMAHA_RESPONSE_MAX + 1, &data, &size);
        if (r == -EFBIG) {
                code = OMAHA_ERROR_XML_PARSE;
                reason = strdup("response too large");
        } else if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        else
                r = omaha_response_parse(data, size, &resp, &code, &reason);

        if (json) {
                json_t *o = r >= 0 ? omaha_response_to_json(resp)
                                   : json_pack("{s:s, s:i, s:s}", "status", "error", "errorcode", code, "message",
                                               reason ?: "");
                if (!o)
                        return log_oom();
                json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
                putchar('\n');
                json_decref(o);
        } else if (r >= 0) {
                if (!resp->update)
                        printf("noupdate\n");
                else {
                        printf("update %s\nsize %" PRIu64 "\nsha256 %s\n", resp->version, resp->size, resp->sha256);
                        for (size_t i = 0; i < resp->n_urls; i++)
                                printf("url %s\n", resp->urls[i]);
                }
        }
        if (r < 0) {
                log_error("%s: error %d: %s", path, code, reason ?: "invalid response");
                return -EBADMSG;
        }
        return 0;
}

static int verb_check(void) {
        StatusBox box = { .fd = arg_status_fd };
        OmahaJobResult result;
        char error[256];
        int r;

        omaha_status_init(&box.status);
        if (arg_status) {
                json_error_t e;
                json_t *o = json_loads(arg_status, 0, &e);

                r = o ? omaha_status_from_json(o, &box.status, error, sizeof error)
                      : (snprintf(error, sizeof error, "not JSON: %s", e.text), -EBADMSG);
                json_decref(o);
                if (r < 0)
                        return log_error_errno(r, "--status: %s", error);
        }

        http_global_init();
        (void) signal(SIGPIPE, SIG_IGN);
        omaha_job_run(&arg_job, &box, &result);
        if (arg_status_fd >= 0) {
                r = omaha_report_write_result(arg_status_fd, &result);
                if (r < 0)
                        return log_error_errno(r, "Could not report the result to the daemon: %m");
        }
        return 0;
}

static int run(int argc, char *argv[]) {
        const char *verb;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        if (optind >= argc)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "A command is needed; see --help.");
        verb = argv[optind];
        if (streq(verb, "check"))
                return verb_check();
        if (streq(verb, "parse-response")) {
                if (optind + 1 >= argc)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "parse-response needs a FILE (or -).");
                return verb_parse_response(argv[optind + 1], arg_json);
        }
        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown command \"%s\"; see --help.", verb);
}

int main(int argc, char *argv[]) {
        log_setup(argv[0]);
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
