/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "slot-manager-error.h"
#include "slot-manager-ops.h"
#include "slot-manager-varlink.h"

static const char *arg_disk;
static const char *arg_esp;
static const char *arg_cmdline;
static const char *arg_root;
static const char *arg_listen;
static uint64_t arg_idle_usec = 30ull * 1000000ull;
static bool arg_json;
static int arg_priority = -1, arg_tries = -1, arg_successful = -1;
static SlotAuth arg_auth;

static void help(void) {
        printf("%s [OPTIONS...] COMMAND [SLOT]\n\n"
               "Reads and writes the A/B /usr slot state kept in GPT attributes (cgpt/gptprio compatible).\n\n"
               "Commands:\n"
               "  status             Show both slots, the booted one and the next boot's choice\n"
               "  next               Show what the boot loader (gptprio.next) would boot, without writing\n"
               "  boot-select        Perform gptprio.next: choose, spend one try, write the GPT\n"
               "  set-next SLOT      Make SLOT the next boot with one try (successful=0, tries=1, prioritize)\n"
               "  mark-good [SLOT]   Mark SLOT (default: the booted one) good (successful=1, tries=0, prioritize)\n"
               "  rollback           Make the other slot the next boot, if it was ever good\n"
               "  set SLOT           Set --priority/--tries/--successful of SLOT (like cgpt add -P/-T/-S)\n"
               "  repair             Repair a damaged or stale GPT copy from the other one\n"
               "  varlink            Serve io.switchyard.Slots (socket activation or --listen)\n\n"
               "SLOT is a, b, USR-A, USR-B (ROOT-A/ROOT-B accepted).\n\n"
               "Options:\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --disk=PATH         Disk or image file (default: the disk holding /usr)\n"
               "     --esp=DIR           ESP mount point holding flatcar/vmlinuz-a|b (default: /boot)\n"
               "     --cmdline=FILE      Kernel command line to find the booted slot (default: /proc/cmdline)\n"
               "     --root=DIR          Read the configuration below DIR\n"
               "     --json              Machine-readable output\n"
               "     --priority=N        For set: priority 0-15\n"
               "     --tries=N           For set: tries 0-15\n"
               "     --successful=0|1    For set: successful flag\n"
               "     --listen=PATH       For varlink: listen on PATH instead of socket activation\n"
               "     --idle-timeout=SEC  For varlink: exit after SEC idle seconds when socket-activated (default 30)\n"
               "     --allow-user=USER   For varlink: also allow USER (name or uid) to change slots\n"
               "     --allow-group=GROUP For varlink: also allow GROUP (name or gid) to change slots\n"
               "     --usr-type=GUID     Partition type of the slots (default " USR_TYPE_GUID ")\n",
               program_invocation_short_name);
}

static int parse_small(const char *name, const char *s, int max, int *ret) {
        uint32_t v;
        if (safe_atou32(s, &v) < 0 || v > (uint32_t) max)
                return log_error_errno(SYNTHETIC_ERRNO(ERANGE), "Invalid --%s=%s: expected 0-%d.", name, s, max);
        *ret = (int) v;
        return 0;
}

static int auth_add(SlotAuth *a, bool group, const char *s) {
        uint32_t id;

        if (safe_atou32(s, &id) < 0) {
                if (group) {
                        struct group *g = getgrnam(s);
                        if (!g)
                                return log_error_errno(SYNTHETIC_ERRNO(ENOENT), "Unknown group '%s'.", s);
                        id = g->gr_gid;
                } else {
                        struct passwd *p = getpwnam(s);
                        if (!p)
                                return log_error_errno(SYNTHETIC_ERRNO(ENOENT), "Unknown user '%s'.", s);
                        id = p->pw_uid;
                }
        }
        if (group) {
                if (a->n_gids >= ELEMENTSOF(a->gids))
                        return log_error_errno(SYNTHETIC_ERRNO(E2BIG), "Too many allowed groups.");
                a->gids[a->n_gids++] = id;
        } else {
                if (a->n_uids >= ELEMENTSOF(a->uids))
                        return log_error_errno(SYNTHETIC_ERRNO(E2BIG), "Too many allowed users.");
                a->uids[a->n_uids++] = id;
        }
        return 0;
}

/* ALLOW_USERS= and ALLOW_GROUPS= hold whitespace-separated names or numbers. */
static int auth_add_list(SlotAuth *a, bool group, const char *list) {
        _cleanup_free_ char *copy = strdup(list);
        char *save = NULL;
        if (!copy)
                return log_oom();
        for (char *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                int r = auth_add(a, group, w);
                if (r < 0)
                        return r;
        }
        return 0;
}

static ConfFile *config;

