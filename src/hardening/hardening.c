/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <systemd/sd-bus.h>

#include "config.h"
#include "hardening-engine.h"
#include "hardening-parse.h"
#include "hardening-varlink.h"
#include "log.h"

static const char *arg_root = "/";
static const char *arg_profile = NULL;
static const char *arg_butane_version = "1.1.0";
static const char *arg_listen = NULL;
static bool arg_dry_run = false;
static bool arg_json = false;
static bool arg_reload = false;

static void help(void)
{
        printf("%s [OPTIONS] COMMAND [MEASURE...]\n\n"
               "Apply, audit and revert the host hardening profile (Flatcar's hardening guide).\n\n"
               "Commands:\n"
               "  audit              Report each measure as compliant, not-compliant or not-applicable\n"
               "                     (exit 0 compliant, 2 not compliant, 1 error)\n"
               "  apply              Apply the selected measures (exit 0 done, 2 conflicts, 1 error)\n"
               "  revert             Restore what apply changed, from its record\n"
               "  butane             Print the selected profile as a Butane config (variant flatcar)\n"
               "  list               List the measures and the profiles that include them\n"
               "  varlink            Serve io.switchyard.Hardening (socket activation or --listen=)\n\n"
               "Options:\n"
               "  -h --help                Show this help\n"
               "     --version             Show the version\n"
               "     --root=DIR            Operate on DIR instead of / (configuration is read from it too)\n"
               "     --profile=NAME        guide (default) or strict\n"
               "     --dry-run             apply/revert: show the diff, change nothing\n"
               "     --json                Machine-readable output\n"
               "     --butane-version=V    1.0.0 or 1.1.0 (default)\n"
               "     --reload              apply/revert on /: ask systemd to reload units after changes\n"
               "     --listen=PATH         varlink: listen on PATH instead of socket activation\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[])
{
        enum {
                ARG_VERSION = 0x100,
                ARG_ROOT,
                ARG_PROFILE,
                ARG_DRY_RUN,
                ARG_JSON,
                ARG_BUTANE_VERSION,
                ARG_RELOAD,
                ARG_LISTEN,
        };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, ARG_VERSION},
            {"root", required_argument, NULL, ARG_ROOT},
            {"profile", required_argument, NULL, ARG_PROFILE},
            {"dry-run", no_argument, NULL, ARG_DRY_RUN},
            {"json", no_argument, NULL, ARG_JSON},
            {"butane-version", required_argument, NULL, ARG_BUTANE_VERSION},
            {"reload", no_argument, NULL, ARG_RELOAD},
            {"listen", required_argument, NULL, ARG_LISTEN},
            {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("hardening %s\n", SWITCHYARD_VERSION);
                        return 0;
                case ARG_ROOT:
                        arg_root = optarg;
                        break;
                case ARG_PROFILE:
                        if (profile_from_string(optarg) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "Unknown profile \"%s\" (expected guide or strict).",
                                                       optarg);
                        arg_profile = optarg;
                        break;
                case ARG_DRY_RUN:
                        arg_dry_run = true;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_BUTANE_VERSION:
                        if (!streq(optarg, "1.0.0") && !streq(optarg, "1.1.0"))
                                return log_error_errno(
                                    SYNTHETIC_ERRNO(EINVAL),
                                    "Unsupported Butane version \"%s\" (expected 1.0.0 or 1.1.0).", optarg);
                        arg_butane_version = optarg;
                        break;
                case ARG_RELOAD:
                        arg_reload = true;
                        break;
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unhandled option.");
                }
        return 1;
}

/* PID 1 loaded the units before we masked or dropped in anything: have it read them again. Uses the
 * private socket, which works before dbus.service is up. */
static int daemon_reload(void)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, "unix:path=/run/systemd/private");
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to systemd: %m");
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Reload", &error, NULL, NULL);
        if (r < 0)
                log_error_errno(r, "Failed to reload systemd units: %s", error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

static int outcome_to_exit(Outcome o)
{
        return o == OUTCOME_OK ? EXIT_SUCCESS : o == OUTCOME_ATTENTION ? 2 : EXIT_FAILURE;
}

static int print_report(const char *verb, json_t *report)
{
        if (arg_json) {
                _cleanup_free_ char *s = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                if (!s)
                        return log_oom();
                puts(s);
        } else
                engine_print_report(stdout, verb, report);
        return 0;
}

static int run(int argc, char *argv[])
{
        _cleanup_(json_decrefp) json_t *report = NULL;
        _cleanup_close_ int rootfd = -EBADF;
        _cleanup_(strv_freep) char **names = NULL;
        Settings settings = {};
        const char *verb;
        Outcome outcome = OUTCOME_OK;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (optind >= argc)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "Missing command (audit, apply, revert, butane, list, varlink)."),
                       EXIT_FAILURE;
        verb = argv[optind];
        names = calloc(1, sizeof(char *));
        if (!names)
                return log_oom(), EXIT_FAILURE;
        for (int i = optind + 1; i < argc; i++)
                if (strv_push(&names, argv[i]) < 0)
                        return log_oom(), EXIT_FAILURE;

        if (streq(verb, "list")) {
                _cleanup_(json_decrefp) json_t *list = json_array();
                for (size_t i = 0; list && i < n_measures; i++) {
                        if (!arg_json)
                                printf("%-15s %-7s %s\n", measures[i].name,
                                       profile_to_string(measures[i].profile), measures[i].description);
                        else if (json_array_append_new(
                                     list, json_pack("{s:s,s:s,s:s}", "name", measures[i].name, "profile",
                                                     profile_to_string(measures[i].profile), "description",
                                                     measures[i].description)) < 0)
                                return log_oom(), EXIT_FAILURE;
                }
                if (arg_json) {
                        _cleanup_free_ char *txt =
                            list ? json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
                        if (!txt)
                                return log_oom(), EXIT_FAILURE;
                        puts(txt);
                }
                return EXIT_SUCCESS;
        }
        if (streq(verb, "varlink"))
                return hardening_varlink_run(arg_root, arg_listen) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (!streq(verb, "audit") && !streq(verb, "apply") && !streq(verb, "revert") &&
            !streq(verb, "butane"))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown command \"%s\".", verb),
                       EXIT_FAILURE;
        if (arg_dry_run && !streq(verb, "apply") && !streq(verb, "revert"))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "--dry-run works with apply and revert only."),
                       EXIT_FAILURE;

        if (streq(verb, "revert")) {
                for (size_t i = 0; names[i]; i++)
                        if (!measure_find(names[i]))
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown measure \"%s\".",
                                                       names[i]),
                                       EXIT_FAILURE;
        } else {
                r = hardening_load_settings(arg_root, arg_profile, names, &settings);
                if (r < 0)
                        return EXIT_FAILURE;
        }
        if (streq(verb, "butane")) {
                _cleanup_free_ char *yaml = NULL;
                r = engine_butane(&settings, arg_butane_version, &yaml);
                settings_done(&settings);
                if (r < 0)
                        return log_error_errno(r, "Failed to render the Butane config: %m"), EXIT_FAILURE;
                fputs(yaml, stdout);
                return EXIT_SUCCESS;
        }

        r = root_open(arg_root, &rootfd);
        if (r < 0) {
                settings_done(&settings);
                return log_error_errno(r, "Failed to open root directory %s: %m", arg_root), EXIT_FAILURE;
        }
        if (streq(verb, "audit"))
                r = engine_audit(rootfd, &settings, &report, &outcome);
        else if (streq(verb, "apply"))
                r = engine_apply(rootfd, &settings, arg_dry_run, &report, &outcome);
        else
                r = engine_revert(rootfd, names, arg_dry_run, &report, &outcome);
        settings_done(&settings);
        if (r < 0)
                return EXIT_FAILURE;
        json_object_set_new(report, "root", json_string(arg_root));
        print_report(verb, report);
        if (arg_reload && json_is_true(json_object_get(report, "changed")) && streq(arg_root, "/"))
                (void)daemon_reload();
        if (outcome != OUTCOME_OK)
                log_error("%s", streq(verb, "audit")       ? "Not compliant."
                                : outcome == OUTCOME_ERROR ? "Some changes failed."
                                                           : "Conflicts left some measures undone.");
        return outcome_to_exit(outcome);
}

int main(int argc, char *argv[])
{
        log_setup(argv[0]);
        return run(argc, argv);
}
