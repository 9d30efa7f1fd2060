/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* metadata-agent: cloud and vendor metadata, command-line compatible with Flatcar's coreos-metadata
 * (afterburn 5.10 with cl-legacy). */
#include <getopt.h>

#include "fileio.h"
#include "http.h"
#include "log.h"
#include "metadata-agent-cmdline.h"
#include "metadata-agent-output.h"
#include "metadata-agent-provider.h"
#if HAVE_VARLINK
#include "metadata-agent-varlink.h"
#endif

/* afterburn knows these, switchyard does not implement them (yet); naming them gives a clearer error. */
static const char *const unsupported_providers[] = {
        "vmware",
};

typedef struct Args {
        const char *provider;
        bool cmdline;
        const char *attributes;
        const char *ssh_keys_user;
        const char *hostname;
        const char *network_units, *netplan, *nm_profiles;
        bool check_in;
        const char *root;
        const char *cmdline_file;
        const char *base_url;
        const char *config_drive;
        const char *default_value;
        int style;
        bool json;
} Args;

enum {
        ARG_PROVIDER = 0x100,
        ARG_CMDLINE,
        ARG_ATTRIBUTES,
        ARG_SSH_KEYS,
        ARG_HOSTNAME,
        ARG_NETWORK_UNITS,
        ARG_NETPLAN,
        ARG_NM_PROFILES,
        ARG_CHECK_IN,
        ARG_ROOT,
        ARG_CMDLINE_FILE,
        ARG_BASE_URL,
        ARG_CONFIG_DRIVE,
        ARG_ATTRIBUTES_STYLE,
        ARG_DEFAULT_VALUE,
        ARG_JSON,
        ARG_LISTEN,
        ARG_VERSION,
};

static const struct option options[] = {
        { "provider", required_argument, NULL, ARG_PROVIDER },
        { "cmdline", no_argument, NULL, ARG_CMDLINE },
        { "attributes", required_argument, NULL, ARG_ATTRIBUTES },
        { "ssh-keys", required_argument, NULL, ARG_SSH_KEYS },
        { "hostname", required_argument, NULL, ARG_HOSTNAME },
        { "network-units", required_argument, NULL, ARG_NETWORK_UNITS },
        { "netplan-config", required_argument, NULL, ARG_NETPLAN },
        { "networkmanager-profiles", required_argument, NULL, ARG_NM_PROFILES },
        { "check-in", no_argument, NULL, ARG_CHECK_IN },
        { "root", required_argument, NULL, ARG_ROOT },
        { "cmdline-file", required_argument, NULL, ARG_CMDLINE_FILE },
        { "base-url", required_argument, NULL, ARG_BASE_URL },
        { "config-drive", required_argument, NULL, ARG_CONFIG_DRIVE },
        { "attributes-style", required_argument, NULL, ARG_ATTRIBUTES_STYLE },
        { "default-value", required_argument, NULL, ARG_DEFAULT_VALUE },
        { "json", no_argument, NULL, ARG_JSON },
        { "listen", required_argument, NULL, ARG_LISTEN },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        {},
};

static void help(const char *prog) {
        printf("%s [multi] (--provider NAME | --cmdline) [ACTIONS...] [OPTIONS...]\n"
               "%s exp rd-network-kargs (--provider NAME | --cmdline) --default-value ARGS\n"
               "%s varlink [--listen PATH]\n\n"
               "Fetches cloud metadata like Flatcar's coreos-metadata (afterburn). Single-dash long options\n"
               "(-provider, -attributes, ...) are accepted as in Flatcar's units.\n\n"
               "Actions:\n"
               "  --attributes PATH        write the attributes (KEY=value) file\n"
               "  --ssh-keys USER          write ~USER/.ssh/authorized_keys.d/afterburn\n"
               "  --hostname PATH          write the hostname\n"
               "  --check-in               report a successful boot to the platform\n"
               "  --network-units DIR, --netplan-config DIR, --networkmanager-profiles DIR\n"
               "                           network configuration: systemd-networkd units for\n"
               "                           digitalocean, packet and proxmoxve; nothing for\n"
               "                           providers without any\n"
               "Options:\n"
               "  --provider NAME          one of the providers below (ec2 and gce are aliases)\n"
               "  --cmdline                take the provider from flatcar.oem.id/coreos.oem.id\n"
               "  --attributes-style S     afterburn (AFTERBURN_*) or flatcar (COREOS_*, EC2, GCE);\n"
               "                           default flatcar when called as coreos-metadata\n"
               "  --root DIR               write below DIR and look users up in DIR/etc/passwd\n"
               "  --cmdline-file FILE      read the kernel command line from FILE\n"
               "  --base-url URL           replace the provider's metadata address\n"
               "  --config-drive DIR       use a mounted config drive tree (default: what is\n"
               "                           mounted at " CONFIG_DRIVE_DIR "/LABEL,\n"
               "                           see metadata-agent-generator(8))\n"
               "  --json                   print what was fetched as JSON\n"
               "  --help, --version\n\nProviders:",
               prog, prog, prog);
        for (const char *const *n = provider_names(); *n; n++)
                printf(" %s", *n);
        printf("\n");
}

