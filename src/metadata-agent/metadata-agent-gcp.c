/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Google Compute Engine (Flatcar id "gce"), spec §5.4. */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

static const HttpHeader gcp_headers[] = { { "Metadata-Flavor", "Google" } };

static const Endpoint gcp_endpoints[] = {
        { "GCP_HOSTNAME", "instance/hostname" },
        { "GCP_IP_EXTERNAL_0", "instance/network-interfaces/0/access-configs/0/external-ip" },
        { "GCP_IP_LOCAL_0", "instance/network-interfaces/0/ip" },
        { "GCP_MACHINE_TYPE", "instance/machine-type" },
};

int gcp_add_ssh_keys(Metadata *m, const char *text, const char *origin, size_t *ret_added) {
        size_t before = m->n_ssh_keys;

        for (const char *p = text; p && *p;) {
                size_t l = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, l);
                const char *colon, *s;
                int r;

                if (!line)
                        return -ENOMEM;
                p += l;
                if (*p == '\n')
                        p++;
                s = line + strspn(line, " \t\r");
                if (*s == '\0' || strspn(s, " \t\r") == strlen(s))
                        continue;
                colon = strchr(s, ':');
                if (!colon)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                               "SSH key line in %s has no \"user:\" prefix.", origin);
                r = metadata_add_ssh_keys_text(m, colon + 1, false, origin);
                if (r < 0)
                        return r;
        }
        m->ssh_keys_valid = true;
        if (ret_added)
                *ret_added = m->n_ssh_keys - before;
        return 0;
}

static int gcp_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *host = provider_base(c, &provider_gcp, "GCP", provider_gcp.default_url), *base = NULL;
        int r;

        if (!host || asprintf(&base, "%s/computeMetadata/v1", host) < 0)
                return log_oom();
        if (want & WANT_ATTRIBUTES) {
                r = fetch_endpoints(c, base, gcp_headers, 1, gcp_endpoints, ELEMENTSOF(gcp_endpoints), true, true, m);
                if (r < 0)
                        return r;
        }
        if (want & WANT_HOSTNAME) {
                _cleanup_free_ char *url = NULL, *h = NULL;
                if (asprintf(&url, "%s/instance/hostname", base) < 0)
                        return log_oom();
                r = fetch_text(c, url, gcp_headers, 1, true, &h);
                if (r < 0)
                        return r;
                r = metadata_set_hostname(m, h);
                if (r < 0)
                        return r;
        }
        if (want & WANT_SSH_KEYS) {
                static const char *const paths[] = {
                        "instance/attributes/sshKeys",
                        "instance/attributes/ssh-keys",
                        "instance/attributes/block-project-ssh-keys",
                        "project/attributes/sshKeys",
                        "project/attributes/ssh-keys",
                };
                FetchRequest reqs[ELEMENTSOF(paths)] = {};
                size_t added = 0;

                /* The five values are independent, so they are fetched together; the order in which they
                 * are used is afterburn's. */
                r = 0;
                for (size_t i = 0; i < ELEMENTSOF(paths) && r >= 0; i++) {
                        _cleanup_free_ char *url = NULL;
                        if (asprintf(&url, "%s/%s", base, paths[i]) < 0)
                                r = -ENOMEM;
                        else
                                r = fetch_request_init(&reqs[i], url, gcp_headers, 1, BODY_RAW, true);
                }
                if (r >= 0)
                        r = fetch_many(&c->policy, reqs, ELEMENTSOF(reqs));
                if (r >= 0 && reqs[0].found)
                        r = gcp_add_ssh_keys(m, reqs[0].data, "instance/attributes/sshKeys", &added);
                if (r >= 0 && added == 0) {
                        if (reqs[1].found)
                                r = gcp_add_ssh_keys(m, reqs[1].data, "instance/attributes/ssh-keys", NULL);
                        if (r >= 0 && !(reqs[2].found && streq(reqs[2].data, "true"))) {
                                if (reqs[3].found)
                                        r = gcp_add_ssh_keys(m, reqs[3].data, "project/attributes/sshKeys", NULL);
                                if (r >= 0 && reqs[4].found)
                                        r = gcp_add_ssh_keys(m, reqs[4].data, "project/attributes/ssh-keys", NULL);
                        }
                }
                m->ssh_keys_valid = true;
                for (size_t i = 0; i < ELEMENTSOF(reqs); i++)
                        fetch_request_done(&reqs[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

const Provider provider_gcp = {
        .name = "gcp",
        .env_name = "GCP",
        .default_url = "http://169.254.169.254",
        .fetch = gcp_fetch,
};
