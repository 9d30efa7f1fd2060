/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/utsname.h>
#include <systemd/sd-id128.h>

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "omaha-client-config.h"

static const char *const update_conf_chain[] = {
        "/etc/flatcar/update.conf",
        "/usr/share/flatcar/update.conf",
        "/usr/share/flatcar/release",
        NULL,
};

static const char *const oem_release_chain[] = {
        "/etc/oem-release",
        "/usr/share/oem/oem-release",
        NULL,
};

OmahaConfig *omaha_config_free(OmahaConfig *c) {
        if (!c)
                return NULL;
        free(c->root);
        free(c->server);
        free(c->group);
        free(c->machine_alias);
        free(c->download_user);
        free(c->download_password);
        free(c->version);
        free(c->board);
        free(c->appid);
        free(c->machine_id);
        free(c->boot_id);
        free(c->oem_id);
        free(c->oem_version);
        free(c->arch);
        free(c->ca_file);
        free(c->state_dir);
        free(c->runtime_dir);
        free(c->slots_address);
        free(c->payload_writer_address);
        free(c->verity_address);
        return mfree(c);
}

static int chain_get(const char *root, const char *const *chain, const char *key, const char *def, char **ret) {
        char *v = NULL;
        int r;

        r = conf_chain_get(root, chain, key, &v);
        if (r < 0)
                return log_error_errno(r, "Failed to look up %s in the update.conf chain: %m", key);
        if (!v && def) {
                v = strdup(def);
                if (!v)
                        return log_oom();
        }
        *ret = v;
        return 0;
}

int omaha_read_id128(const char *root, const char *path, bool format_uuid, char **ret) {
        _cleanup_free_ char *full = path_join_root(root, path), *line = NULL;
        sd_id128_t id;
        char buf[SD_ID128_UUID_STRING_MAX];
        int r;

        if (!full)
                return -ENOMEM;
        r = read_one_line_file(full, &line);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", full);
        r = sd_id128_from_string(line, &id);
        if (r < 0)
                return log_error_errno(r, "%s does not hold a 128-bit id: %m", full);
        if (format_uuid) {
                if (asprintf(ret, "{%s}", sd_id128_to_uuid_string(id, buf)) < 0)
                        return -ENOMEM;
        } else {
                *ret = strdup(sd_id128_to_string(id, buf));
                if (!*ret)
                        return -ENOMEM;
        }
        return 0;
}

static int read_machine_id(const char *root, char **ret) {
        char buf[SD_ID128_STRING_MAX];
        sd_id128_t id;
        int r;

        if (!isempty(root) && !streq(root, "/"))
                return omaha_read_id128(root, "/etc/machine-id", false, ret);
        r = sd_id128_get_machine(&id);
        if (r < 0)
                return log_error_errno(r, "Failed to read the machine id: %m");
        *ret = strdup(sd_id128_to_string(id, buf));
        return *ret ? 0 : -ENOMEM;
}

static int read_boot_id(const char *root, char **ret) {
        char buf[SD_ID128_UUID_STRING_MAX];
        sd_id128_t id;
        int r;

        if (!isempty(root) && !streq(root, "/")) {
                /* The boot id belongs to the running kernel; a root directory may pin one for tests. */
                _cleanup_free_ char *p = path_join_root(root, "/proc/sys/kernel/random/boot_id");
                if (!p)
                        return -ENOMEM;
                if (access(p, F_OK) == 0)
                        return omaha_read_id128(root, "/proc/sys/kernel/random/boot_id", true, ret);
        }
        r = sd_id128_get_boot(&id);
        if (r < 0)
                return log_error_errno(r, "Failed to read the boot id: %m");
        return asprintf(ret, "{%s}", sd_id128_to_uuid_string(id, buf)) < 0 ? -ENOMEM : 0;
}

