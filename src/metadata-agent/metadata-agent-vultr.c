/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Vultr: one value per URL under /v1/ (spec §5.9). */
#include "log.h"
#include "metadata-agent-provider.h"

static const Endpoint vultr_endpoints[] = {
        { "VULTR_HOSTNAME", "v1/hostname" },
        { "VULTR_INSTANCE_ID", "v1/instanceid" },
        { "VULTR_REGION_CODE", "v1/region/regioncode" },
};

static int vultr_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_vultr, "VULTR", provider_vultr.default_url);
        _cleanup_free_ char *url = NULL, *text = NULL;
        int r;

        if (!base)
                return log_oom();
        if (want & WANT_ATTRIBUTES) {
                r = fetch_endpoints(c, base, NULL, 0, vultr_endpoints, ELEMENTSOF(vultr_endpoints), true, true, m);
                if (r < 0)
                        return r;
        }
        if (want & WANT_HOSTNAME) {
                if (asprintf(&url, "%s/v1/hostname", base) < 0)
                        return log_oom();
                r = fetch_text(c, url, NULL, 0, true, &text);
                if (r < 0)
                        return r;
                r = metadata_set_hostname(m, text);
                if (r < 0)
                        return r;
                url = mfree(url);
                text = mfree(text);
        }
        if (want & WANT_SSH_KEYS) {
                if (asprintf(&url, "%s/v1/public-keys", base) < 0)
                        return log_oom();
                r = fetch_text(c, url, NULL, 0, true, &text);
                if (r < 0)
                        return r;
                m->ssh_keys_valid = true;
                if (text)
                        return metadata_add_ssh_keys_text(m, text, true, url);
        }
        return 0;
}

const Provider provider_vultr = {
        .name = "vultr",
        .env_name = "VULTR",
        .default_url = "http://169.254.169.254",
        .fetch = vultr_fetch,
};
