/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdarg.h>

#include "hardening-measures.h"
#include "hardening-parse.h"
#include "log.h"

static const char *const profile_table[_PROFILE_MAX] = {
    [PROFILE_GUIDE] = "guide",
    [PROFILE_STRICT] = "strict",
};

const char *profile_to_string(Profile p)
{
        return p >= 0 && p < _PROFILE_MAX ? profile_table[p] : NULL;
}

Profile profile_from_string(const char *s)
{
        for (int i = 0; s && i < _PROFILE_MAX; i++)
                if (streq(profile_table[i], s))
                        return (Profile)i;
        return _PROFILE_INVALID;
}

/* ---- settings ---- */

#define DEFAULT_USER       "core"
#define DEFAULT_NOLOGIN    "/sbin/nologin"
#define DEFAULT_GRUB_CFG   "/usr/share/oem/grub.cfg"
#define GUIDE_KERNEL_ARGS  "mitigations=auto,nosmt tsx=auto"
#define STRICT_KERNEL_ARGS "mitigations=auto,nosmt nosmt tsx=off"
#define DEFAULT_MODULES    "cramfs freevxfs hfs hfsplus jffs2 udf tipc"

typedef struct Sysctl {
        const char *key, *value;
        bool opt_in;   /* breaks container hosts or is a one-way switch: only when asked for by name */
        bool optional; /* may not exist on every kernel: written with systemd-sysctl's "-" prefix */
} Sysctl;

static const Sysctl sysctls[] = {
    {"kernel.kptr_restrict", "2", .opt_in = false},
    {"kernel.dmesg_restrict", "1", .opt_in = false},
    {"kernel.unprivileged_bpf_disabled", "1", .opt_in = false},
    {"net.core.bpf_jit_harden", "2", .opt_in = false},
    {"kernel.kexec_load_disabled", "1", .opt_in = false},
    {"kernel.perf_event_paranoid", "3", .opt_in = false},
    {"kernel.randomize_va_space", "2", .opt_in = false},
    {"kernel.sysrq", "0", .opt_in = false},
    {"fs.suid_dumpable", "0", .opt_in = false},
    {"fs.protected_symlinks", "1", .opt_in = false},
    {"fs.protected_hardlinks", "1", .opt_in = false},
    {"dev.tty.ldisc_autoload", "0", .opt_in = false},
    {"dev.tty.legacy_tiocsti", "0", .optional = true},
    {"vm.unprivileged_userfaultfd", "0", .opt_in = false},
    {"net.ipv4.conf.all.accept_redirects", "0", .opt_in = false},
    {"net.ipv4.conf.default.accept_redirects", "0", .opt_in = false},
    {"net.ipv4.conf.all.secure_redirects", "0", .opt_in = false},
    {"net.ipv4.conf.default.secure_redirects", "0", .opt_in = false},
    {"net.ipv4.conf.all.send_redirects", "0", .opt_in = false},
    {"net.ipv4.conf.default.send_redirects", "0", .opt_in = false},
    {"net.ipv4.conf.all.accept_source_route", "0", .opt_in = false},
    {"net.ipv4.conf.default.accept_source_route", "0", .opt_in = false},
    {"net.ipv4.conf.all.log_martians", "1", .opt_in = false},
    {"net.ipv4.conf.default.log_martians", "1", .opt_in = false},
    {"net.ipv4.icmp_echo_ignore_broadcasts", "1", .opt_in = false},
    {"net.ipv4.icmp_ignore_bogus_error_responses", "1", .opt_in = false},
    {"net.ipv4.tcp_syncookies", "1", .opt_in = false},
    {"net.ipv6.conf.all.accept_redirects", "0", .opt_in = false},
    {"net.ipv6.conf.default.accept_redirects", "0", .opt_in = false},
    {"net.ipv6.conf.all.accept_source_route", "0", .opt_in = false},
    {"net.ipv6.conf.default.accept_source_route", "0", .opt_in = false},
    /* Opt-in only (spec §2.2 "container-host caveat"). */
    {"kernel.yama.ptrace_scope", "3", .opt_in = true, .optional = true},
    {"kernel.modules_disabled", "1", .opt_in = true},
    {"user.max_user_namespaces", "0", .opt_in = true},
    {"kernel.io_uring_disabled", "2", .opt_in = true, .optional = true},
    {"fs.protected_fifos", "2", .opt_in = true},
    {"fs.protected_regular", "2", .opt_in = true},
    {"net.ipv4.ip_forward", "0", .opt_in = true},
    {"net.ipv6.conf.all.forwarding", "0", .opt_in = true},
    {"net.ipv4.conf.all.rp_filter", "1", .opt_in = true},
    {"net.ipv4.conf.default.rp_filter", "1", .opt_in = true},
    {"net.ipv6.conf.all.accept_ra", "0", .opt_in = true},
    {"net.ipv6.conf.default.accept_ra", "0", .opt_in = true},
};

static const Sysctl *sysctl_find(const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(sysctls); i++)
                if (streq(sysctls[i].key, key))
                        return &sysctls[i];
        return NULL;
}

void settings_done(Settings *s)
{
        s->measures = strv_free(s->measures);
        s->user = mfree(s->user);
        s->nologin_shell = mfree(s->nologin_shell);
        s->sshd_listen = strv_free(s->sshd_listen);
        s->kernel_args = strv_free(s->kernel_args);
        s->grub_cfg = mfree(s->grub_cfg);
        s->modules = strv_free(s->modules);
        s->sysctl_opt_in = strv_free(s->sysctl_opt_in);
        s->sysctl_exclude = strv_free(s->sysctl_exclude);
        s->selinux_type = mfree(s->selinux_type);
}

static bool valid_name(const char *s, size_t max)
{
        if (isempty(s) || strlen(s) > max || !(islower((unsigned char)s[0]) || s[0] == '_'))
                return false;
        for (const char *p = s; *p; p++)
                if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && !strchr("_-", *p))
                        return false;
        return true;
}

static bool valid_abs_path(const char *s)
{
        if (isempty(s) || s[0] != '/' || strlen(s) > 512 || strstr(s, "/../") || endswith(s, "/..") ||
            endswith(s, "/"))
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= ' ' || strchr("\"'\\$`:", *p))
                        return false;
        return true;
}