static int conf_get_string(const ConfFile *f, const char *key, const char *def, char **ret) {
        const char *v = conf_get(f, key);

        if (!v)
                v = def;
        if (!v) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int conf_get_seconds(const ConfFile *f, const char *key, uint64_t def, uint64_t *ret) {
        const char *v = conf_get(f, key);
        int r;

        if (!v) {
                *ret = def;
                return 0;
        }
        r = safe_atou64(v, ret);
        if (r < 0)
                return log_error_errno(r, "omaha-client.conf: %s=%s is not a number of seconds.", key, v);
        return 0;
}

static bool server_is_usable(const char *s) {
        return startswith(s, "https://") || startswith(s, "http://");
}

static int load_switchyard_conf(OmahaConfig *c) {
        _cleanup_(conf_freep) ConfFile *f = NULL;
        const char *v;
        uint64_t u;
        int r;

        r = conf_load_switchyard(c->root, "omaha-client", &f);
        if (r < 0)
                return log_error_errno(r, "Failed to load omaha-client.conf: %m");

        v = conf_get(f, "ALLOW_DOWNGRADE");
        if (v) {
                r = parse_boolean(v);
                if (r < 0)
                        return log_error_errno(r, "omaha-client.conf: ALLOW_DOWNGRADE=%s is not a boolean.", v);
                c->allow_downgrade = r;
        }

        if (conf_get_string(f, "CA_FILE", NULL, &c->ca_file) < 0 ||
            conf_get_string(f, "SLOTS_SOCKET", OMAHA_DEFAULT_SLOTS_ADDRESS, &c->slots_address) < 0 ||
            conf_get_string(f, "PAYLOAD_WRITER_SOCKET", OMAHA_DEFAULT_PAYLOAD_WRITER_ADDRESS,
                            &c->payload_writer_address) < 0 ||
            conf_get_string(f, "VERITY_SOCKET", OMAHA_DEFAULT_VERITY_ADDRESS, &c->verity_address) < 0)
                return log_oom();

        v = conf_get(f, "STATE_DIRECTORY");
        c->state_dir = v ? strdup(v) : path_join_root(c->root, OMAHA_DEFAULT_STATE_DIR);
        v = conf_get(f, "RUNTIME_DIRECTORY");
        c->runtime_dir = v ? strdup(v) : path_join_root(c->root, OMAHA_DEFAULT_RUNTIME_DIR);
        if (!c->state_dir || !c->runtime_dir)
                return log_oom();

        /* Defaults are update_engine's (spec §1.7). */
        if ((r = conf_get_seconds(f, "FIRST_CHECK_DELAY_SEC", 7 * 60, &c->first_check_delay_sec)) < 0 ||
            (r = conf_get_seconds(f, "FIRST_CHECK_FUZZ_SEC", 10 * 60, &c->first_check_fuzz_sec)) < 0 ||
            (r = conf_get_seconds(f, "CHECK_INTERVAL_SEC", 45 * 60, &c->check_interval_sec)) < 0 ||
            (r = conf_get_seconds(f, "CHECK_FUZZ_SEC", 10 * 60, &c->check_fuzz_sec)) < 0 ||
            (r = conf_get_seconds(f, "MIN_CHECK_INTERVAL_SEC", 45 * 60, &c->min_interval_sec)) < 0 ||
            (r = conf_get_seconds(f, "MIN_CHECK_INTERVAL_FUZZ_SEC", 10 * 60, &c->min_interval_fuzz_sec)) < 0 ||
            (r = conf_get_seconds(f, "MAX_BACKOFF_SEC", 4 * 3600, &c->max_backoff_sec)) < 0 ||
            (r = conf_get_seconds(f, "PAYLOAD_BACKOFF_UNIT_SEC", 86400, &c->payload_backoff_unit_sec)) < 0 ||
            (r = conf_get_seconds(f, "RETRY_DELAY_SEC", 20, &c->retry_delay_sec)) < 0 ||
            (r = conf_get_seconds(f, "NO_NETWORK_RETRY_SEC", 10, &c->no_network_retry_sec)) < 0 ||
            (r = conf_get_seconds(f, "MIN_FREE_BYTES", 0, &c->min_free_bytes)) < 0)
                return r;
        r = conf_get_seconds(f, "MAX_RESUME_ATTEMPTS", 20, &u);
        if (r < 0)
                return r;
        c->max_resume_attempts = (unsigned) MIN(u, 1000u);
        return 0;
}

int omaha_config_load(const char *root, OmahaConfig **ret) {
        _cleanup_(omaha_config_freep) OmahaConfig *c = NULL;
        _cleanup_free_ char *devmode = NULL;
        struct utsname u;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return log_oom();
        if (!isempty(root) && !streq(root, "/")) {
                c->root = strdup(root);
                if (!c->root)
                        return log_oom();
        }

        if ((r = chain_get(c->root, update_conf_chain, "SERVER", OMAHA_PRODUCTION_SERVER, &c->server)) < 0 ||
            (r = chain_get(c->root, update_conf_chain, "GROUP", "stable", &c->group)) < 0 ||
            (r = chain_get(c->root, update_conf_chain, "MACHINE_ALIAS", "", &c->machine_alias)) < 0 ||
            (r = chain_get(c->root, update_conf_chain, "DOWNLOAD_USER", NULL, &c->download_user)) < 0 ||
            (r = chain_get(c->root, update_conf_chain, "DOWNLOAD_PASSWORD", NULL, &c->download_password)) < 0 ||
            (r = chain_get(c->root, update_conf_chain, "FLATCAR_RELEASE_VERSION", "", &c->version)) < 0 ||
            (r = chain_get(c->root, update_conf_chain, "FLATCAR_RELEASE_BOARD", "", &c->board)) < 0 ||
            (r = chain_get(c->root, update_conf_chain, "FLATCAR_RELEASE_APPID", OMAHA_FLATCAR_APPID, &c->appid)) < 0 ||
            (r = chain_get(c->root, oem_release_chain, "ID", "", &c->oem_id)) < 0 ||
            (r = chain_get(c->root, oem_release_chain, "VERSION_ID", "", &c->oem_version)) < 0)
                return r;
        c->server_disabled = !server_is_usable(c->server);

        r = read_machine_id(c->root, &c->machine_id);
        if (r < 0)
                return r;
        r = read_boot_id(c->root, &c->boot_id);
        if (r < 0)
                return r;

        if (uname(&u) < 0)
                return log_error_errno(errno, "uname() failed: %m");
        c->arch = strdup(u.machine);
        devmode = path_join_root(c->root, "/root/.dev_mode");
        if (!c->arch || !devmode)
                return log_oom();
        c->dev_mode = access(devmode, F_OK) == 0;

        r = load_switchyard_conf(c);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

static int replace_string(char **p, const char *v) {
        char *n;

        if (!v)
                return 0;
        n = strdup(v);
        if (!n)
                return -ENOMEM;
        free(*p);
        *p = n;
        return 0;
}

int omaha_config_set_addresses(OmahaConfig *c, const char *slots, const char *payload_writer, const char *verity) {
        if (replace_string(&c->slots_address, slots) < 0 ||
            replace_string(&c->payload_writer_address, payload_writer) < 0 ||
            replace_string(&c->verity_address, verity) < 0)
                return -ENOMEM;
        return 0;
}

uint32_t omaha_config_error_flags(const OmahaConfig *c) {
        uint32_t flags = 0;

        if (c->dev_mode)
                flags |= UINT32_C(0x20000000);
        if (!streq(c->server, OMAHA_PRODUCTION_SERVER))
                flags |= UINT32_C(0x10000000);
        return flags;
}
