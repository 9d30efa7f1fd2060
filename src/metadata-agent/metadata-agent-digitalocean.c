/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DigitalOcean: one JSON document, /metadata/v1.json (spec §5.5). */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

static int do_required_string(json_t *obj, const char *key, const char **ret) {
        int r = json_member_string(obj, key, ret);
        if (r < 0)
                return r;
        if (r == 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean metadata lacks \"%s\".", key);
        return 0;
}

static int do_interfaces(json_t *ifaces, const char *kind, Metadata *m) {
        json_t *list = json_object_get(ifaces, kind), *e;
        size_t i;

        if (!list)
                return 0;
        if (!json_is_array(list))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean interfaces.%s is not an array.", kind);
        json_array_foreach(list, i, e) {
                static const struct {
                        const char *obj, *prefix;
                } addrs[] = {
                        { "ipv4", "DIGITALOCEAN_IPV4" },
                        { "ipv6", "DIGITALOCEAN_IPV6" },
                        { "anchor_ipv4", "DIGITALOCEAN_IPV4_ANCHOR" },
                };
                if (!json_is_object(e))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean interfaces.%s[%zu] is not an object.",
                                               kind, i);
                for (size_t k = 0; k < ELEMENTSOF(addrs); k++) {
                        json_t *a = json_object_get(e, addrs[k].obj);
                        const char *ip;
                        _cleanup_free_ char *upper = NULL;
                        int r;

                        if (!a || json_is_null(a))
                                continue;
                        r = json_member_string(a, "ip_address", &ip);
                        if (r < 0)
                                return r;
                        if (!ip)
                                continue;
                        /* The anchor address exists only on public interfaces upstream. */
                        if (k == 2) {
                                if (!streq(kind, "public"))
                                        continue;
                                r = metadata_set_attrf(m, ip, "%s_%zu", addrs[k].prefix, i);
                        } else {
                                upper = strdup(kind);
                                if (!upper)
                                        return -ENOMEM;
                                for (char *p = upper; *p; p++)
                                        *p = (char) (*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
                                r = metadata_set_attrf(m, ip, "%s_%s_%zu", addrs[k].prefix, upper, i);
                        }
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int digitalocean_parse(json_t *doc, unsigned want, Metadata *m) {
        const char *hostname, *region;
        json_t *keys, *ifaces, *k;
        size_t i;
        int r;

        if (!json_is_object(doc))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean metadata is not a JSON object.");
        r = do_required_string(doc, "hostname", &hostname);
        if (r < 0)
                return r;
        r = do_required_string(doc, "region", &region);
        if (r < 0)
                return r;
        keys = json_object_get(doc, "public_keys");
        if (!json_is_array(keys))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean public_keys is not a JSON array.");
        ifaces = json_object_get(doc, "interfaces");
        if (!json_is_object(ifaces))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean interfaces is not a JSON object.");

        if (want & WANT_ATTRIBUTES) {
                r = metadata_set_attr(m, "DIGITALOCEAN_HOSTNAME", hostname);
                if (r >= 0)
                        r = metadata_set_attr(m, "DIGITALOCEAN_REGION", region);
                if (r >= 0)
                        r = do_interfaces(ifaces, "public", m);
                if (r >= 0)
                        r = do_interfaces(ifaces, "private", m);
                if (r < 0)
                        return r;
        }
        if (want & WANT_HOSTNAME) {
                r = metadata_set_hostname(m, hostname);
                if (r < 0)
                        return r;
        }
        if (want & WANT_SSH_KEYS) {
                m->ssh_keys_valid = true;
                json_array_foreach(keys, i, k) {
                        if (!json_is_string(k))
                                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean public_keys[%zu] is not a string.", i);
                        r = metadata_add_ssh_keys_text(m, json_string_value(k), false, "DigitalOcean public_keys");
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int digitalocean_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_digitalocean, "DIGITALOCEAN", provider_digitalocean.default_url);
        _cleanup_free_ char *url = NULL;
        FetchRequest req;
        int r;

        if (!base || asprintf(&url, "%s/metadata/v1.json", base) < 0)
                return log_oom();
        r = fetch_request_init(&req, url, NULL, 0, BODY_JSON, false);
        if (r >= 0)
                r = fetch_one(&c->policy, &req);
        if (r >= 0)
                r = digitalocean_parse(req.json, want, m);
        fetch_request_done(&req);
        return r;
}

const Provider provider_digitalocean = {
        .name = "digitalocean",
        .env_name = "DIGITALOCEAN",
        .default_url = "http://169.254.169.254",
        .fetch = digitalocean_fetch,
        .has_network_config = true,
};
