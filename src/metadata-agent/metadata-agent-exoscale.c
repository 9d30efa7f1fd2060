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

static const EndpointSet exoscale_set = {
        .endpoints = exoscale_endpoints,
        .n_endpoints = ELEMENTSOF(exoscale_endpoints),
        .none_on_404 = false,
        .skip_empty = false,
        .hostname_path = "1.0/meta-data/local-hostname",
        .ssh_keys_path = "1.0/meta-data/public-keys",
        .skip_bad_keys = false,
};

static int exoscale_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_exoscale, provider_exoscale.env_name, provider_exoscale.default_url);

        if (!base)
                return log_oom();
        return fetch_endpoint_set(c, base, &exoscale_set, want, m);
}

const Provider provider_exoscale = {
        .name = "exoscale",
        .env_name = "EXOSCALE",
        .default_url = "http://169.254.169.254",
        .fetch = exoscale_fetch,
};
