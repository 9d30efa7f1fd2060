/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Vultr: one value per URL under /v1/ (spec §5.9). */
#include "log.h"
#include "metadata-agent-provider.h"

static const Endpoint vultr_endpoints[] = {
        { "VULTR_HOSTNAME", "v1/hostname" },
        { "VULTR_INSTANCE_ID", "v1/instanceid" },
        { "VULTR_REGION_CODE", "v1/region/regioncode" },
};

static const EndpointSet vultr_set = {
        .endpoints = vultr_endpoints,
        .n_endpoints = ELEMENTSOF(vultr_endpoints),
        .none_on_404 = true,
        .skip_empty = true,
        .hostname_path = "v1/hostname",
        .ssh_keys_path = "v1/public-keys",
        .skip_bad_keys = true,
};

static int vultr_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_vultr, provider_vultr.env_name, provider_vultr.default_url);

        if (!base)
                return log_oom();
        return fetch_endpoint_set(c, base, &vultr_set, want, m);
}

const Provider provider_vultr = {
        .name = "vultr",
        .env_name = "VULTR",
        .default_url = "http://169.254.169.254",
        .fetch = vultr_fetch,
};
