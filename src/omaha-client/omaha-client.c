/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* omaha-client: asks an Omaha v3 server for updates and drives an A/B update (update_engine's job). */
#include <getopt.h>

#include "log.h"
#include "omaha-client-config.h"
#include "omaha-client-ctl.h"
#include "omaha-client-daemon.h"
#include "omaha-client-runner.h"
#include "omaha-client-tool.h"

static const char *arg_root = NULL;
static const char *arg_address = OMAHA_DEFAULT_ADDRESS;
static const char *arg_listen = NULL;
static const char *arg_slots = NULL, *arg_payload_writer = NULL, *arg_verity = NULL;
static const char *arg_dbus = "system";
static bool arg_json = false, arg_interactive = false, arg_wait = false;

static void help(void) {
        printf("omaha-client [OPTIONS] COMMAND\n\n"
               "Checks an Omaha server for updates and applies them to the inactive /usr slot.\n\n"
               "Commands:\n"
               "  status               Show the update status (Flatcar's names)\n"
               "  check                Ask the daemon to check for an update now\n"
               "  watch                Follow the status with a progress bar\n"
               "  reset-status         Forget an applied update (UPDATED_NEED_REBOOT -> IDLE)\n"
               "  daemon               Run the update daemon (varlink io.switchyard.Omaha)\n\n"
               "Options:\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n"
               "     --json            Machine-readable output\n"
               "     --root=DIR        Read configuration and identity below DIR\n"
               "     --address=PATH    The daemon's varlink socket (default %s)\n"
               "     --listen=PATH     daemon: listen on PATH instead of socket activation\n"
               "     --slots=PATH      slot-manager socket\n"
               "     --payload-writer=PATH  payload-writer socket\n"
               "     --verity=PATH     verity-check socket\n"
               "     --dbus=BUS        daemon: serve com.coreos.update1 on system (default), session,\n"
               "                       a D-Bus address, or no\n"
               "     --wait            check: wait until the check and any update are over\n"
               "     --interactive     print-request: as an on-demand check\n",
               OMAHA_DEFAULT_ADDRESS);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_ROOT,
                ARG_ADDRESS,
                ARG_LISTEN,
                ARG_SLOTS,
                ARG_PAYLOAD_WRITER,
                ARG_VERITY,
                ARG_WAIT,
                ARG_INTERACTIVE,
                ARG_DBUS,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_JSON },
                { "root", required_argument, NULL, ARG_ROOT },
                { "address", required_argument, NULL, ARG_ADDRESS },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "slots", required_argument, NULL, ARG_SLOTS },
                { "payload-writer", required_argument, NULL, ARG_PAYLOAD_WRITER },
                { "verity", required_argument, NULL, ARG_VERITY },
                { "wait", no_argument, NULL, ARG_WAIT },
                { "interactive", no_argument, NULL, ARG_INTERACTIVE },
                { "dbus", required_argument, NULL, ARG_DBUS },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("omaha-client %s\n", SWITCHYARD_VERSION);
                        return 0;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_ROOT:
                        arg_root = optarg;
                        break;
                case ARG_ADDRESS:
                        arg_address = optarg;
                        break;
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case ARG_SLOTS:
                        arg_slots = optarg;
                        break;
                case ARG_PAYLOAD_WRITER:
                        arg_payload_writer = optarg;
                        break;
                case ARG_VERITY:
                        arg_verity = optarg;
                        break;
                case ARG_WAIT:
                        arg_wait = true;
                        break;
                case ARG_INTERACTIVE:
                        arg_interactive = true;
                        break;
                case ARG_DBUS:
                        arg_dbus = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        return 1;
}

/* Served by the job helper, which holds the response parser (this program does not link expat). */
static int verb_parse_response(const char *path) {
        _cleanup_free_ char *helper = NULL;
        const char *argv[6];
        size_t n = 0;
        int r;

        r = omaha_job_helper_path(&helper);
        if (r < 0)
                return log_oom();
        argv[n++] = "omaha-client"; /* its messages speak for this command */
        if (arg_json)
                argv[n++] = "--json";
        argv[n++] = "--";
        argv[n++] = "parse-response";
        argv[n++] = path;
        argv[n] = NULL;
        (void) execv(helper, (char *const *) argv);
        return log_error_errno(errno, "Failed to run %s: %m", helper);
}

static int load_config(OmahaConfig **ret) {
        _cleanup_(omaha_config_freep) OmahaConfig *c = NULL;
        int r;

        r = omaha_config_load(arg_root, &c);
        if (r < 0)
                return r;
        r = omaha_config_set_addresses(c, arg_slots, arg_payload_writer, arg_verity);
        if (r < 0)
                return log_oom();
        *ret = TAKE_PTR(c);
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(omaha_config_freep) OmahaConfig *c = NULL;
        const char *verb;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        if (optind >= argc)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "A command is needed; see --help.");
        verb = argv[optind];

        if (streq(verb, "status"))
                return ctl_status(arg_address, arg_json);
        if (streq(verb, "check"))
                return ctl_check(arg_address, arg_wait, arg_json);
        if (streq(verb, "watch"))
                return ctl_watch(arg_address, arg_json);
        if (streq(verb, "reset-status"))
                return ctl_reset_status(arg_address);
        if (streq(verb, "parse-response")) {
                if (optind + 1 >= argc)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "parse-response needs a FILE (or -).");
                return verb_parse_response(argv[optind + 1]);
        }
        if (streq(verb, "print-request")) {
                r = load_config(&c);
                if (r < 0)
                        return r;
                return verb_print_request(c, arg_interactive, argc - optind - 1, argv + optind + 1);
        }
        if (streq(verb, "daemon") || streq(verb, "varlink")) {
                r = load_config(&c);
                if (r < 0)
                        return r;
                return daemon_run(c, arg_listen, arg_dbus);
        }
        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown command \"%s\"; see --help.", verb);
}

/* update_engine_client's flags (spec §3.2), accepted as -flag or --flag, in its priority order. */
static int run_update_engine_client(int argc, char *argv[]) {
        bool reset = false, status = false, check = false, update = false, watch = false;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i][0] == '-' ? argv[i] + 1 + (argv[i][1] == '-') : NULL;

                if (!a)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unexpected argument \"%s\".", argv[i]);
                if (streq(a, "reset_status"))
                        reset = true;
                else if (streq(a, "status"))
                        status = true;
                else if (streq(a, "check_for_update"))
                        check = true;
                else if (streq(a, "update"))
                        update = true;
                else if (streq(a, "watch_for_updates"))
                        watch = true;
                else if (startswith(a, "address="))
                        arg_address = a + strlen("address=");
                else if (streq(a, "help") || streq(a, "h")) {
                        printf("update_engine_client [-status|-check_for_update|-update|-reset_status|"
                               "-watch_for_updates] (served by omaha-client %s)\n", SWITCHYARD_VERSION);
                        return 0;
                } else
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown flag \"%s\".", argv[i]);
        }
        if (reset) {
                int r = ctl_reset_status(arg_address);
                if (r >= 0)
                        printf("The status was reset. The updated slot may still be the next boot; "
                               "\"slot-manager rollback\" undoes that.\n");
                return r;
        }
        if (status)
                return ctl_status(arg_address, false);
        if (check)
                return ctl_check(arg_address, false, false);
        if (update)
                return ctl_check(arg_address, true, false);
        if (watch)
                return ctl_watch(arg_address, false);
        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Nothing to do; see -help.");
}

int main(int argc, char *argv[]) {
        const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

        log_setup(argv[0]);
        if (streq(name, "update_engine_client"))
                return run_update_engine_client(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
