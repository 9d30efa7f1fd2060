/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>

#include "fileio.h"
#include "log.h"
#include "metadata-agent-provider.h"

static const Provider *const providers[] = {
        &provider_akamai,
        &provider_aliyun,
        &provider_aws,
        &provider_azure,
        &provider_azurestack,
        &provider_cloudstack_configdrive,
        &provider_cloudstack_metadata,
        &provider_digitalocean,
        &provider_exoscale,
        &provider_gcp,
        &provider_hetzner,
        &provider_ibmcloud,
        &provider_ibmcloud_classic,
        &provider_kubevirt,
        &provider_openstack,
        &provider_openstack_metadata,
        &provider_oraclecloud,
        &provider_packet,
        &provider_powervs,
        &provider_proxmoxve,
        &provider_scaleway,
        &provider_upcloud,
        &provider_vultr,
};

const Provider *provider_find(const char *name) {
        if (streq(name, "ec2"))
                name = "aws";
        else if (streq(name, "gce"))
                name = "gcp";
        for (size_t i = 0; i < ELEMENTSOF(providers); i++)
                if (streq(providers[i]->name, name))
                        return providers[i];
        return NULL;
}

const char *const *provider_names(void) {
        static const char *names[ELEMENTSOF(providers) + 1];
        for (size_t i = 0; i < ELEMENTSOF(providers); i++)
                names[i] = providers[i]->name;
        return names;
}

char *provider_base(const ProviderContext *c, const Provider *p, const char *env_name, const char *def) {
        _cleanup_free_ char *var = NULL;
        const char *v = NULL;
        char *r;
        size_t l;

        if (asprintf(&var, "SWITCHYARD_METADATA_URL_%s", env_name) < 0)
                return NULL;
        v = getenv(var);
        if (isempty(v) && streq_ptr(env_name, p->env_name))
                v = c->base_url;
        if (isempty(v))
                v = def;
        r = strdup(v);
        if (!r)
                return NULL;
        l = strlen(r);
        while (l > 0 && r[l - 1] == '/')
                r[--l] = '\0';
        return r;
}

void strv_free_n(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

int fetch_endpoints(const ProviderContext *c, const char *base, const HttpHeader *headers, size_t n_headers,
                    const Endpoint *eps, size_t n, bool none_on_404, bool skip_empty, Metadata *m) {
        _cleanup_free_ FetchRequest *reqs = calloc(n, sizeof(FetchRequest));
        int r = 0;

        if (!reqs)
                return log_oom();
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *url = NULL;
                if (asprintf(&url, "%s/%s", base, eps[i].path) < 0)
                        r = -ENOMEM;
                else
                        r = fetch_request_init(&reqs[i], url, headers, n_headers, BODY_RAW, none_on_404);
        }
        if (r >= 0)
                r = fetch_many(&c->policy, reqs, n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                if (!reqs[i].found || (skip_empty && isempty(reqs[i].data)))
                        continue;
                r = metadata_set_attr(m, eps[i].key, reqs[i].data);
        }
        for (size_t i = 0; i < n; i++)
                fetch_request_done(&reqs[i]);
        return r;
}

int fetch_text(const ProviderContext *c, const char *url, const HttpHeader *headers, size_t n_headers,
               bool none_on_404, char **ret) {
        FetchRequest req;
        int r;

        r = fetch_request_init(&req, url, headers, n_headers, BODY_RAW, none_on_404);
        if (r >= 0)
                r = fetch_one(&c->policy, &req);
        if (r >= 0)
                *ret = req.found ? TAKE_PTR(req.data) : NULL;
        fetch_request_done(&req);
        return r;
}

static int fetch_below(const ProviderContext *c, const char *base, const char *path, bool none_on_404,
                       char **ret_url, char **ret_text) {
        if (asprintf(ret_url, "%s/%s", base, path) < 0) {
                *ret_url = NULL;
                return log_oom();
        }
        return fetch_text(c, *ret_url, NULL, 0, none_on_404, ret_text);
}

int fetch_endpoint_set(const ProviderContext *c, const char *base, const EndpointSet *set, unsigned want, Metadata *m) {
        int r;

        if (want & WANT_ATTRIBUTES) {
                r = fetch_endpoints(c, base, NULL, 0, set->endpoints, set->n_endpoints, set->none_on_404,
                                    set->skip_empty, m);
                if (r < 0)
                        return r;
        }
        if ((want & WANT_HOSTNAME) && set->hostname_path) {
                _cleanup_free_ char *url = NULL, *text = NULL;
                r = fetch_below(c, base, set->hostname_path, set->none_on_404, &url, &text);
                if (r < 0)
                        return r;
                r = metadata_set_hostname(m, text);
                if (r < 0)
                        return r;
        }
        if ((want & WANT_SSH_KEYS) && set->ssh_keys_path) {
                _cleanup_free_ char *url = NULL, *text = NULL;
                r = fetch_below(c, base, set->ssh_keys_path, set->none_on_404, &url, &text);
                if (r < 0)
                        return r;
                m->ssh_keys_valid = true; /* a 404 (none_on_404) is "no keys" */
                if (text)
                        return metadata_add_ssh_keys_text(m, text, set->skip_bad_keys, url);
        }
        return 0;
}