static int read_cmdline(const Args *a, char **ret) {
        const char *path = a->cmdline_file ?: getenv("SWITCHYARD_METADATA_CMDLINE") ?: "/proc/cmdline";
        int r = read_full_file(path, 64 * 1024, ret, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read the kernel command line from %s: %m", path);
        return 0;
}

static int resolve_provider_name(const Args *a, char **ret) {
        _cleanup_free_ char *cmdline = NULL;
        int r;

        if (!!a->provider == a->cmdline)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Exactly one of --provider and --cmdline is needed.");
        if (a->provider) {
                *ret = strdup(a->provider);
                return *ret ? 0 : log_oom();
        }
        r = read_cmdline(a, &cmdline);
        if (r < 0)
                return r;
        r = cmdline_get_platform(cmdline, ret);
        if (r < 0)
                return log_oom();
        if (r == 0)
                return log_error_errno(SYNTHETIC_ERRNO(ENXIO),
                                       "No flatcar.oem.id=, coreos.oem.id= or ignition.platform.id= on the kernel command line.");
        return 0;
}

static int lookup_provider(const char *name, const Provider **ret) {
        for (size_t i = 0; i < ELEMENTSOF(unsupported_providers); i++)
                if (streq(name, unsupported_providers[i]))
                        return log_error_errno(SYNTHETIC_ERRNO(EOPNOTSUPP),
                                               "Provider \"%s\" is not supported by metadata-agent.", name);
        *ret = provider_find(name);
        if (!*ret)
                return log_error_errno(SYNTHETIC_ERRNO(ENOENT), "Unknown provider \"%s\".", name);
        return 0;
}

static int print_json(const char *provider, const Metadata *m, AttributeStyle style, unsigned want) {
        json_t *o = json_object(), *attrs = json_object(), *keys = json_array();
        int r = 0;

        if (!o || !attrs || !keys) {
                json_decref(o);
                json_decref(attrs);
                json_decref(keys);
                return log_oom();
        }
        for (size_t i = 0; i < m->n_attrs; i++) {
                _cleanup_free_ char *name = attribute_name(m->attrs[i].key, style);
                if (!name || json_object_set_new(attrs, name, json_string(m->attrs[i].value)) < 0)
                        r = -ENOMEM;
        }
        for (size_t i = 0; i < m->n_ssh_keys; i++)
                if (json_array_append_new(keys, json_string(m->ssh_keys[i])) < 0)
                        r = -ENOMEM;
        json_object_set_new(o, "provider", json_string(provider));
        json_object_set_new(o, "attributes", attrs);
        if (want & WANT_HOSTNAME)
                json_object_set_new(o, "hostname", m->hostname ? json_string(m->hostname) : json_null());
        if (want & WANT_SSH_KEYS)
                json_object_set_new(o, "ssh_keys", keys);
        else
                json_decref(keys);
        if (r >= 0 && json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
                r = -EIO;
        if (r >= 0)
                fputc('\n', stdout);
        json_decref(o);
        return r;
}

static int run_multi(const Args *a) {
        _cleanup_free_ char *name = NULL;
        _cleanup_(metadata_done) Metadata m = {};
        const Provider *p;
        ProviderContext c = { .base_url = a->base_url, .config_drive = a->config_drive };
        unsigned want = 0;
        int r;

        r = resolve_provider_name(a, &name);
        if (r < 0)
                return r;
        r = lookup_provider(name, &p);
        if (r < 0)
                return r;
        r = fetch_policy_from_env(&c.policy);
        if (r < 0)
                return r;
        if (a->network_units && p->has_network_config && !p->network_units)
                return log_error_errno(SYNTHETIC_ERRNO(EOPNOTSUPP),
                                       "Writing network units for %s is not supported by metadata-agent.", p->name);
        if ((a->netplan || a->nm_profiles) && (p->has_network_config || p->network_units))
                return log_error_errno(SYNTHETIC_ERRNO(EOPNOTSUPP),
                                       "Writing netplan or NetworkManager configuration for %s is not supported by metadata-agent.",
                                       p->name);
        if (a->attributes || a->json)
                want |= WANT_ATTRIBUTES;
        if (a->hostname || a->json)
                want |= WANT_HOSTNAME;
        if (a->ssh_keys_user || a->json)
                want |= WANT_SSH_KEYS;
        if (a->network_units && p->network_units)
                want |= WANT_NETWORK;
        if (!want && !a->check_in && !a->network_units && !a->netplan && !a->nm_profiles)
                log_warning("No action requested (--attributes, --ssh-keys, --hostname, --check-in, ...).");

        /* Everything is fetched before anything is written: a failure leaves no partial output. */
        if (want) {
                r = p->fetch(&c, want, &m);
                if (r < 0)
                        return log_error_errno(r, r == -ENOMEM ? "Fetching metadata from %s failed: out of memory." : "Fetching metadata from %s failed.", p->name);
        }
        if (a->attributes) {
                _cleanup_free_ char *path = path_join_root(a->root, a->attributes);
                if (!path)
                        return log_oom();
                r = output_write_attributes(path, &m, a->style);
                if (r < 0)
                        return r;
        }
        if (a->ssh_keys_user) {
                r = output_write_ssh_keys(a->root, a->ssh_keys_user, &m);
                if (r < 0)
                        return r;
        }
        if (a->hostname) {
                _cleanup_free_ char *path = path_join_root(a->root, a->hostname);
                if (!path)
                        return log_oom();
                r = output_write_hostname(path, &m);
                if (r < 0)
                        return r;
        }
        if (a->network_units) {
                _cleanup_free_ char *path = path_join_root(a->root, a->network_units);
                if (!path)
                        return log_oom();
                /* Providers without network configuration produce no units, as upstream. */
                r = output_write_network_units(path, &m);
                if (r < 0)
                        return r;
        }
        if (a->check_in) {
                if (!p->check_in)
                        log_warning("Boot check-in requested, but %s has none; nothing to do.", p->name);
                else {
                        r = p->check_in(&c);
                        if (r < 0)
                                return log_error_errno(r, r == -ENOMEM ? "Boot check-in with %s failed: out of memory." : "Boot check-in with %s failed.", p->name);
                }
        }
        if (a->json)
                return print_json(p->name, &m, a->style, want);
        return 0;
}

static int run_network_kargs(const Args *a) {
        _cleanup_free_ char *cmdline = NULL, *name = NULL;
        const Provider *p;
        int r;

        if (!a->default_value)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--default-value is required.");
        r = read_cmdline(a, &cmdline);
        if (r < 0)
                return r;
        if (cmdline_has_ip_arg(cmdline)) {
                log_info("The kernel command line already has ip= arguments, nothing to do.");
                return 0;
        }
        r = resolve_provider_name(a, &name);
        if (r < 0)
                return r;
        r = lookup_provider(name, &p);
        if (r < 0)
                return r;
        if (p->network_kargs) {
                _cleanup_free_ char *kargs = NULL;
                ProviderContext c = { .base_url = a->base_url, .config_drive = a->config_drive };
                r = fetch_policy_from_env(&c.policy);
                if (r >= 0)
                        r = p->network_kargs(&c, &kargs);
                if (r < 0)
                        return log_error_errno(r, r == -ENOMEM ? "Getting network kernel arguments from %s failed: out of memory." : "Getting network kernel arguments from %s failed.", p->name);
                if (kargs)
                        return output_write_network_kargs(a->root, kargs);
        }
        /* Upstream only vmware, proxmoxve and kubevirt have network kernel arguments; otherwise the default. */
        return output_write_network_kargs(a->root, a->default_value);
}

/* afterburn's translate_legacy_args(): a first argument starting with '-' means the legacy
 * coreos-metadata syntax, i.e. the "multi" subcommand with single-dash long options. */
static char **translate_legacy(int argc, char **argv, int *ret_argc) {
        char **v;
        int n = 0;

        v = calloc((size_t) argc + 2, sizeof(char *));
        if (!v)
                return NULL;
        v[n++] = strdup(argv[0]);
        v[n++] = strdup("multi");
        for (int i = 1; i < argc; i++) {
                const char *s = argv[i];
                if (s[0] == '-' && s[1] != '-' && s[1] && s[2])
                        asprintf(&v[n], "-%s", s) < 0 ? (void) (v[n] = NULL) : (void) 0;
                else
                        v[n] = strdup(s);
                n++;
        }
        for (int i = 0; i < n; i++)
                if (!v[i]) {
                        for (int j = 0; j < n; j++)
                                free(v[j]);
                        free(v);
                        return NULL;
                }
        *ret_argc = n;
        return v;
}

static void strv_free_argv(char **v, int n) {
        for (int i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

int main(int argc, char **argv) {
        Args a = { .style = _ATTRIBUTE_STYLE_INVALID };
        const char *verb;
        _unused_ const char *listen = NULL;
        const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        char **targv = NULL;
        int targc = 0, c, r;

        log_setup(argv[0]);
        if (argc > 1 && argv[1][0] == '-' && !streq(argv[1], "--help") && !streq(argv[1], "-h") &&
            !streq(argv[1], "--version")) {
                targv = translate_legacy(argc, argv, &targc);
                if (!targv) {
                        log_oom();
                        return 1;
                }
                argc = targc;
                argv = targv;
        }

        verb = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
        optind = verb ? 2 : 1;
        if (verb && streq(verb, "exp")) {
                if (argc < 3 || !streq(argv[2], "rd-network-kargs")) {
                        log_error("Unknown \"exp\" command; only \"exp rd-network-kargs\" exists.");
                        strv_free_argv(targv, targc);
                        return 1;
                }
                verb = "rd-network-kargs";
                optind = 3;
        }

        while ((c = getopt_long(argc, argv, "hV", options, NULL)) >= 0)
                switch (c) {
                case ARG_PROVIDER: a.provider = optarg; break;
                case ARG_CMDLINE: a.cmdline = true; break;
                case ARG_ATTRIBUTES: a.attributes = optarg; break;
                case ARG_SSH_KEYS: a.ssh_keys_user = optarg; break;
                case ARG_HOSTNAME: a.hostname = optarg; break;
                case ARG_NETWORK_UNITS: a.network_units = optarg; break;
                case ARG_NETPLAN: a.netplan = optarg; break;
                case ARG_NM_PROFILES: a.nm_profiles = optarg; break;
                case ARG_CHECK_IN: a.check_in = true; break;
                case ARG_ROOT: a.root = optarg; break;
                case ARG_CMDLINE_FILE: a.cmdline_file = optarg; break;
                case ARG_BASE_URL: a.base_url = optarg; break;
                case ARG_CONFIG_DRIVE: a.config_drive = optarg; break;
                case ARG_DEFAULT_VALUE: a.default_value = optarg; break;
                case ARG_JSON: a.json = true; break;
                case ARG_LISTEN: listen = optarg; break;
                case ARG_ATTRIBUTES_STYLE:
                        a.style = attribute_style_from_string(optarg);
                        if (a.style < 0) {
                                log_error("Invalid --attributes-style=%s (afterburn or flatcar).", optarg);
                                strv_free_argv(targv, targc);
                                return 1;
                        }
                        break;
                case 'h':
                        help(prog);
                        strv_free_argv(targv, targc);
                        return 0;
                case 'V':
                case ARG_VERSION:
                        printf("metadata-agent %s\n", SWITCHYARD_VERSION);
                        strv_free_argv(targv, targc);
                        return 0;
                default:
                        strv_free_argv(targv, targc);
                        return 1;
                }
        if (optind < argc) {
                log_error("Unexpected argument \"%s\".", argv[optind]);
                strv_free_argv(targv, targc);
                return 1;
        }
        if (a.style < 0)
                a.style = streq(prog, "coreos-metadata") ? ATTRIBUTE_STYLE_FLATCAR : ATTRIBUTE_STYLE_AFTERBURN;

        if (fetch_setup_proxy_env() < 0) {
                log_oom();
                strv_free_argv(targv, targc);
                return 1;
        }
        http_global_init();
        if (!verb || streq(verb, "multi"))
                r = run_multi(&a);
        else if (streq(verb, "rd-network-kargs"))
                r = run_network_kargs(&a);
#if HAVE_VARLINK
        else if (streq(verb, "varlink"))
                r = metadata_varlink_run(listen, a.style, a.base_url, a.config_drive, a.cmdline_file);
#endif
        else
                r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown command \"%s\".", verb);
        strv_free_argv(targv, targc);
        return r < 0 ? 1 : 0;
}
