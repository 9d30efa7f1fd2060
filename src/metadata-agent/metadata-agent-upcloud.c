/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UpCloud: one value per URL under /metadata/v1/ (spec §5.18). */
#include "log.h"
#include "metadata-agent-provider.h"

static const Endpoint upcloud_endpoints[] = {
        { "UPCLOUD_HOSTNAME", "metadata/v1/hostname" },
        { "UPCLOUD_INSTANCE_ID", "metadata/v1/instance_id" },
        { "UPCLOUD_REGION", "metadata/v1/region" },
};

static const EndpointSet upcloud_set = {
        .endpoints = upcloud_endpoints,
        .n_endpoints = ELEMENTSOF(upcloud_endpoints),
        .none_on_404 = true,
        .skip_empty = false,
        .hostname_path = "metadata/v1/hostname",
        .ssh_keys_path = "metadata/v1/public_keys",
        .skip_bad_keys = true,
};

static int upcloud_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_upcloud, provider_upcloud.env_name, provider_upcloud.default_url);

        if (!base)
                return log_oom();
        return fetch_endpoint_set(c, base, &upcloud_set, want, m);
}

const Provider provider_upcloud = {
        .name = "upcloud",
        .env_name = "UPCLOUD",
        .default_url = "http://169.254.169.254",
        .fetch = upcloud_fetch,
};
