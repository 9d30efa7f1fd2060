/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Oracle Cloud: /opc/v2/instance with "Authorization: Bearer Oracle" (spec §5.17, 5.10.0 semantics:
 * every value of "metadata" must be a string). */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

int oraclecloud_parse(json_t *doc, unsigned want, Metadata *m) {
        static const struct {
                const char *key, *field;
        } fields[] = {
                { "ORACLECLOUD_AVAILABILITY_DOMAIN", "availabilityDomain" },
                { "ORACLECLOUD_COMPARTMENT_ID", "compartmentId" },
                { "ORACLECLOUD_FAULT_DOMAIN", "faultDomain" },
                { "ORACLECLOUD_HOSTNAME", "hostname" },
                { "ORACLECLOUD_INSTANCE_ID", "id" },
                { "ORACLECLOUD_INSTANCE_SHAPE", "shape" },
                { "ORACLECLOUD_REGION_ID", "canonicalRegionName" },
        };
        const char *values[ELEMENTSOF(fields)], *key, *keys = NULL;
        json_t *md, *v;
        int r;

        if (!json_is_object(doc))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Oracle Cloud instance document is not a JSON object.");
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                r = json_member_string(doc, fields[i].field, &values[i]);
                if (r < 0)
                        return r;
                if (r == 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Oracle Cloud instance document lacks \"%s\".",
                                               fields[i].field);
        }
        md = json_object_get(doc, "metadata");
        if (md && !json_is_null(md)) {
                if (!json_is_object(md))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Oracle Cloud \"metadata\" is not an object.");
                json_object_foreach(md, key, v)
                        if (!json_is_string(v) && !(streq(key, "ssh_authorized_keys") && json_is_null(v)))
                                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                                       "Oracle Cloud metadata value \"%s\" is not a string.", key);
                r = json_member_string(md, "ssh_authorized_keys", &keys);
                if (r < 0)
                        return r;
        }
        if (want & WANT_ATTRIBUTES)
                for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                        r = metadata_set_attr(m, fields[i].key, values[i]);
                        if (r < 0)
                                return r;
                }
        if (want & WANT_HOSTNAME) {
                r = metadata_set_hostname(m, values[3]);
                if (r < 0)
                        return r;
        }
        if (want & WANT_SSH_KEYS) {
                m->ssh_keys_valid = true;
                if (keys)
                        return metadata_add_ssh_keys_text(m, keys, false, "Oracle Cloud metadata.ssh_authorized_keys");
        }
        return 0;
}

static int oraclecloud_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        static const HttpHeader h[] = { { "Authorization", "Bearer Oracle" } };
        _cleanup_free_ char *base = provider_base(c, &provider_oraclecloud, "ORACLECLOUD", provider_oraclecloud.default_url);
        _cleanup_free_ char *url = NULL;
        FetchRequest req;
        int r;

        if (!base || asprintf(&url, "%s/opc/v2/instance", base) < 0)
                return log_oom();
        r = fetch_request_init(&req, url, h, 1, BODY_JSON, false);
        if (r >= 0)
                r = fetch_one(&c->policy, &req);
        if (r >= 0)
                r = oraclecloud_parse(req.json, want, m);
        fetch_request_done(&req);
        return r;
}

const Provider provider_oraclecloud = {
        .name = "oraclecloud",
        .env_name = "ORACLECLOUD",
        .default_url = "http://169.254.169.254",
        .fetch = oraclecloud_fetch,
};
