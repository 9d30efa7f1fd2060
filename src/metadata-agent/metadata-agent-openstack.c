/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* OpenStack: config drive (label config-2), else the metadata service (spec §5.7). "openstack-metadata"
 * uses only the service. */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

static int string_field(json_t *doc, const char *field, const char *origin, const char **ret) {
        int r = json_member_string(doc, field, ret);
        if (r < 0)
                return log_error_errno(r, "Field \"%s\" in %s is not a string.", field, origin);
        return 0;
}

int openstack_parse_config_drive(json_t *meta, json_t *ec2, unsigned want, Metadata *m) {
        const char *hostname, *uuid;
        json_t *keys, *k;
        const char *name;
        int r;

        if (!json_is_object(meta))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "openstack/latest/meta_data.json is not a JSON object.");
        if ((r = string_field(meta, "hostname", "meta_data.json", &hostname)) < 0 ||
            (r = string_field(meta, "uuid", "meta_data.json", &uuid)) < 0)
                return r;
        keys = json_object_get(meta, "public_keys");
        if (keys && !json_is_null(keys) && !json_is_object(keys))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "public_keys in meta_data.json is not an object.");
        if (ec2 && !json_is_object(ec2))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "ec2/latest/meta-data.json is not a JSON object.");

        if (want & WANT_ATTRIBUTES) {
                static const struct {
                        const char *key, *field;
                } ec2_fields[] = {
                        { "OPENSTACK_INSTANCE_ID", "instance-id" },
                        { "OPENSTACK_INSTANCE_TYPE", "instance-type" },
                        { "OPENSTACK_IPV4_LOCAL", "local-ipv4" },
                        { "OPENSTACK_IPV4_PUBLIC", "public-ipv4" },
                };
                r = metadata_set_attr(m, "OPENSTACK_HOSTNAME", hostname);
                if (r >= 0)
                        r = metadata_set_attr(m, "OPENSTACK_INSTANCE_UUID", uuid);
                for (size_t i = 0; ec2 && i < ELEMENTSOF(ec2_fields) && r >= 0; i++) {
                        const char *v;
                        r = string_field(ec2, ec2_fields[i].field, "ec2 meta-data.json", &v);
                        if (r >= 0)
                                r = metadata_set_attr(m, ec2_fields[i].key, v);
                }
                if (r < 0)
                        return r;
        }
        if (want & WANT_HOSTNAME) {
                r = metadata_set_hostname(m, hostname);
                if (r < 0)
                        return r;
        }
        if (want & WANT_SSH_KEYS) {
                m->ssh_keys_valid = true;
                if (json_is_object(keys))
                        json_object_foreach(keys, name, k) {
                                if (!json_is_string(k))
                                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "public_keys.%s is not a string.", name);
                                r = metadata_add_ssh_keys_text(m, json_string_value(k), false, "config drive public_keys");
                                if (r < 0)
                                        return r;
                        }
        }
        return 0;
}

static int load_json(const char *dir, const char *path, bool required, json_t **ret) {
        _cleanup_free_ char *data = NULL;
        json_error_t err;
        size_t size;
        int r;

        r = config_drive_read(dir, path, &data, &size);
        if (r == -ENOENT && !required) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read %s from the config drive: %m", path);
        *ret = json_loadb(data, size, 0, &err);
        if (!*ret)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Malformed JSON in %s line %d: %s", path, err.line,
                                       err.text);
        return 0;
}

static int openstack_config_drive(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *dir = NULL;
        json_t *meta = NULL, *ec2 = NULL;
        int r;

        r = config_drive_open(c, &provider_openstack, &dir);
        if (r == -ENODEV)
                return config_drive_log_missing(LOG_INFO, &provider_openstack);
        if (r < 0)
                return r;
        r = load_json(dir, "openstack/latest/meta_data.json", true, &meta);
        if (r >= 0)
                r = load_json(dir, "ec2/latest/meta-data.json", false, &ec2);
        if (r >= 0)
                r = openstack_parse_config_drive(meta, ec2, want, m);
        json_decref(meta);
        json_decref(ec2);
        return r;
}

static const Endpoint openstack_endpoints[] = {
        { "OPENSTACK_HOSTNAME", "latest/meta-data/hostname" },
        { "OPENSTACK_INSTANCE_ID", "latest/meta-data/instance-id" },
        { "OPENSTACK_INSTANCE_TYPE", "latest/meta-data/instance-type" },
        { "OPENSTACK_IPV4_LOCAL", "latest/meta-data/local-ipv4" },
        { "OPENSTACK_IPV4_PUBLIC", "latest/meta-data/public-ipv4" },
};

static int openstack_service(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_openstack_metadata, "OPENSTACK", "http://169.254.169.254");
        int r;

        if (!base)
                return log_oom();
        if (want & WANT_ATTRIBUTES) {
                _cleanup_free_ char *url = NULL;
                FetchRequest req;
                const char *uuid = NULL;

                if (asprintf(&url, "%s/openstack/2012-08-10/meta_data.json", base) < 0)
                        return log_oom();
                r = fetch_request_init(&req, url, NULL, 0, BODY_JSON, true);
                if (r >= 0)
                        r = fetch_one(&c->policy, &req);
                if (r >= 0 && req.found) {
                        if (!json_is_object(req.json))
                                r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s is not a JSON object.", url);
                        else
                                r = string_field(req.json, "uuid", url, &uuid);
                }
                if (r >= 0)
                        r = metadata_set_attr(m, "OPENSTACK_INSTANCE_UUID", uuid);
                fetch_request_done(&req);
                if (r < 0)
                        return r;
                r = fetch_endpoints(c, base, NULL, 0, openstack_endpoints, ELEMENTSOF(openstack_endpoints), true, false, m);
                if (r < 0)
                        return r;
        }
        if (want & WANT_HOSTNAME) {
                _cleanup_free_ char *url = NULL, *h = NULL;
                if (asprintf(&url, "%s/latest/meta-data/hostname", base) < 0)
                        return log_oom();
                r = fetch_text(c, url, NULL, 0, true, &h);
                if (r >= 0)
                        r = metadata_set_hostname(m, h);
                if (r < 0)
                        return r;
        }
        if (want & WANT_SSH_KEYS) {
                _cleanup_free_ char *url = NULL;
                if (asprintf(&url, "%s/latest/meta-data/public-keys", base) < 0)
                        return log_oom();
                return fetch_ec2_ssh_keys(c, url, NULL, 0, m);
        }
        return 0;
}

static int openstack_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        Metadata drive = {};
        int r;

        r = openstack_config_drive(c, want, &drive);
        if (r >= 0) {
                metadata_done(m);
                *m = drive;
                return 0;
        }
        metadata_done(&drive);
        log_warning("Config drive not usable, using the OpenStack metadata service.");
        return openstack_service(c, want, m);
}

const Provider provider_openstack = {
        .name = "openstack",
        .config_drive = &config_drive_openstack,
        .env_name = "OPENSTACK",
        .default_url = "http://169.254.169.254",
        .fetch = openstack_fetch,
};

const Provider provider_openstack_metadata = {
        .name = "openstack-metadata",
        .env_name = "OPENSTACK",
        .default_url = "http://169.254.169.254",
        .fetch = openstack_service,
};