static int load_config(void) {
        int r = conf_load_switchyard(arg_root, "slot-manager", &config);
        if (r < 0)
                return log_error_errno(r, "Failed to load slot-manager.conf: %m");
        if (!arg_disk)
                arg_disk = conf_get(config, "DISK");
        if (!arg_esp)
                arg_esp = conf_get(config, "ESP");
        if (isempty(arg_disk))
                arg_disk = NULL;
        const char *v = conf_get(config, "ALLOW_USERS");
        if (v && (r = auth_add_list(&arg_auth, false, v)) < 0)
                return r;
        v = conf_get(config, "ALLOW_GROUPS");
        if (v && (r = auth_add_list(&arg_auth, true, v)) < 0)
                return r;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_DISK,
                ARG_ESP,
                ARG_CMDLINE,
                ARG_ROOT,
                ARG_JSON,
                ARG_PRIORITY,
                ARG_TRIES,
                ARG_SUCCESSFUL,
                ARG_LISTEN,
                ARG_ALLOW_USER,
                ARG_ALLOW_GROUP,
                ARG_USR_TYPE,
                ARG_IDLE_TIMEOUT,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "disk", required_argument, NULL, ARG_DISK },
                { "esp", required_argument, NULL, ARG_ESP },
                { "cmdline", required_argument, NULL, ARG_CMDLINE },
                { "root", required_argument, NULL, ARG_ROOT },
                { "json", no_argument, NULL, ARG_JSON },
                { "priority", required_argument, NULL, ARG_PRIORITY },
                { "tries", required_argument, NULL, ARG_TRIES },
                { "successful", required_argument, NULL, ARG_SUCCESSFUL },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "allow-user", required_argument, NULL, ARG_ALLOW_USER },
                { "allow-group", required_argument, NULL, ARG_ALLOW_GROUP },
                { "usr-type", required_argument, NULL, ARG_USR_TYPE },
                { "idle-timeout", required_argument, NULL, ARG_IDLE_TIMEOUT },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("slot-manager %s\n", SWITCHYARD_VERSION);
                        return 0;
                case ARG_DISK:
                        arg_disk = optarg;
                        break;
                case ARG_ESP:
                        arg_esp = optarg;
                        break;
                case ARG_CMDLINE:
                        arg_cmdline = optarg;
                        break;
                case ARG_ROOT:
                        arg_root = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_PRIORITY:
                        if ((r = parse_small("priority", optarg, 15, &arg_priority)) < 0)
                                return r;
                        break;
                case ARG_TRIES:
                        if ((r = parse_small("tries", optarg, 15, &arg_tries)) < 0)
                                return r;
                        break;
                case ARG_SUCCESSFUL:
                        if ((r = parse_small("successful", optarg, 1, &arg_successful)) < 0)
                                return r;
                        break;
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case ARG_ALLOW_USER:
                        if ((r = auth_add(&arg_auth, false, optarg)) < 0)
                                return r;
                        break;
                case ARG_ALLOW_GROUP:
                        if ((r = auth_add(&arg_auth, true, optarg)) < 0)
                                return r;
                        break;
                case ARG_USR_TYPE:
                        if (disk_set_usr_type(optarg) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid --usr-type=%s: not a GUID.",
                                                       optarg);
                        break;
                case ARG_IDLE_TIMEOUT: {
                        uint32_t sec;
                        if (safe_atou32(optarg, &sec) < 0 || sec == 0 || sec > 86400)
                                return log_error_errno(SYNTHETIC_ERRNO(ERANGE),
                                                       "Invalid --idle-timeout=%s: expected 1-86400 seconds.", optarg);
                        arg_idle_usec = (uint64_t) sec * 1000000ull;
                        break;
                }
                default:
                        return -EINVAL;
                }
        return 1;
}

static int print_json(json_t *j) {
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!s)
                return log_oom();
        puts(s);
        free(s);
        return 0;
}

static const char *json_str(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int verb_status(const SlotContext *c) {
        json_t *j = NULL;
        int r = ops_status(c, &j);
        if (r < 0)
                return r;
        if (arg_json) {
                r = print_json(j);
                json_decref(j);
                return r;
        }

        json_t *gpt = json_object_get(j, "gpt");
        printf("Disk:   %s\n", json_str(j, "disk"));
        printf("GPT:    primary %s, backup %s\n", json_str(gpt, "primary"), json_str(gpt, "backup"));
        printf("Booted: %s\n", json_str(j, "booted") ?: "(not a slot of this disk)");
        json_t *np = json_object_get(j, "next_partition");
        if (json_str(j, "next"))
                printf("Next:   %s\n", json_str(j, "next"));
        else if (json_is_integer(np))
                printf("Next:   partition %lld (not a slot)\n", (long long) json_integer_value(np));
        else
                printf("Next:   (nothing bootable)\n");
        printf("\n%-4s %-6s %4s %-36s %8s %5s %10s\n", "SLOT", "LABEL", "PART", "PARTUUID", "PRIORITY", "TRIES",
               "SUCCESSFUL");
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(j, "slots"), i, s)
                printf("%-4s %-6s %4lld %-36s %8lld %5lld %10s%s%s\n", json_str(s, "slot"), json_str(s, "label"),
                       (long long) json_integer_value(json_object_get(s, "partition")), json_str(s, "partuuid"),
                       (long long) json_integer_value(json_object_get(s, "priority")),
                       (long long) json_integer_value(json_object_get(s, "tries")),
                       json_is_true(json_object_get(s, "successful")) ? "yes" : "no",
                       json_is_true(json_object_get(s, "booted")) ? "  booted" : "",
                       json_is_true(json_object_get(s, "next")) ? "  next" : "");
        json_decref(j);
        return 0;
}

