/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Exoscale: one value per URL under /1.0/meta-data/; a 404 is an error (spec §5.10). */
#include "log.h"
#include "metadata-agent-provider.h"

static const Endpoint exoscale_endpoints[] = {
        { "EXOSCALE_INSTANCE_ID", "1.0/meta-data/instance-id" },
        { "EXOSCALE_LOCAL_HOSTNAME", "1.0/meta-data/local-hostname" },
        { "EXOSCALE_PUBLIC_HOSTNAME", "1.0/meta-data/public-hostname" },
        { "EXOSCALE_AVAILABILITY_ZONE", "1.0/meta-data/availability-zone" },
        { "EXOSCALE_PUBLIC_IPV4", "1.0/meta-data/public-ipv4" },
        { "EXOSCALE_LOCAL_IPV4", "1.0/meta-data/local-ipv4" },
        { "EXOSCALE_SERVICE_OFFERING", "1.0/meta-data/service-offering" },
        { "EXOSCALE_CLOUD_IDENTIFIER", "1.0/meta-data/cloud-identifier" },
        { "EXOSCALE_VM_ID", "1.0/meta-data/vm-id" },
};

static int exoscale_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_exoscale, "EXOSCALE", provider_exoscale.default_url);
        _cleanup_free_ char *url = NULL, *text = NULL;
        int r;

        if (!base)
                return log_oom();
        if (want & WANT_ATTRIBUTES) {
                r = fetch_endpoints(c, base, NULL, 0, exoscale_endpoints, ELEMENTSOF(exoscale_endpoints), false, false, m);
                if (r < 0)
                        return r;
        }
        if (want & WANT_HOSTNAME) {
                if (asprintf(&url, "%s/1.0/meta-data/local-hostname", base) < 0)
                        return log_oom();
                r = fetch_text(c, url, NULL, 0, false, &text);
                if (r < 0)
                        return r;
                r = metadata_set_hostname(m, text);
                if (r < 0)
                        return r;
                url = mfree(url);
                text = mfree(text);
        }
        if (want & WANT_SSH_KEYS) {
                if (asprintf(&url, "%s/1.0/meta-data/public-keys", base) < 0)
                        return log_oom();
                r = fetch_text(c, url, NULL, 0, false, &text);
                if (r < 0)
                        return r;
                return metadata_add_ssh_keys_text(m, text, false, url);
        }
        return 0;
}

const Provider provider_exoscale = {
        .name = "exoscale",
        .env_name = "EXOSCALE",
        .default_url = "http://169.254.169.254",
        .fetch = exoscale_fetch,
};