static bool valid_karg(const char *s)
{
        if (isempty(s) || strlen(s) > 256)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127 || strchr("\"'\\$`;#{}", *p))
                        return false;
        return true;
}

/* ListenStream= values we accept: PORT, IPV4:PORT, [IPV6]:PORT. */
static bool valid_listen(const char *s)
{
        const char *port = strrchr(s, ':');
        uint32_t p;

        if (!port)
                port = s;
        else {
                size_t hl = (size_t)(port - s);
                port++;
                if (hl == 0)
                        return false;
                if (s[0] == '[') {
                        if (hl < 3 || s[hl - 1] != ']')
                                return false;
                        for (size_t i = 1; i < hl - 1; i++)
                                if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
                                        return false;
                } else
                        for (size_t i = 0; i < hl; i++)
                                if (!isdigit((unsigned char)s[i]) && s[i] != '.')
                                        return false;
        }
        return safe_atou32(port, &p) >= 0 && p >= 1 && p <= 65535;
}

static int set_str(char **dst, const char *v)
{
        char *c = strdup(v);
        if (!c)
                return -ENOMEM;
        free(*dst);
        *dst = c;
        return 0;
}

static int set_words(char ***dst, const char *v)
{
        char **l;
        int r = strv_split_words(v, &l);
        if (r < 0)
                return r;
        strv_free(*dst);
        *dst = l;
        return 0;
}

static int split_blanks(const char *p, char ***ret)
{
        _cleanup_(strv_freep) char **l = calloc(1, sizeof(char *));
        int r;

        if (!l)
                return -ENOMEM;
        for (;;) {
                _cleanup_free_ char *w = NULL;
                size_t n;
                p += strspn(p, " \t");
                n = strcspn(p, " \t");
                if (n == 0)
                        break;
                w = strndup(p, n);
                if (!w)
                        return -ENOMEM;
                r = strv_push(&l, w);
                if (r < 0)
                        return r;
                p += n;
        }
        strv_free(*ret);
        *ret = TAKE_PTR(l);
        return 0;
}

static int check_measure_list(const char *key, char *const *l)
{
        for (size_t i = 0; l && l[i]; i++)
                if (!measure_find(l[i]))
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "%s: unknown measure \"%s\".", key,
                                               l[i]);
        return 0;
}

int settings_load(Settings *ret, const ConfFile *conf, const char *profile_override,
                  char *const *names_override)
{
        _cleanup_(settings_done) Settings storage = {};
        Settings *s = &storage;
        _cleanup_(strv_freep) char **explicit = NULL, **enable = NULL, **disable = NULL;
        static const char *const known[] = {
            "PROFILE",       "MEASURES",       "ENABLE",           "DISABLE",  "USER",
            "NOLOGIN_SHELL", "SSHD_LISTEN",    "KERNEL_ARGUMENTS", "GRUB_CFG", "MODULES",
            "SYSCTL_OPT_IN", "SYSCTL_EXCLUDE", "SELINUX_TYPE"};
        const char *v;
        int r;

        for (size_t i = 0; i < conf_size(conf); i++) {
                const char *k = conf_key_at(conf, i);
                bool ok = false;
                for (size_t j = 0; j < ELEMENTSOF(known); j++)
                        ok = ok || streq(k, known[j]);
                if (!ok) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "hardening.conf: unknown key \"%s\".",
                                            k);
                        return r;
                }
        }

        v = profile_override ?: conf_get(conf, "PROFILE");
        s->profile = v ? profile_from_string(v) : PROFILE_GUIDE;
        if (s->profile < 0) {
                r = log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                    "Unknown profile \"%s\" (expected guide or strict).", v);
                return r;
        }

