/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CloudStack: the metadata service at the DHCP server's address, or a config drive (spec §5.11). */
#include <arpa/inet.h>
#include <sys/stat.h>

#include "log.h"
#include "metadata-agent-dhcp.h"
#include "metadata-agent-network.h"
#include "metadata-agent-provider.h"

static const Endpoint cloudstack_endpoints[] = {
        { "CLOUDSTACK_INSTANCE_ID", "latest/meta-data/instance-id" },
        { "CLOUDSTACK_LOCAL_HOSTNAME", "latest/meta-data/local-hostname" },
        { "CLOUDSTACK_PUBLIC_HOSTNAME", "latest/meta-data/public-hostname" },
        { "CLOUDSTACK_AVAILABILITY_ZONE", "latest/meta-data/availability-zone" },
        { "CLOUDSTACK_IPV4_PUBLIC", "latest/meta-data/public-ipv4" },
        { "CLOUDSTACK_IPV4_LOCAL", "latest/meta-data/local-ipv4" },
        { "CLOUDSTACK_SERVICE_OFFERING", "latest/meta-data/service-offering" },
        { "CLOUDSTACK_CLOUD_IDENTIFIER", "latest/meta-data/cloud-identifier" },
        { "CLOUDSTACK_VM_ID", "latest/meta-data/vm-id" },
};

static char *cloudstack_base(ProviderContext *c) {
        _cleanup_free_ char *server = NULL, *def = NULL;
        char buf[INET6_ADDRSTRLEN];

        if (getenv("SWITCHYARD_METADATA_URL_CLOUDSTACK") || c->base_url)
                return provider_base(c, &provider_cloudstack_metadata, "CLOUDSTACK", "http://0.0.0.0");
        if (dhcp_lease_lookup("SERVER_ADDRESS", &server) < 0) {
                log_error("No DHCP server address in the DHCP leases; it is the CloudStack metadata server.");
                return NULL;
        }
        if (ip_canonical(AF_INET, server, buf, sizeof(buf), NULL) < 0) {
                log_error("DHCP server address \"%s\" is not an IPv4 address.", server);
                return NULL;
        }
        if (asprintf(&def, "http://%s", buf) < 0)
                return NULL;
        return TAKE_PTR(def);
}

static const EndpointSet cloudstack_set = {
        .endpoints = cloudstack_endpoints,
        .n_endpoints = ELEMENTSOF(cloudstack_endpoints),
        .none_on_404 = true,
        .skip_empty = false,
        .hostname_path = NULL, /* CloudStack's metadata service gives no hostname to set (upstream returns none). */
        .ssh_keys_path = "latest/meta-data/public-keys",
        .skip_bad_keys = false,
};

static int cloudstack_metadata_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = cloudstack_base(c);

        if (!base)
                return -ENXIO;
        return fetch_endpoint_set(c, base, &cloudstack_set, want, m);
}

static const struct {
        const char *key, *file;
} configdrive_files[] = {
        { "CLOUDSTACK_AVAILABILITY_ZONE", "availability_zone" },
        { "CLOUDSTACK_CLOUD_IDENTIFIER", "cloud_identifier" },
        { "CLOUDSTACK_INSTANCE_ID", "instance_id" },
        { "CLOUDSTACK_LOCAL_HOSTNAME", "local_hostname" },
        { "CLOUDSTACK_SERVICE_OFFERING", "service_offering" },
        { "CLOUDSTACK_VM_ID", "vm_id" },
};

static int cloudstack_configdrive_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        static const char media[] = "/media/ConfigDrive";
        ProviderContext cc = *c;
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        int r = 0;

        /* An already mounted drive (as CloudStack's own tools leave it) is used as it is. */
        if (!cc.config_drive && stat("/media/ConfigDrive/cloudstack/metadata", &st) >= 0 && S_ISDIR(st.st_mode))
                cc.config_drive = media;
        r = config_drive_open(&cc, &provider_cloudstack_configdrive, &dir);
        if (r == -ENODEV)
                return config_drive_log_missing(LOG_ERR, &provider_cloudstack_configdrive);
        if (r < 0)
                return r;
        for (size_t i = 0; r >= 0 && (want & WANT_ATTRIBUTES) && i < ELEMENTSOF(configdrive_files); i++) {
                _cleanup_free_ char *path = NULL, *data = NULL;
                size_t size;

                if (asprintf(&path, "cloudstack/metadata/%s.txt", configdrive_files[i].file) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = config_drive_read(dir, path, &data, &size);
                if (r == -ENOENT) {
                        r = 0;
                        continue;
                }
                if (r < 0) {
                        log_error_errno(r, "Failed to read %s from the config drive: %m", path);
                        break;
                }
                /* Upstream keeps the file's trailing newline in the value, which would break the
                 * KEY=value file; one trailing newline is dropped. */
                if (size > 0 && data[size - 1] == '\n')
                        data[--size] = '\0';
                r = metadata_set_attr(m, configdrive_files[i].key, data);
        }
        if (r >= 0 && (want & WANT_SSH_KEYS)) {
                _cleanup_free_ char *data = NULL;
                r = config_drive_read(dir, "cloudstack/metadata/public_keys.txt", &data, NULL);
                m->ssh_keys_valid = true;
                if (r == -ENOENT)
                        r = 0;
                else if (r < 0)
                        log_error_errno(r, "Failed to read public_keys.txt from the config drive: %m");
                else
                        r = metadata_add_ssh_keys_text(m, data, false, "config drive public_keys.txt");
        }
        return r;
}

const Provider provider_cloudstack_metadata = {
        .name = "cloudstack-metadata",
        .env_name = "CLOUDSTACK",
        .fetch = cloudstack_metadata_fetch,
};

const Provider provider_cloudstack_configdrive = {
        .name = "cloudstack-configdrive",
        .config_drive = &config_drive_cloudstack,
        .fetch = cloudstack_configdrive_fetch,
};
