/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Scaleway: /conf?format=json and the boot check-in PATCH /state (spec §5.15). */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

int scaleway_parse(json_t *doc, unsigned want, Metadata *m) {
        static const struct {
                const char *key, *path;
        } fields[] = {
                { "SCALEWAY_HOSTNAME", "hostname" },
                { "SCALEWAY_INSTANCE_ID", "id" },
                { "SCALEWAY_INSTANCE_TYPE", "commercial_type" },
                { "SCALEWAY_ZONE_ID", "location.zone_id" },
                { "SCALEWAY_IPV4_PRIVATE", "private_ip" },
                { "SCALEWAY_IPV4_PUBLIC", "public_ip.address" },
                { "SCALEWAY_IPV6_PUBLIC", "ipv6.address" },
        };
        json_t *keys, *k;
        size_t i;
        int r;

        if (!json_is_object(doc))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Scaleway metadata is not a JSON object.");
        for (i = 0; i < 4; i++)
                if (!json_is_string(json_path(doc, fields[i].path)))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Scaleway metadata lacks \"%s\".", fields[i].path);
        keys = json_object_get(doc, "ssh_public_keys");
        if (!json_is_array(keys))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Scaleway ssh_public_keys is not an array.");

        if (want & WANT_ATTRIBUTES)
                for (i = 0; i < ELEMENTSOF(fields); i++) {
                        json_t *v = json_path(doc, fields[i].path);
                        if (!v || json_is_null(v))
                                continue;
                        if (!json_is_string(v))
                                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Scaleway \"%s\" is not a string.",
                                                       fields[i].path);
                        r = metadata_set_attr(m, fields[i].key, json_string_value(v));
                        if (r < 0)
                                return r;
                }
        if (want & WANT_HOSTNAME) {
                r = metadata_set_hostname(m, json_string_value(json_object_get(doc, "hostname")));
                if (r < 0)
                        return r;
        }
        if (want & WANT_SSH_KEYS) {
                m->ssh_keys_valid = true;
                json_array_foreach(keys, i, k) {
                        const char *key;
                        r = json_member_string(k, "key", &key);
                        if (r < 0)
                                return r;
                        if (!key)
                                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Scaleway ssh_public_keys[%zu] has no key.", i);
                        r = metadata_add_ssh_keys_text(m, key, false, "Scaleway ssh_public_keys");
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int scaleway_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_scaleway, "SCALEWAY", provider_scaleway.default_url);
        _cleanup_free_ char *url = NULL;
        FetchRequest req;
        int r;

        if (!base || asprintf(&url, "%s/conf?format=json", base) < 0)
                return log_oom();
        r = fetch_request_init(&req, url, NULL, 0, BODY_JSON, false);
        if (r >= 0)
                r = fetch_one(&c->policy, &req);
        if (r >= 0)
                r = scaleway_parse(req.json, want, m);
        fetch_request_done(&req);
        return r;
}

static int scaleway_check_in(ProviderContext *c) {
        static const char body[] = "{\"state_detail\":\"booted\"}";
        _cleanup_free_ char *base = provider_base(c, &provider_scaleway, "SCALEWAY", provider_scaleway.default_url);
        _cleanup_free_ char *url = NULL;
        FetchRequest req;
        int r;

        if (!base || asprintf(&url, "%s/state", base) < 0)
                return log_oom();
        r = fetch_request_init(&req, url, NULL, 0, BODY_RAW, false);
        if (r >= 0) {
                req.method = "PATCH";
                req.body = body;
                req.body_size = strlen(body);
                req.content_type = "application/json";
                r = fetch_one(&c->policy, &req);
        }
        if (r >= 0)
                log_info("Reported boot to Scaleway.");
        fetch_request_done(&req);
        return r;
}

const Provider provider_scaleway = {
        .name = "scaleway",
        .env_name = "SCALEWAY",
        .default_url = "http://169.254.42.42",
        .fetch = scaleway_fetch,
        .check_in = scaleway_check_in,
};