#define WORDS(key, dst, def)                                                                                \
        do {                                                                                                \
                const char *_v = conf_get(conf, key);                                                       \
                r = set_words(dst, _v ?: (def));                                                            \
                if (r < 0)                                                                                  \
                        return r;                                                                           \
        } while (0)

        WORDS("MEASURES", &explicit, "");
        WORDS("ENABLE", &enable, "");
        WORDS("DISABLE", &disable, "");
        r = check_measure_list("MEASURES", explicit);
        if (r >= 0)
                r = check_measure_list("ENABLE", enable);
        if (r >= 0)
                r = check_measure_list("DISABLE", disable);
        if (r >= 0)
                r = check_measure_list("measure", names_override);
        if (r < 0)
                return r;

        s->measures = calloc(1, sizeof(char *));
        if (!s->measures) {
                r = -ENOMEM;
                return r;
        }
        for (size_t i = 0; i < n_measures; i++) {
                const char *n = measures[i].name;
                bool on;
                if (names_override && names_override[0])
                        on = strv_contains(names_override, n);
                else if (explicit[0])
                        on = strv_contains(explicit, n) || strv_contains(enable, n);
                else
                        on = (measures[i].profile <= s->profile || strv_contains(enable, n)) &&
                             !strv_contains(disable, n);
                if (on && (r = strv_push(&s->measures, n)) < 0)
                        return r;
        }

        r = set_str(&s->user, conf_get(conf, "USER") ?: DEFAULT_USER);
        if (r < 0)
                return r;
        if (!valid_name(s->user, 32)) {
                r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "USER=%s is not a valid user name.", s->user);
                return r;
        }
        r = set_str(&s->nologin_shell, conf_get(conf, "NOLOGIN_SHELL") ?: DEFAULT_NOLOGIN);
        if (r < 0)
                return r;
        if (!valid_abs_path(s->nologin_shell)) {
                r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "NOLOGIN_SHELL=%s is not an absolute path.",
                                    s->nologin_shell);
                return r;
        }
        WORDS("SSHD_LISTEN", &s->sshd_listen, "");
        for (size_t i = 0; s->sshd_listen[i]; i++)
                if (!valid_listen(s->sshd_listen[i])) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                            "SSHD_LISTEN: \"%s\" is not PORT, ADDRESS:PORT or [IPV6]:PORT.",
                                            s->sshd_listen[i]);
                        return r;
                }
        /* Commas belong to mitigations=auto,nosmt: kernel arguments are split on blanks only. */
        r = split_blanks(conf_get(conf, "KERNEL_ARGUMENTS")
                             ?: (s->profile == PROFILE_STRICT ? STRICT_KERNEL_ARGS : GUIDE_KERNEL_ARGS),
                         &s->kernel_args);
        if (r < 0)
                return r;
        for (size_t i = 0; s->kernel_args[i]; i++)
                if (!valid_karg(s->kernel_args[i])) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                            "KERNEL_ARGUMENTS: \"%s\" is not a plain kernel argument.",
                                            s->kernel_args[i]);
                        return r;
                }
        if (strv_length(s->kernel_args) == 0 && strv_contains(s->measures, "smt")) {
                r = log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                    "KERNEL_ARGUMENTS is empty but measure smt is selected.");
                return r;
        }
        s->grub_cfg_explicit = conf_get(conf, "GRUB_CFG");
        r = set_str(&s->grub_cfg, conf_get(conf, "GRUB_CFG") ?: DEFAULT_GRUB_CFG);
        if (r < 0)
                return r;
        if (!valid_abs_path(s->grub_cfg)) {
                r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "GRUB_CFG=%s is not an absolute path.",
                                    s->grub_cfg);
                return r;
        }
        WORDS("MODULES", &s->modules, DEFAULT_MODULES);
        for (size_t i = 0; s->modules[i]; i++) {
                if (!valid_name(s->modules[i], 64)) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "MODULES: \"%s\" is not a module name.",
                                            s->modules[i]);
                        return r;
                }
                if (streq(s->modules[i], "squashfs")) {
                        r = log_error_errno(
                            SYNTHETIC_ERRNO(EINVAL),
                            "MODULES: squashfs is needed by systemd-sysext images on Flatcar; "
                            "refusing to disable it.");
                        return r;
                }
        }
        WORDS("SYSCTL_OPT_IN", &s->sysctl_opt_in, "");
        WORDS("SYSCTL_EXCLUDE", &s->sysctl_exclude, "");
        for (size_t i = 0; s->sysctl_opt_in[i]; i++) {
                const Sysctl *x = sysctl_find(s->sysctl_opt_in[i]);
                if (!x || !x->opt_in) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                            "SYSCTL_OPT_IN: \"%s\" is not one of the opt-in settings.",
                                            s->sysctl_opt_in[i]);
                        return r;
                }
        }
        for (size_t i = 0; s->sysctl_exclude[i]; i++)
                if (!sysctl_find(s->sysctl_exclude[i])) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                            "SYSCTL_EXCLUDE: unknown setting \"%s\".", s->sysctl_exclude[i]);
                        return r;
                }
        v = conf_get(conf, "SELINUX_TYPE");
        if (!isempty(v)) {
                if (!valid_name(v, 64)) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "SELINUX_TYPE=%s is not a policy name.",
                                            v);
                        return r;
                }
                r = set_str(&s->selinux_type, v);
                if (r < 0)
                        return r;
        }
#undef WORDS
        *ret = storage;
        storage = (Settings){};
        return 0;
}

/* ---- plans ---- */

void plan_done(Plan *p)
{
        for (size_t i = 0; i < p->n_changes; i++) {
                free(p->changes[i].path);
                node_done(&p->changes[i].want);
                strv_free(p->changes[i].undo);
        }
        p->changes = mfree(p->changes);
        p->n_changes = 0;
        p->conflicts = strv_free(p->conflicts);
        p->not_applicable = mfree(p->not_applicable);
}

_printf_(2, 3) static int plan_conflict(Plan *p, const char *fmt, ...)
{
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return strv_push(&p->conflicts, s);
}

