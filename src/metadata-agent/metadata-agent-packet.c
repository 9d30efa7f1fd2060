/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Equinix Metal (packet): one JSON document over HTTPS, plus the first-boot phone-home (spec §5.6). */
#include <arpa/inet.h>

#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

static int bad(const char *what) {
        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Packet metadata: %s.", what);
}

/* Prints an address in canonical form (so "2604:1380::0" becomes "2604:1380::"). */
static int canonical_ip(int family, const char *s, char *buf, size_t size) {
        unsigned char a[16];

        if (inet_pton(family, s, a) != 1 || !inet_ntop(family, a, buf, (socklen_t) size))
                return -EBADMSG;
        return 0;
}

int packet_parse(json_t *doc, unsigned want, Metadata *m, char **ret_phone_home_url) {
        static const char *const strings[] = { "id", "hostname", "iqn", "plan", "facility", "phone_home_url" };
        unsigned counters[2][2] = {}; /* [v6][public] */
        json_t *net, *addrs, *a, *keys, *k;
        size_t i;
        int r;

        if (!json_is_object(doc))
                return bad("not a JSON object");
        for (size_t s = 0; s < ELEMENTSOF(strings); s++)
                if (!json_is_string(json_object_get(doc, strings[s])))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Packet metadata lacks string \"%s\".", strings[s]);
        if (!json_is_array(json_object_get(doc, "tags")))
                return bad("\"tags\" is not an array");
        keys = json_object_get(doc, "ssh_keys");
        if (!json_is_array(keys))
                return bad("\"ssh_keys\" is not an array");
        net = json_object_get(doc, "network");
        if (!json_is_object(net) || !json_is_array(json_object_get(net, "interfaces")) ||
            !json_is_object(json_object_get(net, "bonding")))
                return bad("\"network\" lacks interfaces or bonding");
        addrs = json_object_get(net, "addresses");
        if (!json_is_array(addrs))
                return bad("\"network.addresses\" is not an array");

        if (want & WANT_ATTRIBUTES) {
                json_array_foreach(addrs, i, a) {
                        json_t *fam = json_object_get(a, "address_family"), *pub = json_object_get(a, "public");
                        const char *addr, *gw;
                        char ca[INET6_ADDRSTRLEN], cg[INET6_ADDRSTRLEN];
                        bool v6, is_pub;
                        unsigned n;

                        if (!json_is_integer(fam) || (json_integer_value(fam) != 4 && json_integer_value(fam) != 6) ||
                            !json_is_boolean(pub))
                                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                                       "Packet metadata: address %zu has a bad address_family or public.", i);
                        v6 = json_integer_value(fam) == 6;
                        is_pub = json_is_true(pub);
                        if (json_member_string(a, "address", &addr) <= 0 || json_member_string(a, "gateway", &gw) <= 0 ||
                            canonical_ip(v6 ? AF_INET6 : AF_INET, addr, ca, sizeof(ca)) < 0 ||
                            canonical_ip(v6 ? AF_INET6 : AF_INET, gw, cg, sizeof(cg)) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                                       "Packet metadata: address %zu has a bad address or gateway.", i);
                        n = counters[v6][is_pub]++;
                        r = metadata_set_attrf(m, ca, "PACKET_IPV%c_%s_%u", v6 ? '6' : '4', is_pub ? "PUBLIC" : "PRIVATE", n);
                        if (r >= 0)
                                r = metadata_set_attrf(m, cg, "PACKET_IPV%c_%s_GATEWAY_%u", v6 ? '6' : '4',
                                                       is_pub ? "PUBLIC" : "PRIVATE", n);
                        if (r < 0)
                                return r;
                }
                r = metadata_set_attr(m, "PACKET_HOSTNAME", json_string_value(json_object_get(doc, "hostname")));
                if (r >= 0)
                        r = metadata_set_attr(m, "PACKET_PHONE_HOME_URL",
                                              json_string_value(json_object_get(doc, "phone_home_url")));
                if (r >= 0)
                        r = metadata_set_attr(m, "PACKET_PLAN", json_string_value(json_object_get(doc, "plan")));
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
                        if (!json_is_string(k))
                                return bad("an ssh_keys entry is not a string");
                        r = metadata_add_ssh_keys_text(m, json_string_value(k), false, "Packet ssh_keys");
                        if (r < 0)
                                return r;
                }
        }
        if (ret_phone_home_url) {
                *ret_phone_home_url = strdup(json_string_value(json_object_get(doc, "phone_home_url")));
                if (!*ret_phone_home_url)
                        return -ENOMEM;
        }
        return 0;
}

static int packet_get(ProviderContext *c, FetchRequest *req) {
        _cleanup_free_ char *base = provider_base(c, &provider_packet, "PACKET", provider_packet.default_url);
        _cleanup_free_ char *url = NULL;
        int r;

        if (!base || asprintf(&url, "%s/metadata", base) < 0)
                return log_oom();
        r = fetch_request_init(req, url, NULL, 0, BODY_JSON, false);
        if (r >= 0)
                r = fetch_one(&c->policy, req);
        return r;
}

static int packet_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        FetchRequest req = {};
        int r = packet_get(c, &req);
        if (r >= 0)
                r = packet_parse(req.json, want, m, NULL);
        fetch_request_done(&req);
        return r;
}

static int packet_check_in(ProviderContext *c) {
        _cleanup_free_ char *url = NULL;
        FetchRequest req = {}, post = {};
        Metadata m = {};
        int r;

        r = packet_get(c, &req);
        if (r >= 0)
                r = packet_parse(req.json, 0, &m, &url);
        if (r >= 0)
                r = fetch_request_init(&post, url, NULL, 0, BODY_RAW, false);
        if (r >= 0) {
                post.method = "POST";
                post.body = "";
                post.content_type = "application/json";
                r = fetch_one(&c->policy, &post);
        }
        if (r >= 0)
                log_info("Phoned home to %s.", url);
        fetch_request_done(&req);
        fetch_request_done(&post);
        metadata_done(&m);
        return r;
}

const Provider provider_packet = {
        .name = "packet",
        .env_name = "PACKET",
        .default_url = "https://metadata.packet.net",
        .fetch = packet_fetch,
        .check_in = packet_check_in,
        .has_network_config = true,
};
