/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* KubeVirt: a config drive (label config-2, openstack/latest/meta_data.json) or else a NoCloud drive
 * (label cidata, meta-data), both iso9660; without either the provider gives nothing (spec §5.20).
 * Attributes, hostname and SSH keys as in afterburn 5.10; the main-branch additions (KUBEVIRT_IPV4/IPV6,
 * network units, initrd kargs) are not produced. */

#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"
#include "metadata-agent-yaml.h"

static const char *first_string(json_t *doc, const char *a, const char *b) {
        const char *v = NULL;
        if (json_member_string(doc, a, &v) > 0)
                return v;
        if (b && json_member_string(doc, b, &v) > 0)
                return v;
        return NULL;
}

int kubevirt_parse(json_t *meta, unsigned want, Metadata *m) {
        const char *id, *hostname, *type = NULL, *name;
        json_t *keys, *k;
        int r;

        if (!json_is_object(meta))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "KubeVirt meta data is not a mapping.");
        id = first_string(meta, "uuid", "instance-id");
        hostname = first_string(meta, "hostname", "local-hostname");
        if (!id || !hostname)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "KubeVirt meta data lacks the instance id or hostname.");
        if (json_member_string(meta, "instance_type", &type) < 0)
                return -EBADMSG;
        keys = json_object_get(meta, "public_keys");
        if (keys && !json_is_null(keys) && !json_is_object(keys))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "KubeVirt public_keys is not a mapping.");

        if (want & WANT_ATTRIBUTES) {
                if (isempty(id) || isempty(hostname))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "KubeVirt instance id or hostname is empty.");
                r = metadata_set_attr(m, "KUBEVIRT_INSTANCE_ID", id);
                if (r >= 0)
                        r = metadata_set_attr(m, "KUBEVIRT_HOSTNAME", hostname);
                if (r >= 0)
                        r = metadata_set_attr(m, "KUBEVIRT_INSTANCE_TYPE", type);
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
                                r = metadata_add_ssh_key(m, json_string_value(k), "KubeVirt public_keys");
                                if (r < 0)
                                        return r;
                        }
        }
        return 0;
}

static int kubevirt_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *data = NULL, *dir = NULL;
        const char *file = "openstack/latest/meta_data.json";
        json_t *meta = NULL;
        size_t size;
        int r;

        /* The generator's mount units load virtio_blk (modprobe@virtio_blk.service) and mount the
         * config-2 and the cidata drive; config-2 wins. */
        r = config_drive_open(c, &provider_kubevirt, &dir);
        if (r == -ENODEV) {
                config_drive_log_missing(LOG_WARNING, &provider_kubevirt);
                log_warning("Nothing to do.");
                return 0;
        }
        if (r < 0)
                return r;
        r = config_drive_read(dir, file, &data, &size);
        if (r == -ENOENT) {
                file = "meta-data"; /* NoCloud */
                r = config_drive_read(dir, file, &data, &size);
        }
        if (r < 0)
                log_error_errno(r, "Failed to read KubeVirt meta data from %s: %m", dir);
        else {
                r = yaml_parse_json(data, size, &meta); /* YAML is a superset of the JSON used here */
                if (r < 0)
                        log_error_errno(r, "Malformed %s on the KubeVirt drive.", file);
                else
                        r = kubevirt_parse(meta, want, m);
        }
        json_decref(meta);
        return r;
}

const Provider provider_kubevirt = {
        .name = "kubevirt",
        .config_drive = &config_drive_kubevirt,
        .fetch = kubevirt_fetch,
};
