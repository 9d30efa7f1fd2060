/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Akamai / Linode: token PUT /v1/token, then /v1/instance, /v1/network, /v1/ssh-keys (spec §5.16). */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

static int akamai_bad(const char *what) {
        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Akamai metadata: %s.", what);
}

int akamai_parse_instance(json_t *doc, Metadata *m) {
        json_t *id, *tags, *t, *specs, *backups;
        const char *hu, *label, *region, *type;
        _cleanup_free_ char *joined = NULL, *ids = NULL;
        size_t i, len = 0;
        int r;

        if (!json_is_object(doc))
                return akamai_bad("instance is not a JSON object");
        id = json_object_get(doc, "id");
        tags = json_object_get(doc, "tags");
        specs = json_object_get(doc, "specs");
        backups = json_object_get(doc, "backups");
        if (!json_is_integer(id) || !json_is_array(tags) || !json_is_object(specs) || !json_is_object(backups))
                return akamai_bad("instance lacks id, tags, specs or backups");
        if (json_member_string(doc, "host_uuid", &hu) <= 0 || json_member_string(doc, "label", &label) <= 0 ||
            json_member_string(doc, "region", &region) <= 0 || json_member_string(doc, "type", &type) <= 0)
                return akamai_bad("instance lacks host_uuid, label, region or type");
        static const char *const spec_fields[] = { "vcpus", "memory", "disk", "transfer", "gpus" };
        for (i = 0; i < ELEMENTSOF(spec_fields); i++)
                if (!json_is_integer(json_object_get(specs, spec_fields[i])))
                        return akamai_bad("instance specs are incomplete");
        if (!json_is_boolean(json_object_get(backups, "enabled")))
                return akamai_bad("instance backups.enabled is not a boolean");
        json_array_foreach(tags, i, t) {
                if (!json_is_string(t))
                        return akamai_bad("a tag is not a string");
                len += strlen(json_string_value(t)) + 1;
        }
        joined = calloc(len + 1, 1);
        if (!joined)
                return -ENOMEM;
        json_array_foreach(tags, i, t) {
                if (i > 0)
                        strcat(joined, ":");
                strcat(joined, json_string_value(t));
        }
        if (asprintf(&ids, "%" JSON_INTEGER_FORMAT, json_integer_value(id)) < 0)
                return -ENOMEM;
        r = metadata_set_attr(m, "AKAMAI_INSTANCE_ID", ids);
        if (r >= 0)
                r = metadata_set_attr(m, "AKAMAI_INSTANCE_HOST_UUID", hu);
        if (r >= 0)
                r = metadata_set_attr(m, "AKAMAI_INSTANCE_LABEL", label);
        if (r >= 0)
                r = metadata_set_attr(m, "AKAMAI_INSTANCE_REGION", region);
        if (r >= 0)
                r = metadata_set_attr(m, "AKAMAI_INSTANCE_TYPE", type);
        if (r >= 0)
                r = metadata_set_attr(m, "AKAMAI_INSTANCE_TAGS", joined);
        return r;
}

static int akamai_list(json_t *parent, const char *field, const char *prefix, Metadata *m) {
        json_t *list = json_object_get(parent, field), *e;
        size_t i;

        if (!json_is_array(list))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Akamai network \"%s\" is not an array.", field);
        json_array_foreach(list, i, e) {
                int r;
                if (!json_is_string(e))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Akamai network \"%s\" has a non-string.", field);
                r = metadata_set_attrf(m, json_string_value(e), "%s_%zu", prefix, i);
                if (r < 0)
                        return r;
        }
        return 0;
}

