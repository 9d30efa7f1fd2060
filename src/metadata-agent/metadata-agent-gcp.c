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
        static const char *const key_paths[] = {
                "instance/attributes/sshKeys",
                "instance/attributes/ssh-keys",
                "instance/attributes/block-project-ssh-keys",
                "project/attributes/sshKeys",
                "project/attributes/ssh-keys",
        };
        _cleanup_free_ char *host = provider_base(c, &provider_gcp, "GCP", provider_gcp.default_url), *base = NULL;
        FetchRequest reqs[ELEMENTSOF(gcp_endpoints) + ELEMENTSOF(key_paths)] = {};
        size_t n = 0, i_host = SIZE_MAX, i_keys = SIZE_MAX;
        int r = 0;

        if (!host || asprintf(&base, "%s/computeMetadata/v1", host) < 0)
                return log_oom();
        /* Attributes, hostname and the five key sources are independent: one concurrent batch. */
        for (size_t i = 0; i < ELEMENTSOF(gcp_endpoints) && r >= 0; i++) {
                _cleanup_free_ char *url = NULL;
                bool is_host = streq(gcp_endpoints[i].key, "GCP_HOSTNAME");
                if (!(want & WANT_ATTRIBUTES) && !(is_host && (want & WANT_HOSTNAME)))
                        continue;
                if (is_host)
                        i_host = n;
                if (asprintf(&url, "%s/%s", base, gcp_endpoints[i].path) < 0)
                        r = -ENOMEM;
                else
                        r = fetch_request_init(&reqs[n++], url, gcp_headers, 1, BODY_RAW, true);
        }
        if (want & WANT_SSH_KEYS)
                i_keys = n;
        for (size_t i = 0; (want & WANT_SSH_KEYS) && i < ELEMENTSOF(key_paths) && r >= 0; i++) {
                _cleanup_free_ char *url = NULL;
                if (asprintf(&url, "%s/%s", base, key_paths[i]) < 0)
                        r = -ENOMEM;
                else
                        r = fetch_request_init(&reqs[n++], url, gcp_headers, 1, BODY_RAW, true);
        }
        if (r >= 0)
                r = fetch_many(&c->policy, reqs, n);

        for (size_t i = 0; r >= 0 && (want & WANT_ATTRIBUTES) && i < ELEMENTSOF(gcp_endpoints); i++)
                if (reqs[i].found && !isempty(reqs[i].data))
                        r = metadata_set_attr(m, gcp_endpoints[i].key, reqs[i].data);
        if (r >= 0 && (want & WANT_HOSTNAME) && reqs[i_host].found)
                r = metadata_set_hostname(m, reqs[i_host].data);
        if (r >= 0 && (want & WANT_SSH_KEYS)) {
                FetchRequest *k = &reqs[i_keys];
                size_t added = 0;

                /* instance sshKeys alone if it has any; else instance ssh-keys plus, unless blocked, the
                 * project's sshKeys and ssh-keys. */
                if (k[0].found)
                        r = gcp_add_ssh_keys(m, k[0].data, key_paths[0], &added);
                if (r >= 0 && added == 0) {
                        if (k[1].found)
                                r = gcp_add_ssh_keys(m, k[1].data, key_paths[1], NULL);
                        if (r >= 0 && !(k[2].found && streq(k[2].data, "true"))) {
                                if (k[3].found)
                                        r = gcp_add_ssh_keys(m, k[3].data, key_paths[3], NULL);
                                if (r >= 0 && k[4].found)
                                        r = gcp_add_ssh_keys(m, k[4].data, key_paths[4], NULL);
                        }
                }
                m->ssh_keys_valid = true;
        }
        for (size_t i = 0; i < n; i++)
                fetch_request_done(&reqs[i]);
        return r;
}

const Provider provider_gcp = {
        .name = "gcp",
        .env_name = "GCP",
        .default_url = "http://169.254.169.254",
        .fetch = gcp_fetch,
};
