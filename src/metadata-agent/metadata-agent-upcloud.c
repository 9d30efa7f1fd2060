/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UpCloud: one value per URL under /metadata/v1/ (spec §5.18). */
#include "log.h"
#include "metadata-agent-provider.h"

static const Endpoint upcloud_endpoints[] = {
        { "UPCLOUD_HOSTNAME", "metadata/v1/hostname" },
        { "UPCLOUD_INSTANCE_ID", "metadata/v1/instance_id" },
        { "UPCLOUD_REGION", "metadata/v1/region" },
};

static int upcloud_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_upcloud, "UPCLOUD", provider_upcloud.default_url);
        _cleanup_free_ char *url = NULL, *text = NULL;
        int r;

        if (!base)
                return log_oom();
        if (want & WANT_ATTRIBUTES) {
                r = fetch_endpoints(c, base, NULL, 0, upcloud_endpoints, ELEMENTSOF(upcloud_endpoints), true, false, m);
                if (r < 0)
                        return r;
        }
        if (want & WANT_HOSTNAME) {
                if (asprintf(&url, "%s/metadata/v1/hostname", base) < 0)
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
                if (asprintf(&url, "%s/metadata/v1/public_keys", base) < 0)
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

const Provider provider_upcloud = {
        .name = "upcloud",
        .env_name = "UPCLOUD",
        .default_url = "http://169.254.169.254",
        .fetch = upcloud_fetch,
};