int akamai_parse_network(json_t *doc, Metadata *m) {
        json_t *v4 = json_object_get(doc, "ipv4"), *v6 = json_object_get(doc, "ipv6");
        const char *slaac, *ll;
        int r;

        if (!json_is_object(doc) || !json_is_object(v4) || !json_is_object(v6))
                return akamai_bad("network lacks ipv4 or ipv6");
        r = akamai_list(v4, "public", "AKAMAI_PUBLIC_IPV4", m);
        if (r >= 0)
                r = akamai_list(v4, "private", "AKAMAI_PRIVATE_IPV4", m);
        if (r >= 0)
                r = akamai_list(v4, "shared", "AKAMAI_SHARED_IPV4", m);
        if (r >= 0)
                r = akamai_list(v6, "ranges", "AKAMAI_IPV6_RANGE", m);
        if (r >= 0)
                r = akamai_list(v6, "shared_ranges", "AKAMAI_IPV6_SHARED_RANGE", m);
        if (r < 0)
                return r;
        if (json_member_string(v6, "slaac", &slaac) < 0 || json_member_string(v6, "link_local", &ll) < 0)
                return -EBADMSG;
        r = metadata_set_attr(m, "AKAMAI_IPV6_SLAAC", slaac);
        if (r >= 0)
                r = metadata_set_attr(m, "AKAMAI_IPV6_LINK_LOCAL", ll);
        return r;
}

int akamai_parse_ssh_keys(json_t *doc, Metadata *m) {
        json_t *users = json_object_get(doc, "users"), *keys, *k;
        const char *user;
        size_t i;

        if (!json_is_object(users))
                return akamai_bad("ssh-keys lacks \"users\"");
        m->ssh_keys_valid = true;
        json_object_foreach(users, user, keys) {
                if (json_is_null(keys))
                        continue;
                if (!json_is_array(keys))
                        return akamai_bad("a user's key list is not an array");
                json_array_foreach(keys, i, k) {
                        int r;
                        if (!json_is_string(k))
                                return akamai_bad("a key is not a string");
                        r = metadata_add_ssh_keys_text(m, json_string_value(k), false, "Akamai ssh-keys");
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int akamai_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        static const HttpHeader expiry = { "Metadata-Token-Expiry-Seconds", "300" };
        _cleanup_free_ char *base = provider_base(c, &provider_akamai, "AKAMAI", provider_akamai.default_url);
        _cleanup_free_ char *url = NULL, *token = NULL;
        FetchRequest tok, reqs[3] = {};
        HttpHeader h[2];
        size_t n = 0;
        int r;

        if (!base || asprintf(&url, "%s/v1/token", base) < 0)
                return log_oom();
        r = fetch_request_init(&tok, url, &expiry, 1, BODY_RAW, false);
        if (r >= 0) {
                tok.method = "PUT";
                tok.content_type = "text/plain; charset=utf-8";
                r = fetch_one(&c->policy, &tok);
        }
        if (r >= 0 && (isempty(tok.data) || strpbrk(tok.data, "\r\n")))
                r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Akamai metadata token is empty or not one line.");
        if (r >= 0)
                token = TAKE_PTR(tok.data);
        fetch_request_done(&tok);
        if (r < 0)
                return log_error_errno(r, "Could not get an Akamai metadata token: %m");
        h[0] = (HttpHeader) { "Metadata-Token", token };
        h[1] = (HttpHeader) { "Accept", "application/json" };

        static const char *const paths[] = { "v1/instance", "v1/network", "v1/ssh-keys" };
        size_t which[3];
        for (size_t i = 0; i < 3 && r >= 0; i++) {
                _cleanup_free_ char *u = NULL;
                if ((i < 2 && !(want & WANT_ATTRIBUTES)) || (i == 2 && !(want & WANT_SSH_KEYS)))
                        continue;
                if (asprintf(&u, "%s/%s", base, paths[i]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = fetch_request_init(&reqs[n], u, h, 2, BODY_JSON, true);
                which[n++] = i;
        }
        if (r >= 0)
                r = fetch_many(&c->policy, reqs, n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                if (!reqs[i].found)
                        continue;
                if (which[i] == 0)
                        r = akamai_parse_instance(reqs[i].json, m);
                else if (which[i] == 1)
                        r = akamai_parse_network(reqs[i].json, m);
                else
                        r = akamai_parse_ssh_keys(reqs[i].json, m);
        }
        if (want & WANT_SSH_KEYS)
                m->ssh_keys_valid = true;
        for (size_t i = 0; i < n; i++)
                fetch_request_done(&reqs[i]);
        return r;
}

const Provider provider_akamai = {
        .name = "akamai",
        .env_name = "AKAMAI",
        .default_url = "http://169.254.169.254",
        .fetch = akamai_fetch,
};
