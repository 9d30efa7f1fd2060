/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DigitalOcean: one JSON document, /metadata/v1.json (spec §5.5). */
#include <arpa/inet.h>

#include "log.h"
#include "metadata-agent-network.h"
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

/* One "ipv4"/"ipv6"/"anchor_ipv4" object: ip_address and gateway are required IP addresses of the
 * right family; netmask (IPv4) or cidr (IPv6) is needed only for the network units. */
typedef struct DoAddress {
        bool present;
        char ip[INET6_ADDRSTRLEN], gateway[INET6_ADDRSTRLEN];
        int prefix; /* -1 if the prefix is missing */
} DoAddress;

static int do_address(json_t *iface, const char *field, int family, DoAddress *ret) {
        json_t *a = json_object_get(iface, field), *cidr;
        const char *ip, *gw, *mask;

        *ret = (DoAddress) { .prefix = -1 };
        if (!a || json_is_null(a))
                return 0;
        if (json_member_string(a, "ip_address", &ip) <= 0 || json_member_string(a, "gateway", &gw) <= 0 ||
            ip_canonical(family, ip, ret->ip, sizeof(ret->ip), NULL) < 0 ||
            ip_canonical(0, gw, ret->gateway, sizeof(ret->gateway), NULL) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                       "DigitalOcean %s has no valid ip_address or gateway.", field);
        if (family == AF_INET) {
                if (json_member_string(a, "netmask", &mask) < 0)
                        return -EBADMSG;
                if (mask && (ret->prefix = netmask_prefix(mask, AF_INET)) < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean %s has an invalid netmask.", field);
        } else {
                cidr = json_object_get(a, "cidr");
                if (cidr && !json_is_null(cidr)) {
                        if (!json_is_integer(cidr) || json_integer_value(cidr) < 0 || json_integer_value(cidr) > 128)
                                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean %s has an invalid cidr.", field);
                        ret->prefix = (int) json_integer_value(cidr);
                }
        }
        ret->present = true;
        return 0;
}

static int net_add_address(NetIface *ni, const DoAddress *a, bool default_route, const char *field) {
        if (a->prefix < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean %s lacks its netmask or cidr.", field);
        if (ni->n_addresses >= NET_MAX_ITEMS || ni->n_routes + 2 > NET_MAX_ITEMS)
                return log_error_errno(SYNTHETIC_ERRNO(E2BIG), "Too many DigitalOcean addresses on one interface.");
        snprintf(ni->addresses[ni->n_addresses++], sizeof(ni->addresses[0]), "%s/%d", a->ip, a->prefix);
        NetRoute *r = &ni->routes[ni->n_routes++];
        snprintf(r->destination, sizeof(r->destination), "%s/%d", a->ip, a->prefix);
        snprintf(r->gateway, sizeof(r->gateway), "%s", a->gateway);
        if (default_route) {
                r = &ni->routes[ni->n_routes++];
                snprintf(r->destination, sizeof(r->destination), "%s", strchr(a->ip, ':') ? "::/0" : "0.0.0.0/0");
                snprintf(r->gateway, sizeof(r->gateway), "%s", a->gateway);
        }
        return 0;
}

typedef struct DoNet {
        NetIface *ifaces;
        size_t n;
} DoNet;

static int do_interfaces(json_t *ifaces, const char *kind, json_t *dns, unsigned want, Metadata *m, DoNet *net) {
        json_t *list = json_object_get(ifaces, kind), *e;
        size_t i;
        int r;

        if (!list || json_is_null(list))
                return 0;
        if (!json_is_array(list))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean interfaces.%s is not an array.", kind);
        json_array_foreach(list, i, e) {
                DoAddress v4, v6, anchor;
                const char *mac, *type;
                char cmac[18];

                if (!json_is_object(e))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean interfaces.%s[%zu] is not an object.",
                                               kind, i);
                if (json_member_string(e, "mac", &mac) <= 0 || json_member_string(e, "type", &type) <= 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean interfaces.%s[%zu] lacks mac or type.",
                                               kind, i);
                if ((r = do_address(e, "ipv4", AF_INET, &v4)) < 0 || (r = do_address(e, "ipv6", AF_INET6, &v6)) < 0 ||
                    (r = do_address(e, "anchor_ipv4", AF_INET, &anchor)) < 0)
                        return r;

                if (want & WANT_ATTRIBUTES) {
                        bool pub = streq(kind, "public");
                        if (v4.present && (r = metadata_set_attrf(m, v4.ip, "DIGITALOCEAN_IPV4_%s_%zu", pub ? "PUBLIC" : "PRIVATE", i)) < 0)
                                return r;
                        if (v6.present && (r = metadata_set_attrf(m, v6.ip, "DIGITALOCEAN_IPV6_%s_%zu", pub ? "PUBLIC" : "PRIVATE", i)) < 0)
                                return r;
                        if (pub && anchor.present && (r = metadata_set_attrf(m, anchor.ip, "DIGITALOCEAN_IPV4_ANCHOR_%zu", i)) < 0)
                                return r;
                }
                if (!(want & WANT_NETWORK))
                        continue;

                /* One unit per MAC address; a MAC listed twice gets the new addresses first, then the old. */
                NetIface ni = { .priority = 10 }, *existing = NULL;
                bool is_public = streq(type, "public");
                size_t k;
                json_t *ns;

                if (mac_canonical(mac, cmac) < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean interface MAC %s is invalid.", mac);
                memcpy(ni.mac, cmac, sizeof(cmac));
                json_array_foreach(json_object_get(dns, "nameservers"), k, ns) {
                        if (ni.n_nameservers >= NET_MAX_ITEMS)
                                break;
                        (void) ip_canonical(0, json_string_value(ns), ni.nameservers[ni.n_nameservers++],
                                            sizeof(ni.nameservers[0]), NULL);
                }
                if (v4.present && (r = net_add_address(&ni, &v4, is_public, "ipv4")) < 0)
                        return r;
                if (v6.present && (r = net_add_address(&ni, &v6, is_public, "ipv6")) < 0)
                        return r;
                if (anchor.present && (r = net_add_address(&ni, &anchor, false, "anchor_ipv4")) < 0)
                        return r;
                for (k = 0; k < net->n; k++)
                        if (streq(net->ifaces[k].mac, cmac))
                                existing = &net->ifaces[k];
                if (existing) {
                        if (ni.n_addresses + existing->n_addresses > NET_MAX_ITEMS ||
                            ni.n_routes + existing->n_routes > NET_MAX_ITEMS)
                                return log_error_errno(SYNTHETIC_ERRNO(E2BIG), "Too many DigitalOcean addresses on one interface.");
                        memcpy(ni.addresses[ni.n_addresses], existing->addresses, existing->n_addresses * sizeof(ni.addresses[0]));
                        ni.n_addresses += existing->n_addresses;
                        memcpy(&ni.routes[ni.n_routes], existing->routes, existing->n_routes * sizeof(NetRoute));
                        ni.n_routes += existing->n_routes;
                        *existing = ni;
                } else {
                        NetIface *nv = reallocarray(net->ifaces, net->n + 1, sizeof(NetIface));
                        if (!nv)
                                return -ENOMEM;
                        net->ifaces = nv;
                        net->ifaces[net->n++] = ni;
                }
        }
        return 0;
}

int digitalocean_parse(json_t *doc, unsigned want, Metadata *m) {
        const char *hostname, *region;
        json_t *keys, *ifaces, *k, *dns;
        DoNet net = {};
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
        dns = json_object_get(doc, "dns");
        json_array_foreach(json_object_get(dns, "nameservers"), i, k) {
                char buf[INET6_ADDRSTRLEN];
                if (ip_canonical(0, json_string_value(k), buf, sizeof(buf), NULL) < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean dns.nameservers[%zu] is not an address.", i);
        }
        if (!json_is_array(json_object_get(dns, "nameservers")))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DigitalOcean dns.nameservers is not an array.");

        if (want & WANT_ATTRIBUTES) {
                r = metadata_set_attr(m, "DIGITALOCEAN_HOSTNAME", hostname);
                if (r >= 0)
                        r = metadata_set_attr(m, "DIGITALOCEAN_REGION", region);
                if (r < 0)
                        return r;
        }
        r = do_interfaces(ifaces, "public", dns, want, m, &net);
        if (r >= 0)
                r = do_interfaces(ifaces, "private", dns, want, m, &net);
        for (size_t x = 0; x < net.n && r >= 0; x++) {
                _cleanup_free_ char *name = net_iface_unit_name(&net.ifaces[x]), *cfg = net_iface_config(&net.ifaces[x]);
                r = name && cfg ? metadata_add_net_unit(m, name, cfg) : -ENOMEM;
        }
        free(net.ifaces);
        if (r < 0)
                return r;
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
                        r = metadata_add_ssh_key(m, json_string_value(k), "DigitalOcean public_keys");
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
        .network_units = true,
};
