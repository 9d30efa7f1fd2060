/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Alibaba Cloud: one value per URL under /latest/meta-data/ (spec §5.12). */
#include "log.h"
#include "metadata-agent-provider.h"

static const Endpoint aliyun_endpoints[] = {
        { "ALIYUN_EIPV4", "latest/meta-data/eipv4" },
        { "ALIYUN_HOSTNAME", "latest/meta-data/hostname" },
        { "ALIYUN_IMAGE_ID", "latest/meta-data/image-id" },
        { "ALIYUN_INSTANCE_ID", "latest/meta-data/instance-id" },
        { "ALIYUN_INSTANCE_TYPE", "latest/meta-data/instance/instance-type" },
        { "ALIYUN_IPV4_PRIVATE", "latest/meta-data/private-ipv4" },
        { "ALIYUN_IPV4_PUBLIC", "latest/meta-data/public-ipv4" },
        { "ALIYUN_REGION_ID", "latest/meta-data/region-id" },
        { "ALIYUN_VPC_ID", "latest/meta-data/vpc-id" },
        { "ALIYUN_ZONE_ID", "latest/meta-data/zone-id" },
};

static int key_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int aliyun_ssh_keys(ProviderContext *c, const char *base, Metadata *m) {
        _cleanup_free_ char *url = NULL, *list = NULL;
        _cleanup_free_ FetchRequest *reqs = NULL;
        char **ids = NULL;
        size_t n = 0;
        int r = 0;

        if (asprintf(&url, "%s/latest/meta-data/public-keys/", base) < 0)
                return log_oom();
        r = fetch_text(c, url, NULL, 0, true, &list);
        if (r < 0)
                return r;
        m->ssh_keys_valid = true;
        /* Lines are "<id>/". */
        for (const char *p = list; p && *p && r >= 0;) {
                size_t l = strcspn(p, "\n");
                size_t idl = l;
                char **nv;

                while (idl > 0 && (p[idl - 1] == '\r' || p[idl - 1] == ' '))
                        idl--;
                if (idl > 0 && p[idl - 1] == '/')
                        idl--;
                if (idl > 0) {
                        if (memchr(p, '/', idl) || memchr(p, '?', idl) || memchr(p, '#', idl)) {
                                r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Malformed key id in %s.", url);
                                break;
                        }
                        nv = reallocarray(ids, n + 1, sizeof(char *));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        ids = nv;
                        if (!(ids[n] = strndup(p, idl))) {
                                r = -ENOMEM;
                                break;
                        }
                        n++;
                }
                p += l;
                if (*p == '\n')
                        p++;
        }
        if (r >= 0 && n > 0) {
                reqs = calloc(n, sizeof(FetchRequest));
                if (!reqs)
                        r = -ENOMEM;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        _cleanup_free_ char *k = NULL;
                        if (asprintf(&k, "%s%s/openssh-key", url, ids[i]) < 0)
                                r = -ENOMEM;
                        else
                                r = fetch_request_init(&reqs[i], k, NULL, 0, BODY_RAW, false);
                }
                if (r >= 0)
                        r = fetch_many(&c->policy, reqs, n);
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = metadata_add_ssh_keys_text(m, reqs[i].data, true, reqs[i].url);
                /* afterburn collects them in a BTreeSet: de-duplicated and sorted. */
                if (r >= 0)
                        qsort(m->ssh_keys, m->n_ssh_keys, sizeof(char *), key_cmp);
                for (size_t i = 0; reqs && i < n; i++)
                        fetch_request_done(&reqs[i]);
        }
        strv_free_n(ids, n);
        return r;
}

static const EndpointSet aliyun_set = {
        .endpoints = aliyun_endpoints,
        .n_endpoints = ELEMENTSOF(aliyun_endpoints),
        .none_on_404 = true,
        .skip_empty = true,
        .hostname_path = "latest/meta-data/hostname",
        .ssh_keys_path = NULL, /* aliyun_ssh_keys(): one GET per key id */
};

static int aliyun_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_aliyun, "ALIYUN", provider_aliyun.default_url);
        int r;

        if (!base)
                return log_oom();
        r = fetch_endpoint_set(c, base, &aliyun_set, want, m);
        if (r < 0)
                return r;
        if (want & WANT_SSH_KEYS)
                return aliyun_ssh_keys(c, base, m);
        return 0;
}

const Provider provider_aliyun = {
        .name = "aliyun",
        .env_name = "ALIYUN",
        .default_url = "http://100.100.100.200",
        .fetch = aliyun_fetch,
};
