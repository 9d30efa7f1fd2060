/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hetzner Cloud: YAML metadata under /hetzner/v1/metadata; a 404 is an error (spec §5.8, 5.10.0 keys). */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

static int hetzner_string(json_t *doc, const char *field, const char **ret) {
        int r = json_member_string(doc, field, ret);
        if (r < 0)
                return log_error_errno(r, "Hetzner metadata \"%s\" is not a string.", field);
        return 0;
}

int hetzner_parse_metadata(json_t *doc, json_t *private_networks, Metadata *m) {
        static const struct {
                const char *key, *field;
        } fields[] = {
                { "HETZNER_AVAILABILITY_ZONE", "availability-zone" },
                { "HETZNER_HOSTNAME", "hostname" },
                { "HETZNER_PUBLIC_IPV4", "public-ipv4" },
                { "HETZNER_REGION", "region" },
        };
        json_t *id, *e;
        size_t i;
        int r;

        if (!json_is_object(doc))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Hetzner metadata is not a mapping.");
        if (!json_is_array(private_networks))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Hetzner private-networks is not a list.");
        for (i = 0; i < ELEMENTSOF(fields); i++) {
                const char *v;
                r = hetzner_string(doc, fields[i].field, &v);
                if (r >= 0)
                        r = metadata_set_attr(m, fields[i].key, v);
                if (r < 0)
                        return r;
        }
        id = json_object_get(doc, "instance-id");
        if (id && !json_is_null(id)) {
                _cleanup_free_ char *s = NULL;
                if (!json_is_integer(id) || json_integer_value(id) < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Hetzner instance-id is not a number.");
                if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(id)) < 0)
                        return -ENOMEM;
                r = metadata_set_attr(m, "HETZNER_INSTANCE_ID", s);
                if (r < 0)
                        return r;
        }
        json_array_foreach(private_networks, i, e) {
                const char *ip;
                if (!json_is_object(e))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Hetzner private-networks[%zu] is not a mapping.", i);
                r = hetzner_string(e, "ip", &ip);
                if (r >= 0)
                        r = metadata_set_attrf(m, ip, "HETZNER_PRIVATE_IPV4_%zu", i);
                if (r < 0)
                        return r;
        }
        return 0;
}

int hetzner_parse_public_keys(json_t *doc, Metadata *m) {
        json_t *k;
        size_t i;

        if (!json_is_array(doc))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Hetzner public-keys is not a JSON array.");
        m->ssh_keys_valid = true;
        json_array_foreach(doc, i, k) {
                int r;
                if (!json_is_string(k))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Hetzner public-keys[%zu] is not a string.", i);
                r = metadata_add_ssh_keys_text(m, json_string_value(k), false, "Hetzner public-keys");
                if (r < 0)
                        return r;
        }
        return 0;
}

static int hetzner_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *host = provider_base(c, &provider_hetzner, "HETZNER", provider_hetzner.default_url);
        _cleanup_free_ char *base = NULL;
        FetchRequest reqs[4] = {};
        size_t n = 0, ia = SIZE_MAX, ih = SIZE_MAX, ik = SIZE_MAX;
        int r = 0;

        if (!host || asprintf(&base, "%s/hetzner/v1/metadata", host) < 0)
                return log_oom();
        if (want & WANT_ATTRIBUTES) {
                _cleanup_free_ char *u = NULL;
                ia = n;
                r = fetch_request_init(&reqs[n++], base, NULL, 0, BODY_YAML, false);
                if (r >= 0 && asprintf(&u, "%s/private-networks", base) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = fetch_request_init(&reqs[n++], u, NULL, 0, BODY_YAML, false);
        }
        if (r >= 0 && (want & WANT_HOSTNAME)) {
                _cleanup_free_ char *u = NULL;
                ih = n;
                if (asprintf(&u, "%s/hostname", base) < 0)
                        r = -ENOMEM;
                else
                        r = fetch_request_init(&reqs[n++], u, NULL, 0, BODY_RAW, false);
        }
        if (r >= 0 && (want & WANT_SSH_KEYS)) {
                _cleanup_free_ char *u = NULL;
                ik = n;
                if (asprintf(&u, "%s/public-keys", base) < 0)
                        r = -ENOMEM;
                else
                        r = fetch_request_init(&reqs[n++], u, NULL, 0, BODY_JSON, false);
        }
        if (r >= 0)
                r = fetch_many(&c->policy, reqs, n);
        if (r >= 0 && ia != SIZE_MAX)
                r = hetzner_parse_metadata(reqs[ia].json, reqs[ia + 1].json, m);
        if (r >= 0 && ih != SIZE_MAX)
                r = metadata_set_hostname(m, reqs[ih].data);
        if (r >= 0 && ik != SIZE_MAX)
                r = hetzner_parse_public_keys(reqs[ik].json, m);
        for (size_t i = 0; i < n; i++)
                fetch_request_done(&reqs[i]);
        return r;
}

const Provider provider_hetzner = {
        .name = "hetzner",
        .env_name = "HETZNER",
        .default_url = "http://169.254.169.254",
        .fetch = hetzner_fetch,
};