_printf_(2, 3) static int plan_not_applicable(Plan *p, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        free(p->not_applicable);
        r = vasprintf(&p->not_applicable, fmt, ap);
        va_end(ap);
        if (r < 0) {
                p->not_applicable = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* Adds a change; takes over want's data. */
static int plan_add(Plan *p, const char *path, Node *want, bool edit, bool replace_symlink)
{
        Change *nc = reallocarray(p->changes, p->n_changes + 1, sizeof *nc);
        char *copy = strdup(path);

        if (nc)
                p->changes = nc;
        if (!nc || !copy) {
                free(copy);
                node_done(want);
                return -ENOMEM;
        }
        p->changes[p->n_changes++] = (Change){
            .path = copy,
            .want = *want,
            .edit = edit,
            .replace_symlink = replace_symlink,
        };
        *want = (Node){};
        return 0;
}

static int plan_add_file(Plan *p, const char *path, const char *contents, mode_t mode)
{
        Node n = {};
        int r = node_set_file(&n, contents, strlen(contents), mode);
        if (r < 0)
                return r;
        return plan_add(p, path, &n, false, false);
}

/* Removes something an earlier apply wrote that the current settings no longer want. */
static int plan_add_undo(Context *c, Plan *p, const char *path)
{
        Node n = {.type = NODE_ABSENT};
        if (!record_find(c->record, path))
                return 0;
        return plan_add(p, path, &n, false, false);
}

static const char *const unit_dirs[] = {"/etc/systemd/system", "/run/systemd/system",
                                        "/usr/lib/systemd/system", "/lib/systemd/system"};

static int unit_exists(Context *c, const char *unit)
{
        for (size_t i = 0; i < ELEMENTSOF(unit_dirs); i++) {
                _cleanup_free_ char *path = NULL;
                Node n = {};
                int r;

                if (asprintf(&path, "%s/%s", unit_dirs[i], unit) < 0)
                        return -ENOMEM;
                r = root_read_node(c->rootfd, path, &n);
                if (r < 0)
                        continue;
                node_done(&n);
                if (n.type != NODE_ABSENT)
                        return 1;
        }
        return 0;
}

/* Drop-ins are applied in the lexical order of their names across all directories; a name in an earlier
 * directory hides the same name in later ones. Any drop-in sorting after ours that sets section.key to
 * something other than allowed overrides us: report it. */
static int dropin_conflicts(Context *c, Plan *p, const char *const *dirs, size_t n_dirs, const char *ours,
                            const char *section, const char *key, const char *allowed)
{
        _cleanup_(strv_freep) char **seen = calloc(1, sizeof(char *));
        int r;

        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < n_dirs; i++) {
                _cleanup_(strv_freep) char **names = NULL;

                r = root_list_dir(c->rootfd, dirs[i], &names);
                if (r < 0)
                        return r;
                for (size_t j = 0; names[j]; j++) {
                        _cleanup_free_ char *path = NULL, *data = NULL, *value = NULL;
                        size_t size;

                        if (!endswith(names[j], ".conf") || strcmp(names[j], ours) <= 0 ||
                            strv_contains(seen, names[j]))
                                continue;
                        r = strv_push(&seen, names[j]);
                        if (r < 0)
                                return r;
                        if (asprintf(&path, "%s/%s", dirs[i], names[j]) < 0)
                                return -ENOMEM;
                        r = root_read_file_in_root(c->rootfd, path, &data, &size);
                        if (r < 0)
                                continue; /* masked (/dev/null), dangling, or unreadable: no settings */
                        r = unit_file_get(data, size, section, key, &value);
                        if (r < 0)
                                return r;
                        if (r > 0 && !(allowed && streq(value, allowed))) {
                                r = plan_conflict(p, "%s sorts after %s and sets %s=%s, overriding it", path,
                                                  ours, key, value);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

static int unit_dropin_conflicts(Context *c, Plan *p, const char *unit, const char *ours,
                                 const char *section, const char *key, const char *allowed)
{
        char *dirs[ELEMENTSOF(unit_dirs)] = {};
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(unit_dirs) && r >= 0; i++)
                if (asprintf(&dirs[i], "%s/%s.d", unit_dirs[i], unit) < 0)
                        r = -ENOMEM;
        if (r >= 0)
                r = dropin_conflicts(c, p, (const char *const *)dirs, ELEMENTSOF(dirs), ours, section, key,
                                     allowed);
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                free(dirs[i]);
        return r;
}

/* Reads a host file that must not be reached through a symlink; ABSENT if missing. */
static int read_host_file(Context *c, Plan *p, const char *path, Node *ret)
{
        int r = root_read_node(c->rootfd, path, ret);
        if (r == -ELOOP || r == -ENOTDIR) {
                _cleanup_free_ char *comp = NULL, *target = NULL;
                if (root_find_symlink(c->rootfd, path, &comp, &target) > 0)
                        r = plan_conflict(p, "%s is a symlink to %s; not following it to reach %s", comp,
                                          target, path);
                else
                        r = plan_conflict(p, "a component of %s is not a directory", path);
                *ret = (Node){.type = NODE_ABSENT};
                return r < 0 ? r : 0;
        }
        return r;
}

/* sshd.socket: masked (the guide), or limited to SSHD_LISTEN through a drop-in (the sshd sub-guide). */
#define SSHD_MASK_PATH   "/etc/systemd/system/sshd.socket"
#define SSHD_DROPIN_NAME "10-hardening-listen.conf"
#define SSHD_DROPIN_PATH "/etc/systemd/system/sshd.socket.d/" SSHD_DROPIN_NAME

static int sshd_listen_contents(const Settings *s, char **ret)
{
        _cleanup_free_ char *t = strdup("[Socket]\nListenStream=\n");
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; s->sshd_listen[i]; i++) {
                char *n;
                if (asprintf(&n, "%sListenStream=%s\n", t, s->sshd_listen[i]) < 0)
                        return -ENOMEM;
                free(t);
                t = n;
        }
        {
                char *n;
                if (asprintf(&n, "%sFreeBind=true\n", t) < 0)
                        return -ENOMEM;
                free(t);
                t = n;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

static int plan_sshd_socket(Context *c, Plan *p)
{
        int r = unit_exists(c, "sshd.socket");
        if (r <= 0)
                return r < 0 ? r : plan_not_applicable(p, "no sshd.socket unit in this root");
        if (strv_length(c->settings->sshd_listen) == 0) {
                Node n = {};
                r = node_set_symlink(&n, "/dev/null");
                if (r >= 0)
                        r = plan_add(p, SSHD_MASK_PATH, &n, false, false);
                if (r >= 0)
                        r = plan_add_undo(c, p, SSHD_DROPIN_PATH);
                return r;
        }
        _cleanup_free_ char *contents = NULL;
        r = sshd_listen_contents(c->settings, &contents);
        if (r >= 0)
                r = plan_add_file(p, SSHD_DROPIN_PATH, contents, 0644);
        if (r >= 0)
                r = plan_add_undo(c, p, SSHD_MASK_PATH);
        if (r >= 0)
                r = unit_dropin_conflicts(c, p, "sshd.socket", SSHD_DROPIN_NAME, "Socket", "ListenStream",
                                          NULL);
        return r;
}

static int butane_add_file(ButaneDoc *d, const char *path, const char *contents, mode_t mode, bool overwrite)
{
        ButaneFile *nf = reallocarray(d->files, d->n_files + 1, sizeof *nf);
        if (!nf)
                return -ENOMEM;
        d->files = nf;
        nf[d->n_files] = (ButaneFile){
            .path = strdup(path), .contents = strdup(contents), .mode = mode, .overwrite = overwrite};
        d->n_files++;
        return nf[d->n_files - 1].path && nf[d->n_files - 1].contents ? 0 : -ENOMEM;
}

static int butane_add_unit(ButaneDoc *d, const char *name, bool mask, const char *dropin_name,
                           const char *dropin_contents)
{
        ButaneUnit *nu = reallocarray(d->units, d->n_units + 1, sizeof *nu);
        ButaneUnit *u;
        if (!nu)
                return -ENOMEM;
        d->units = nu;
        u = &nu[d->n_units++];
        *u = (ButaneUnit){.name = strdup(name), .mask = mask};
        if (dropin_name) {
                u->dropin_name = strdup(dropin_name);
                u->dropin_contents = strdup(dropin_contents);
                if (!u->dropin_name || !u->dropin_contents)
                        return -ENOMEM;
        }
        return u->name ? 0 : -ENOMEM;
}

static int butane_sshd_socket(const Settings *s, ButaneDoc *d)
{
        _cleanup_free_ char *contents = NULL;
        int r;

        if (strv_length(s->sshd_listen) == 0)
                return butane_add_unit(d, "sshd.socket", true, NULL, NULL);
        r = sshd_listen_contents(s, &contents);
        if (r < 0)
                return r;
        return butane_add_unit(d, "sshd.socket", false, SSHD_DROPIN_NAME, contents);
}

/* core's sudo: the guide's /etc/sudoers.d/core-passwd, which wins over baselayout's NOPASSWD line
 * because sudo applies the last matching entry. */
static int sudo_dropin(const Settings *s, char **ret_path, char **ret_contents)
{
        if (asprintf(ret_path, "/etc/sudoers.d/%s-passwd", s->user) < 0)
                return -ENOMEM;
        if (asprintf(ret_contents, "%s\tALL=(ALL) \tALL\n", s->user) < 0) {
                *ret_path = mfree(*ret_path);
                return -ENOMEM;
        }
        return 0;
}

static int user_exists(Context *c, Plan *p, const char *user, Node *ret_passwd)
{
        _cleanup_free_ char *shell = NULL;
        int r;

        r = read_host_file(c, p, "/etc/passwd", ret_passwd);
        if (r < 0)
                return r;
        if (ret_passwd->type == NODE_SYMLINK) {
                r = plan_conflict(p, "/etc/passwd is a symlink to %s; not following it", ret_passwd->data);
                return r < 0 ? r : 0;
        }
        if (ret_passwd->type != NODE_FILE)
                return 0;
        r = passwd_get_shell(ret_passwd->data, ret_passwd->size, user, &shell);
        if (r == -EBADMSG) {
                r = plan_conflict(p, "the line of user %s in /etc/passwd is malformed", user);
                return r < 0 ? r : 0;
        }
        return r;
}

static int plan_core_sudo(Context *c, Plan *p)
{
        _cleanup_free_ char *path = NULL, *contents = NULL, *ours = NULL, *last_source = NULL;
        SudoersMatch last = SUDOERS_MATCH_NONE;
        _cleanup_(strv_freep) char **names = NULL;
        Node passwd = {}, group = {}, sudoers = {};
        int r;

        r = user_exists(c, p, c->settings->user, &passwd);
        node_done(&passwd);
        if (r >= 0 && strv_length(p->conflicts) > 0)
                return 0;
        if (r <= 0)
                return r < 0 ? r : plan_not_applicable(p, "no user %s in /etc/passwd", c->settings->user);
        r = read_host_file(c, p, "/etc/sudoers", &sudoers);
        if (r < 0)
                return r;
        if (sudoers.type == NODE_ABSENT && root_is_dir(c->rootfd, "/etc/sudoers.d") <= 0) {
                node_done(&sudoers);
                return plan_not_applicable(p, "sudo is not configured (no /etc/sudoers)");
        }
        r = sudo_dropin(c->settings, &path, &contents);
        if (r < 0) {
                node_done(&sudoers);
                return r;
        }
        r = plan_add_file(p, path, contents, 0440);
        if (r >= 0)
                r = read_host_file(c, p, "/etc/group", &group);
        if (r >= 0)
                r = root_list_dir(c->rootfd, "/etc/sudoers.d", &names);
        ours = strdup(strrchr(path, '/') + 1);
        if (r >= 0 && !ours)
                r = -ENOMEM;
        /* What sudo reads after our drop-in: later drop-ins, then the rest of /etc/sudoers. The last
         * entry matching the user decides. */
        for (size_t i = 0; r >= 0 && names[i]; i++) {
                _cleanup_free_ char *dp = NULL;
                Node n = {};
                SudoersMatch m;

                if (strcmp(names[i], ours) <= 0 || !sudoers_dropin_name_is_read(names[i]))
                        continue;
                if (asprintf(&dp, "/etc/sudoers.d/%s", names[i]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (root_read_node(c->rootfd, dp, &n) < 0 || n.type != NODE_FILE) {
                        node_done(&n);
                        continue;
                }
                m = sudoers_last_match(n.data, n.size, c->settings->user, group.data, group.size, false);
                node_done(&n);
                if (m != SUDOERS_MATCH_NONE) {
                        last = m;
                        free(last_source);
                        last_source = TAKE_PTR(dp);
                }
        }
        if (r >= 0 && sudoers.type == NODE_FILE) {
                SudoersMatch m = sudoers_last_match(sudoers.data, sudoers.size, c->settings->user,
                                                    group.data, group.size, true);
                if (m != SUDOERS_MATCH_NONE) {
                        last = m;
                        free(last_source);
                        last_source = strdup("/etc/sudoers (after its #includedir)");
                        if (!last_source)
                                r = -ENOMEM;
                }
        }
        if (r >= 0 && last == SUDOERS_MATCH_NOPASSWD)
                r = plan_conflict(p, "%s comes after %s and lets %s use sudo without a password",
                                  last_source, ours, c->settings->user);
        node_done(&group);
        node_done(&sudoers);
        return r;
}

static int butane_core_sudo(const Settings *s, ButaneDoc *d)
{
        _cleanup_free_ char *path = NULL, *contents = NULL;
        int r = sudo_dropin(s, &path, &contents);
        if (r < 0)
                return r;
        return butane_add_file(d, path, contents, 0440, false);
}

/* core's login shell (the guide's passwd.users[].shell). */
static int plan_core_nologin(Context *c, Plan *p)
{
        Node passwd = {}, want = {};
        _cleanup_free_ char *edited = NULL;
        int r;

        r = user_exists(c, p, c->settings->user, &passwd);
        if (r >= 0 && strv_length(p->conflicts) > 0) {
                node_done(&passwd);
                return 0;
        }
        if (r <= 0) {
                node_done(&passwd);
                return r < 0 ? r : plan_not_applicable(p, "no user %s in /etc/passwd", c->settings->user);
        }
        _cleanup_free_ char *old_shell = NULL;
        r = passwd_get_shell(passwd.data, passwd.size, c->settings->user, &old_shell);
        if (r >= 0)
                r = passwd_set_shell(passwd.data, passwd.size, c->settings->user, c->settings->nologin_shell,
                                     &edited);
        if (r >= 0) {
                want = passwd;
                want.data = NULL;
                r = node_set_file(&want, edited, strlen(edited), passwd.mode);
        }
        if (r >= 0)
                r = plan_add(p, "/etc/passwd", &want, true, false);
        if (r >= 0 && !streq(old_shell, c->settings->nologin_shell)) {
                char ***u = &p->changes[p->n_changes - 1].undo;
                if (strv_push(u, "passwd-shell") < 0 || strv_push(u, c->settings->user) < 0 ||
                    strv_push(u, old_shell) < 0 || strv_push(u, c->settings->nologin_shell) < 0)
                        r = -ENOMEM;
        }
        node_done(&passwd);
        return r;
}

static int butane_core_nologin(const Settings *s, ButaneDoc *d)
{
        d->user = strdup(s->user);
        d->user_shell = strdup(s->nologin_shell);
        return d->user && d->user_shell ? 0 : -ENOMEM;
}

/* docker.socket limited to root (the guide's 10-restrict.conf). */
#define DOCKER_DROPIN_NAME "10-restrict.conf"
#define DOCKER_DROPIN_PATH "/etc/systemd/system/docker.socket.d/" DOCKER_DROPIN_NAME
#define DOCKER_DROPIN      "[Socket]\nSocketGroup=root\n"

static int plan_docker_socket(Context *c, Plan *p)
{
        int r = unit_exists(c, "docker.socket");
        if (r <= 0)
                return r < 0 ? r : plan_not_applicable(p, "no docker.socket unit in this root");
        r = plan_add_file(p, DOCKER_DROPIN_PATH, DOCKER_DROPIN, 0644);
        if (r >= 0)
                r = unit_dropin_conflicts(c, p, "docker.socket", DOCKER_DROPIN_NAME, "Socket", "SocketGroup",
                                          "root");
        return r;
}

static int butane_docker_socket(const Settings *s, ButaneDoc *d)
{
        return butane_add_unit(d, "docker.socket", false, DOCKER_DROPIN_NAME, DOCKER_DROPIN);
}

/* Kernel modules: blacklist stops alias autoloading, install ... /bin/false stops explicit loads. */
#define USB_STORAGE_PATH "/etc/modprobe.d/90-hardening-usb-storage.conf"
#define MODULES_PATH     "/etc/modprobe.d/90-hardening-modules.conf"

static int modules_contents(char *const *modules, char **ret)
{
        _cleanup_free_ char *t = strdup("");
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; modules && modules[i]; i++) {
                char *n;
                if (asprintf(&n, "%sblacklist %s\ninstall %s /bin/false\n", t, modules[i], modules[i]) < 0)
                        return -ENOMEM;
                free(t);
                t = n;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

static int plan_usb_storage(Context *c, Plan *p)
{
        _cleanup_free_ char *contents = NULL;
        char *l[] = {(char *)"usb-storage", NULL};
        int r = modules_contents(l, &contents);
        return r < 0 ? r : plan_add_file(p, USB_STORAGE_PATH, contents, 0644);
}

static int butane_usb_storage(const Settings *s, ButaneDoc *d)
{
        _cleanup_free_ char *contents = NULL;
        char *l[] = {(char *)"usb-storage", NULL};
        int r = modules_contents(l, &contents);
        return r < 0 ? r : butane_add_file(d, USB_STORAGE_PATH, contents, 0644, false);
}

static int plan_kernel_modules(Context *c, Plan *p)
{
        _cleanup_free_ char *contents = NULL;
        int r;

        if (strv_length(c->settings->modules) == 0)
                return plan_not_applicable(p, "MODULES is empty");
        r = modules_contents(c->settings->modules, &contents);
        return r < 0 ? r : plan_add_file(p, MODULES_PATH, contents, 0644);
}

static int butane_kernel_modules(const Settings *s, ButaneDoc *d)
{
        _cleanup_free_ char *contents = NULL;
        int r;

        if (strv_length(s->modules) == 0)
                return 0;
        r = modules_contents(s->modules, &contents);
        return r < 0 ? r : butane_add_file(d, MODULES_PATH, contents, 0644, false);
}

/* SMT: kernel arguments appended to the OEM grub.cfg the way Flatcar's ignition-kargs-helper and the
 * SMT sub-guide do it: set linux_append="$linux_append ...". */
static int plan_smt(Context *c, Plan *p)
{
        _cleanup_(strv_freep) char **args = NULL, **missing = NULL;
        const char *grub_cfg = c->settings->grub_cfg;
        _cleanup_free_ char *dir = NULL, *line = NULL, *text = NULL;
        Node cur = {}, want = {};
        int r;

        /* Newer Flatcar mounts the OEM partition at /oem instead of /usr/share/oem. */
        if (!c->settings->grub_cfg_explicit && root_is_dir(c->rootfd, "/usr/share/oem") <= 0 &&
            root_is_dir(c->rootfd, "/oem") > 0)
                grub_cfg = "/oem/grub.cfg";
        dir = strdup(grub_cfg);
        if (!dir)
                return -ENOMEM;
        *strrchr(dir, '/') = '\0';
        r = read_host_file(c, p, grub_cfg, &cur);
        if (r < 0)
                return r;
        if (cur.type == NODE_ABSENT && strv_length(p->conflicts) == 0 && root_is_dir(c->rootfd, dir) <= 0)
                return plan_not_applicable(p, "no OEM partition at %s or /oem (PXE or not Flatcar)",
                                           isempty(dir) ? "/" : dir);
        if (cur.type != NODE_FILE && cur.type != NODE_ABSENT) {
                r = plan_conflict(p, "%s is a %s, not a file", grub_cfg, node_type_to_string(cur.type));
                node_done(&cur);
                return r;
        }
        r = grub_linux_append_args(cur.data ?: "", cur.size, &args);
        if (r >= 0)
                r = kargs_missing(args, c->settings->kernel_args, &missing);
        if (r < 0) {
                node_done(&cur);
                return r;
        }
        want = cur;
        cur.data = NULL;
        if (cur.type == NODE_ABSENT) {
                want = (Node){.type = NODE_FILE, .mode = 0644};
                r = node_set_file(&want, "", 0, 0644);
                if (r < 0)
                        return r;
        }
        if (strv_length(missing) > 0) {
                text = strdup("set linux_append=\"$linux_append");
                for (size_t i = 0; text && missing[i]; i++) {
                        char *n;
                        if (asprintf(&n, "%s %s", text, missing[i]) < 0)
                                n = NULL;
                        free(text);
                        text = n;
                }
                if (!text ||
                    asprintf(&line, "%s%s\"\n",
                             want.size > 0 && want.data[want.size - 1] != '\n' ? "\n" : "", text) < 0) {
                        node_done(&want);
                        return -ENOMEM;
                }
                char *nd = realloc(want.data, want.size + strlen(line) + 1);
                if (!nd) {
                        node_done(&want);
                        return -ENOMEM;
                }
                memcpy(nd + want.size, line, strlen(line) + 1);
                want.data = nd;
                want.size += strlen(line);
        }
        r = plan_add(p, grub_cfg, &want, true, false);
        if (r >= 0 && text) {
                char ***u = &p->changes[p->n_changes - 1].undo;
                _cleanup_free_ char *full = NULL;
                if (asprintf(&full, "%s\"", text) < 0 || strv_push(u, "remove-line") < 0 ||
                    strv_push(u, full) < 0)
                        r = -ENOMEM;
        }
        return r;
}

static int butane_smt(const Settings *s, ButaneDoc *d)
{
        for (size_t i = 0; s->kernel_args[i]; i++) {
                int r = strv_push(&d->kernel_args, s->kernel_args[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* SELinux enforcing: /etc/selinux/config becomes a real file (it is a symlink into /usr on Flatcar). */
#define SELINUX_CONFIG       "/etc/selinux/config"
#define SELINUX_DEFAULT_TYPE "mcs"

static int plan_selinux(Context *c, Plan *p)
{
        _cleanup_free_ char *data = NULL, *edited = NULL, *type = NULL;
        const char *base = "";
        size_t size = 0;
        Node cur = {}, want = {.type = NODE_FILE, .mode = 0644};
        int r;

        if (root_is_dir(c->rootfd, "/etc/selinux") <= 0)
                return plan_not_applicable(p, "no /etc/selinux directory (SELinux not installed)");
        r = read_host_file(c, p, SELINUX_CONFIG, &cur);
        if (r < 0)
                return r;
        if (cur.type == NODE_SYMLINK) {
                _cleanup_free_ char *resolved = NULL;
                /* Flatcar's points into /usr; anything else is not ours to copy. */
                r = symlink_resolve_lexically(SELINUX_CONFIG, cur.data, &resolved);
                if (r == -EXDEV || (r >= 0 && !startswith(resolved, "/usr/")))
                        r = plan_conflict(p,
                                          "%s is a symlink to %s, which points outside %s; not following it",
                                          SELINUX_CONFIG, cur.data, r == -EXDEV ? "the root" : "/usr");
                else if (r >= 0) {
                        r = root_read_file_in_root(c->rootfd, SELINUX_CONFIG, &data, &size);
                        if (r < 0)
                                r = plan_conflict(p, "%s is a symlink to %s, which cannot be read: %s",
                                                  SELINUX_CONFIG, cur.data, strerror(-r));
                        else
                                base = data;
                }
        } else if (cur.type == NODE_FILE) {
                base = cur.data;
                size = cur.size;
                want.mode = cur.mode;
                want.uid = cur.uid;
                want.gid = cur.gid;
        } else if (cur.type != NODE_ABSENT)
                r = plan_conflict(p, "%s is a %s, not a file", SELINUX_CONFIG,
                                  node_type_to_string(cur.type));
        if (r < 0 || strv_length(p->conflicts) > 0) {
                node_done(&cur);
                return r < 0 ? r : 0;
        }
        r = selinux_config_get(base, size, "SELINUXTYPE", &type);
        if (r >= 0)
                r = selinux_config_set(base, size, "enforcing",
                                       c->settings->selinux_type ?: (type ? NULL : SELINUX_DEFAULT_TYPE),
                                       &edited);
        if (r >= 0)
                r = node_set_file(&want, edited, strlen(edited), want.mode);
        if (r >= 0)
                r = plan_add(p, SELINUX_CONFIG, &want, true, cur.type == NODE_SYMLINK);
        node_done(&cur);
        return r;
}

static int butane_selinux(const Settings *s, ButaneDoc *d)
{
        _cleanup_free_ char *contents = NULL;
        if (asprintf(&contents, "SELINUX=enforcing\nSELINUXTYPE=%s\n",
                     s->selinux_type ?: SELINUX_DEFAULT_TYPE) < 0)
                return -ENOMEM;
        return butane_add_file(d, SELINUX_CONFIG, contents, 0644, true);
}

/* sysctl settings of spec §2.2; those that break container hosts only when named in SYSCTL_OPT_IN. */
#define SYSCTL_PATH "/etc/sysctl.d/90-hardening.conf"

static int sysctl_contents(const Settings *s, char **ret)
{
        _cleanup_free_ char *t = strdup("# Written by switchyard hardening (measure sysctl).\n");
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(sysctls); i++) {
                const Sysctl *x = &sysctls[i];
                char *n;
                if (x->opt_in ? !strv_contains(s->sysctl_opt_in, x->key)
                              : strv_contains(s->sysctl_exclude, x->key))
                        continue;
                if (asprintf(&n, "%s%s%s = %s\n", t, x->optional ? "-" : "", x->key, x->value) < 0)
                        return -ENOMEM;
                free(t);
                t = n;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

/* systemd-sysctl applies sysctl.d files in the lexical order of their names across /etc, /run and
 * /usr/lib (an earlier directory hides the same name); a later file setting one of our keys to another
 * value wins over us. */
static int sysctl_conflicts(Context *c, Plan *p, const char *contents)
{
        static const char *const dirs[] = {"/etc/sysctl.d", "/run/sysctl.d", "/usr/lib/sysctl.d",
                                           "/lib/sysctl.d"};
        _cleanup_(strv_freep) char **seen = calloc(1, sizeof(char *));
        const char *ours = strrchr(SYSCTL_PATH, '/') + 1;
        int r;

        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_(strv_freep) char **names = NULL;
                r = root_list_dir(c->rootfd, dirs[i], &names);
                if (r < 0)
                        return r;
                for (size_t j = 0; names[j]; j++) {
                        _cleanup_free_ char *path = NULL, *data = NULL;
                        size_t size;

                        if (!endswith(names[j], ".conf") || strcmp(names[j], ours) <= 0 ||
                            strv_contains(seen, names[j]))
                                continue;
                        r = strv_push(&seen, names[j]);
                        if (r < 0)
                                return r;
                        if (asprintf(&path, "%s/%s", dirs[i], names[j]) < 0)
                                return -ENOMEM;
                        if (root_read_file_in_root(c->rootfd, path, &data, &size) < 0)
                                continue;
                        for (size_t k = 0; k < ELEMENTSOF(sysctls); k++) {
                                _cleanup_free_ char *mine = NULL, *theirs = NULL;
                                if (sysctl_file_get(contents, strlen(contents), sysctls[k].key, &mine) <= 0)
                                        continue;
                                r = sysctl_file_get(data, size, sysctls[k].key, &theirs);
                                if (r < 0)
                                        return r;
                                if (r > 0 && !streq(mine, theirs)) {
                                        r = plan_conflict(
                                            p, "%s sorts after %s and sets %s = %s, overriding it", path,
                                            ours, sysctls[k].key, theirs);
                                        if (r < 0)
                                                return r;
                                }
                        }
                }
        }
        return 0;
}

static int plan_sysctl(Context *c, Plan *p)
{
        _cleanup_free_ char *contents = NULL;
        int r = sysctl_contents(c->settings, &contents);
        if (r >= 0)
                r = plan_add_file(p, SYSCTL_PATH, contents, 0644);
        if (r >= 0)
                r = sysctl_conflicts(c, p, contents);
        return r;
}

static int butane_sysctl(const Settings *s, ButaneDoc *d)
{
        _cleanup_free_ char *contents = NULL;
        int r = sysctl_contents(s, &contents);
        return r < 0 ? r : butane_add_file(d, SYSCTL_PATH, contents, 0644, false);
}

/* Core dumps: neither stored nor processed (CIS coredump_disable_storage/backtraces). */
#define COREDUMP_NAME     "90-hardening.conf"
#define COREDUMP_PATH     "/etc/systemd/coredump.conf.d/" COREDUMP_NAME
#define COREDUMP_CONTENTS "[Coredump]\nStorage=none\nProcessSizeMax=0\n"

static int plan_coredump(Context *c, Plan *p)
{
        static const char *const dirs[] = {"/etc/systemd/coredump.conf.d", "/run/systemd/coredump.conf.d",
                                           "/usr/lib/systemd/coredump.conf.d"};
        int r = plan_add_file(p, COREDUMP_PATH, COREDUMP_CONTENTS, 0644);
        if (r >= 0)
                r = dropin_conflicts(c, p, dirs, ELEMENTSOF(dirs), COREDUMP_NAME, "Coredump", "Storage",
                                     "none");
        if (r >= 0)
                r = dropin_conflicts(c, p, dirs, ELEMENTSOF(dirs), COREDUMP_NAME, "Coredump",
                                     "ProcessSizeMax", "0");
        return r;
}

static int butane_coredump(const Settings *s, ButaneDoc *d)
{
        return butane_add_file(d, COREDUMP_PATH, COREDUMP_CONTENTS, 0644, false);
}

/* sshd configuration (sshd sub-guide and CIS 5.2); sorts before Flatcar's 50-flatcar-sshd.conf. */
#define SSHD_CONFIG_PATH "/etc/ssh/sshd_config.d/10-hardening.conf"
#define SSHD_CONFIG_CONTENTS                                                                                \
        "PermitRootLogin no\n"                                                                              \
        "PasswordAuthentication no\n"                                                                       \
        "KbdInteractiveAuthentication no\n"                                                                 \
        "PermitEmptyPasswords no\n"                                                                         \
        "HostbasedAuthentication no\n"                                                                      \
        "IgnoreRhosts yes\n"                                                                                \
        "PermitUserEnvironment no\n"                                                                        \
        "X11Forwarding no\n"                                                                                \
        "MaxAuthTries 4\n"                                                                                  \
        "LoginGraceTime 60\n"                                                                               \
        "MaxStartups 10:30:60\n"                                                                            \
        "MaxSessions 10\n"

static int plan_sshd_config(Context *c, Plan *p)
{
        if (root_is_dir(c->rootfd, "/etc/ssh") <= 0)
                return plan_not_applicable(p, "no /etc/ssh directory (OpenSSH not installed)");
        return plan_add_file(p, SSHD_CONFIG_PATH, SSHD_CONFIG_CONTENTS, 0600);
}

static int butane_sshd_config(const Settings *s, ButaneDoc *d)
{
        return butane_add_file(d, SSHD_CONFIG_PATH, SSHD_CONFIG_CONTENTS, 0600, true);
}

const Measure measures[] = {
    {"sshd-socket", "sshd.socket masked, or limited to SSHD_LISTEN", PROFILE_GUIDE, plan_sshd_socket,
     butane_sshd_socket},
    {"core-sudo", "sudo asks the core user for a password", PROFILE_GUIDE, plan_core_sudo, butane_core_sudo},
    {"core-nologin", "the core user's shell is nologin", PROFILE_GUIDE, plan_core_nologin,
     butane_core_nologin},
    {"docker-socket", "the Docker socket belongs to group root", PROFILE_GUIDE, plan_docker_socket,
     butane_docker_socket},
    {"usb-storage", "usb-storage cannot be loaded", PROFILE_GUIDE, plan_usb_storage, butane_usb_storage},
    {"smt", "SMT off on vulnerable CPUs through kernel arguments", PROFILE_GUIDE, plan_smt, butane_smt},
    {"selinux", "SELinux enforcing", PROFILE_GUIDE, plan_selinux, butane_selinux},
    {"kernel-modules", "unneeded file system and protocol modules cannot be loaded", PROFILE_STRICT,
     plan_kernel_modules, butane_kernel_modules},
    {"sysctl", "kernel and network sysctl hardening", PROFILE_STRICT, plan_sysctl, butane_sysctl},
    {"coredump", "core dumps are neither stored nor processed", PROFILE_STRICT, plan_coredump,
     butane_coredump},
    {"sshd-config", "sshd refuses root, passwords and forwarding", PROFILE_STRICT, plan_sshd_config,
     butane_sshd_config},
};
const size_t n_measures = ELEMENTSOF(measures);

const Measure *measure_find(const char *name)
{
        for (size_t i = 0; i < n_measures; i++)
                if (streq(measures[i].name, name))
                        return &measures[i];
        return NULL;
}
