/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Config-drive-only providers reading openstack/latest/meta_data.json: IBM Cloud classic (label config-2,
 * vfat, no SSH keys) and PowerVS (label config-2, iso9660, keys from public_keys), spec §5.13/§5.14. */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

int configdrive_parse_uuid_name(json_t *doc, const char *prefix, bool with_keys, unsigned want, Metadata *m) {
        const char *uuid = NULL, *name = NULL, *kn;
        json_t *keys, *k;
        int r;

        if (!json_is_object(doc))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "meta_data.json is not a JSON object.");
        if (json_member_string(doc, "uuid", &uuid) < 0 || json_member_string(doc, "name", &name) < 0 ||
            isempty(uuid) || isempty(name))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "meta_data.json lacks a non-empty uuid or name.");
        keys = json_object_get(doc, "public_keys");
        if (with_keys && keys && !json_is_null(keys) && !json_is_object(keys))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "meta_data.json public_keys is not an object.");
        if (want & WANT_ATTRIBUTES) {
                r = metadata_set_attrf(m, uuid, "%s_INSTANCE_ID", prefix);
                if (r >= 0)
                        r = metadata_set_attrf(m, name, "%s_LOCAL_HOSTNAME", prefix);
                if (r < 0)
                        return r;
        }
        if (want & WANT_HOSTNAME) {
                r = metadata_set_hostname(m, name);
                if (r < 0)
                        return r;
        }
        if (want & WANT_SSH_KEYS) {
                m->ssh_keys_valid = true;
                if (with_keys && json_is_object(keys))
                        json_object_foreach(keys, kn, k) {
                                if (!json_is_string(k))
                                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "public_keys.%s is not a string.", kn);
                                r = metadata_add_ssh_keys_text(m, json_string_value(k), false, "meta_data.json public_keys");
                                if (r < 0)
                                        return r;
                        }
        }
        return 0;
}

static int configdrive_fetch(ProviderContext *c, unsigned want, Metadata *m, const Provider *p,
                             const char *prefix, bool with_keys) {
        _cleanup_free_ char *data = NULL, *dir = NULL;
        json_error_t err;
        json_t *doc = NULL;
        size_t size;
        int r;

        r = config_drive_open(c, p, &dir);
        if (r == -ENODEV)
                return config_drive_log_missing(LOG_ERR, p);
        if (r < 0)
                return r;
        r = config_drive_read(dir, "openstack/latest/meta_data.json", &data, &size);
        if (r < 0)
                log_error_errno(r, "Failed to read openstack/latest/meta_data.json from the config drive: %m");
        else if (!(doc = json_loadb(data, size, 0, &err)))
                r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Malformed JSON in meta_data.json line %d: %s", err.line,
                                    err.text);
        else
                r = configdrive_parse_uuid_name(doc, prefix, with_keys, want, m);
        json_decref(doc);
        return r;
}

static int ibmcloud_classic_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        return configdrive_fetch(c, want, m, &provider_ibmcloud_classic, "IBMCLOUD_CLASSIC", false);
}

static int powervs_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        return configdrive_fetch(c, want, m, &provider_powervs, "POWERVS", true);
}

const Provider provider_ibmcloud_classic = {
        .name = "ibmcloud-classic",
        .config_drive = &config_drive_ibmcloud_classic,
        .fetch = ibmcloud_classic_fetch,
};

const Provider provider_powervs = {
        .name = "powervs",
        .config_drive = &config_drive_powervs,
        .fetch = powervs_fetch,
};