static int verb_boot_select(const SlotContext *c, bool write) {
        json_t *j = NULL;
        int r = ops_boot_select(c, write, &j);
        if (r < 0)
                return r;
        if (arg_json)
                r = print_json(j);
        else
                printf("usr_device=gpt%lld usr_uuid=%s label=%s tries=%lld->%lld%s\n",
                       (long long) json_integer_value(json_object_get(j, "partition")), json_str(j, "partuuid"),
                       json_str(j, "label"), (long long) json_integer_value(json_object_get(j, "tries_before")),
                       (long long) json_integer_value(json_object_get(j, "tries")),
                       write ? (json_is_true(json_object_get(j, "written")) ? " (written)" : " (unchanged)") : "");
        json_decref(j);
        return r;
}

static int verb_repair(const SlotContext *c) {
        json_t *j = NULL;
        int r = ops_repair(c, &j);
        if (r < 0)
                return r;
        if (arg_json) {
                r = print_json(j);
                json_decref(j);
                return r;
        }
        json_t *found = json_object_get(j, "found");
        printf("Disk:    %s\n", json_str(j, "disk"));
        printf("Primary: %s\n", json_str(found, "primary"));
        printf("Backup:  %s\n", json_str(found, "backup"));
        json_t *rewritten = json_object_get(j, "rewritten");
        if (json_is_true(json_object_get(j, "written"))) {
                size_t i;
                json_t *v;
                printf("Rewrote:");
                json_array_foreach(rewritten, i, v)
                        printf("%s %s", i > 0 ? "," : "", json_string_value(v));
                printf(" from the %s (%lld sectors)\nGPT repaired.\n", json_str(found, "in_use"),
                       (long long) json_integer_value(json_object_get(j, "sectors_written")));
        } else
                printf("GPT is intact; nothing written.\n");
        json_decref(j);
        return 0;
}

static int parse_slot_arg(const char *s, SlotId *ret) {
        SlotId id = slot_from_string(s);
        if (id < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown slot '%s': expected a, b, USR-A or USR-B.", s);
        *ret = id;
        return 0;
}

static void print_slot_result(const char *what, SlotId s) {
        if (arg_json)
                printf("{\"slot\": \"%s\"}\n", slot_to_string(s));
        else
                printf("%s: %s\n", what, slot_to_string(s));
}

static int run(int argc, char *argv[]) {
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        r = load_config();
        if (r < 0)
                return r;

        SlotContext c = { .disk = arg_disk, .esp = arg_esp, .cmdline = arg_cmdline };
        const char *verb = optind < argc ? argv[optind] : "status";
        int n_args = argc - optind - 1;
        char **args = argv + optind + 1;
        SlotId s;

        if (streq(verb, "varlink"))
                return slot_varlink_run(&c, &arg_auth, arg_listen, arg_idle_usec);

        if (streq(verb, "status") || streq(verb, "next") || streq(verb, "boot-select") || streq(verb, "rollback") ||
            streq(verb, "repair")) {
                if (n_args > 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "%s takes no arguments.", verb);
        } else if (streq(verb, "set-next") || streq(verb, "set")) {
                if (n_args != 1)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "%s needs exactly one SLOT.", verb);
        } else if (streq(verb, "mark-good")) {
                if (n_args > 1)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "mark-good takes at most one SLOT.");
        } else
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown command '%s' (see --help).", verb);

        if (streq(verb, "status"))
                return verb_status(&c);
        if (streq(verb, "next"))
                return verb_boot_select(&c, false);
        if (streq(verb, "boot-select"))
                return verb_boot_select(&c, true);
        if (streq(verb, "set-next")) {
                if ((r = parse_slot_arg(args[0], &s)) < 0 || (r = ops_set_next(&c, s)) < 0)
                        return r;
                print_slot_result("Next boot", s);
                return 0;
        }
        if (streq(verb, "mark-good")) {
                s = _SLOT_INVALID;
                if (n_args == 1 && (r = parse_slot_arg(args[0], &s)) < 0)
                        return r;
                if ((r = ops_mark_good(&c, s, &s)) < 0)
                        return r;
                print_slot_result("Marked good", s);
                return 0;
        }
        if (streq(verb, "rollback")) {
                if ((r = ops_rollback(&c, &s)) < 0)
                        return r;
                print_slot_result("Next boot", s);
                return 0;
        }
        if (streq(verb, "set")) {
                if ((r = parse_slot_arg(args[0], &s)) < 0)
                        return r;
                if (arg_priority < 0 && arg_tries < 0 && arg_successful < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                               "set needs at least one of --priority, --tries, --successful.");
                return ops_set_attrs(&c, s, arg_priority, arg_tries, arg_successful);
        }
        /* repair */
        return verb_repair(&c);
}

int main(int argc, char *argv[]) {
        log_setup(argv[0]);
        int r = run(argc, argv);
        config = conf_free(config);
        slot_error_clear();
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