int ec2_parse_key_list(const char *text, char ***ret_indices, size_t *ret_n) {
        char **v = NULL;
        size_t n = 0;

        for (const char *p = text; *p;) {
                size_t l = strcspn(p, "\n");
                const char *eq = memchr(p, '=', l);
                char **nv;

                if (l > 0 && !(l == 1 && *p == '\r')) {
                        if (!eq || memchr(eq + 1, '=', l - (size_t) (eq - p) - 1) || eq == p) {
                                strv_free_n(v, n);
                                return -EBADMSG;
                        }
                        nv = reallocarray(v, n + 1, sizeof(char *));
                        if (!nv || !(nv[n] = strndup(p, (size_t) (eq - p)))) {
                                strv_free_n(nv ?: v, n);
                                return -ENOMEM;
                        }
                        v = nv;
                        n++;
                }
                p += l;
                if (*p == '\n')
                        p++;
        }
        *ret_indices = v;
        *ret_n = n;
        return 0;
}

int fetch_ec2_ssh_keys_from_list(const ProviderContext *c, const char *list_url, const char *list,
                                 const HttpHeader *headers, size_t n_headers, Metadata *m) {
        _cleanup_free_ FetchRequest *reqs = NULL;
        char **idx = NULL;
        size_t n = 0;
        int r;

        m->ssh_keys_valid = true;
        if (!list)
                return 0;
        r = ec2_parse_key_list(list, &idx, &n);
        if (r == -EBADMSG)
                return log_error_errno(r, "Malformed SSH key listing from %s (expected <index>=<name> lines).",
                                       list_url);
        if (r < 0)
                return r;
        reqs = calloc(MAX(n, 1u), sizeof(FetchRequest));
        if (!reqs)
                r = -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *url = NULL;
                if (asprintf(&url, "%s/%s/openssh-key", list_url, idx[i]) < 0)
                        r = -ENOMEM;
                else
                        r = fetch_request_init(&reqs[i], url, headers, n_headers, BODY_RAW, false);
        }
        if (r >= 0)
                r = fetch_many(&c->policy, reqs, n);
        for (size_t i = 0; i < n && r >= 0; i++)
                r = metadata_add_ssh_keys_text(m, reqs[i].data, false, reqs[i].url);
        for (size_t i = 0; reqs && i < n; i++)
                fetch_request_done(&reqs[i]);
        strv_free_n(idx, n);
        return r;
}

int fetch_ec2_ssh_keys(const ProviderContext *c, const char *list_url, const HttpHeader *headers,
                       size_t n_headers, Metadata *m) {
        _cleanup_free_ char *list = NULL;
        int r;

        r = fetch_text(c, list_url, headers, n_headers, true, &list);
        if (r < 0)
                return r;
        return fetch_ec2_ssh_keys_from_list(c, list_url, list, headers, n_headers, m);
}

int json_member_string(json_t *obj, const char *key, const char **ret) {
        json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

        if (!v || json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Metadata field \"%s\" is not a string.", key);
        *ret = json_string_value(v);
        return 1;
}

json_t *json_path(json_t *obj, const char *path) {
        json_t *cur = obj;

        for (const char *p = path; cur && *p;) {
                size_t l = strcspn(p, ".");
                char key[128];

                if (l >= sizeof(key) || !json_is_object(cur))
                        return NULL;
                memcpy(key, p, l);
                key[l] = '\0';
                cur = json_object_get(cur, key);
                p += l;
                if (*p == '.')
                        p++;
        }
        return cur;
}

const char *config_drive_dir(void) {
        const char *e = getenv("SWITCHYARD_METADATA_CONFIG_DRIVE_DIR");
        return !isempty(e) ? e : CONFIG_DRIVE_DIR;
}

int config_drive_is_mounted(const char *path) {
        _cleanup_free_ char *parent = NULL;
        struct statx sx;
        struct stat a, b;

        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx) < 0)
                return -errno;
        if (!S_ISDIR(sx.stx_mode))
                return -ENOTDIR;
        if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
                return !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
        if (asprintf(&parent, "%s/..", path) < 0)
                return -ENOMEM;
        if (stat(path, &a) < 0 || stat(parent, &b) < 0)
                return -errno;
        return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

int config_drive_open(const ProviderContext *c, const Provider *p, char **ret_dir) {
        const ConfigDrive *d = p->config_drive;
        char *copy;
        int r;

        if (c->config_drive) {
                struct stat st;
                if (stat(c->config_drive, &st) < 0 || !S_ISDIR(st.st_mode))
                        return log_error_errno(errno ?: ENOTDIR, "Config drive directory %s: %m", c->config_drive);
                copy = strdup(c->config_drive);
                if (!copy)
                        return -ENOMEM;
                *ret_dir = copy;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(d->labels) && d->labels[i]; i++) {
                if (asprintf(&copy, "%s/%s", config_drive_dir(), d->labels[i]) < 0)
                        return -ENOMEM;
                r = config_drive_is_mounted(copy);
                if (r > 0) {
                        log_debug("Reading the %s config drive (label %s) at %s.", p->name, d->labels[i], copy);
                        *ret_dir = copy;
                        return 0;
                }
                if (r < 0 && r != -ENOENT) {
                        log_error_errno(r, "Failed to check the config drive mount point %s: %m", copy);
                        free(copy);
                        return r;
                }
                free(copy);
        }
        return -ENODEV;
}

int config_drive_log_missing(int level, const Provider *p) {
        log_full(level, "No %s config drive (label %s, %s) is mounted at %s/LABEL; metadata-agent-generator(8) "
                        "has PID 1 mount it there, --config-drive DIR names another directory.",
                 p->name, config_drive_labels(p->config_drive), p->config_drive->fstype, config_drive_dir());
        return -ENODEV;
}

int config_drive_read(const char *dir, const char *path, char **ret, size_t *ret_size) {
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, path) < 0)
                return -ENOMEM;
        return read_full_file(p, METADATA_BODY_MAX, ret, ret_size);
}
