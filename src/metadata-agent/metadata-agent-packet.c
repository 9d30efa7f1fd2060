/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Equinix Metal (packet): one JSON document over HTTPS, plus the first-boot phone-home (spec §5.6). */
#include <arpa/inet.h>

#include "fileio.h"
#include "log.h"
#include "metadata-agent-network.h"
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

static const char *const bonding_modes[] = {
        "balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb",
};

/* Network units: every NIC with a "bond" joins that bond (RequiredForOnline=no), NICs without one are
 * unmanaged; all addresses go on the first bond with routes (private IPv4 → 10.0.0.0/8, public IPv4 →
 * 0.0.0.0/0, IPv6 → ::/0); each bond gets a netdev with afterburn's [Bond] settings; a catch-all for
 * pci-* NICs (priority 80) is unmanaged. DNS comes from networkd's state (dns, space-separated). */
static int packet_network(json_t *net, const char *dns, Metadata *m) {
        json_t *ifaces = json_object_get(net, "interfaces"), *addrs = json_object_get(net, "addresses"), *e;
        json_t *mode = json_object_get(json_object_get(net, "bonding"), "mode");
        _cleanup_free_ NetIface *nis = NULL;
        _cleanup_free_ NetBond *bonds = NULL;
        size_t n_nis = 0, n_bonds = 0, i;
        NetIface dns_ifc = {};
        int r = 0;

        if (!json_is_integer(mode) || json_integer_value(mode) < 0 ||
            json_integer_value(mode) >= (json_int_t) ELEMENTSOF(bonding_modes))
                return bad("network.bonding.mode is not a bonding mode (0-6)");
        if (isempty(dns))
                return log_error_errno(SYNTHETIC_ERRNO(ENOENT), "No DNS servers in networkd's state file.");
        for (const char *p = dns; *p;) {
                size_t l = strcspn(p, " ");
                char ip[64];
                if (l == 0 || l >= sizeof(ip) || dns_ifc.n_nameservers >= NET_MAX_ITEMS)
                        return bad("bad DNS list in networkd's state file");
                memcpy(ip, p, l);
                ip[l] = '\0';
                if (ip_canonical(0, ip, dns_ifc.nameservers[dns_ifc.n_nameservers++], sizeof(dns_ifc.nameservers[0]), NULL) < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "DNS server %s in networkd's state file is not an address.", ip);
                p += l + (p[l] == ' ');
        }
        nis = calloc(json_array_size(ifaces) * 2 + 2, sizeof(NetIface));
        bonds = calloc(json_array_size(ifaces) + 1, sizeof(NetBond));
        if (!nis || !bonds)
                return -ENOMEM;
        json_array_foreach(ifaces, i, e) {
                const char *mac, *name, *bond = NULL;
                NetIface *ni = &nis[n_nis++];

                if (json_member_string(e, "mac", &mac) <= 0 || json_member_string(e, "name", &name) <= 0 ||
                    json_member_string(e, "bond", &bond) < 0)
                        return bad("an interface lacks name or mac");
                ni->priority = 10;
                if (mac_canonical(mac, ni->mac) < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Packet metadata: bad MAC address %s.", mac);
                if (!bond) {
                        ni->unmanaged = true;
                        continue;
                }
                if (strlen(bond) >= sizeof(ni->bond) || strchr(bond, '/') || bond[0] == '.')
                        return bad("bad bond name");
                snprintf(ni->bond, sizeof(ni->bond), "%s", bond);
                ni->required_for_online = "no";
                bool known = false;
                for (size_t b = 0; b < n_bonds; b++)
                        known = known || streq(bonds[b].name, bond);
                if (!known) {
                        NetBond *nb = &bonds[n_bonds++];
                        snprintf(nb->name, sizeof(nb->name), "%s", bond);
                        memcpy(nb->mac, ni->mac, sizeof(nb->mac));
                        nb->priority = 10;
                }
        }
        for (size_t b = 0; b < n_bonds; b++) {
                NetIface *bi = &nis[n_nis++];
                *bi = dns_ifc;
                bi->priority = 10;
                snprintf(bi->name, sizeof(bi->name), "%s", bonds[b].name);
                bi->required_for_online = "degraded-carrier";
                if (b > 0)
                        continue;
                json_array_foreach(addrs, i, e) {
                        const char *addr, *mask, *gw;
                        char ca[INET6_ADDRSTRLEN], cg[INET6_ADDRSTRLEN];
                        int fam, prefix;
                        NetRoute *rt;

                        if (json_member_string(e, "address", &addr) <= 0 || json_member_string(e, "netmask", &mask) <= 0 ||
                            json_member_string(e, "gateway", &gw) <= 0 || ip_canonical(0, addr, ca, sizeof(ca), &fam) < 0 ||
                            ip_canonical(fam, gw, cg, sizeof(cg), NULL) < 0 || (prefix = netmask_prefix(mask, fam)) < 0)
                                return bad("an address has a bad address, netmask or gateway");
                        if (bi->n_addresses >= NET_MAX_ITEMS)
                                return bad("too many addresses");
                        snprintf(bi->addresses[bi->n_addresses++], sizeof(bi->addresses[0]), "%s/%d", ca, prefix);
                        rt = &bi->routes[bi->n_routes++];
                        snprintf(rt->destination, sizeof(rt->destination), "%s",
                                 fam == AF_INET6 ? "::/0" : json_is_true(json_object_get(e, "public")) ? "0.0.0.0/0" : "10.0.0.0/8");
                        snprintf(rt->gateway, sizeof(rt->gateway), "%s", cg);
                }
        }
        if (n_bonds == 0)
                log_warning("Packet metadata lists no bonded interface, addresses are left unassigned.");
        else {
                NetIface *pci = &nis[n_nis++];
                pci->priority = 80;
                snprintf(pci->path, sizeof(pci->path), "pci-*");
                pci->unmanaged = true;
        }
        for (i = 0; i < n_bonds && r >= 0; i++) {
                NetBond *nb = &bonds[i];
                nb->attrs[nb->n_attrs][0] = "TransmitHashPolicy", nb->attrs[nb->n_attrs++][1] = "layer3+4";
                nb->attrs[nb->n_attrs][0] = "MIIMonitorSec", nb->attrs[nb->n_attrs++][1] = ".1";
                nb->attrs[nb->n_attrs][0] = "UpDelaySec", nb->attrs[nb->n_attrs++][1] = ".2";
                nb->attrs[nb->n_attrs][0] = "DownDelaySec", nb->attrs[nb->n_attrs++][1] = ".2";
                nb->attrs[nb->n_attrs][0] = "Mode", nb->attrs[nb->n_attrs++][1] = bonding_modes[json_integer_value(mode)];
                if (json_integer_value(mode) == 4)
                        nb->attrs[nb->n_attrs][0] = "LACPTransmitRate", nb->attrs[nb->n_attrs++][1] = "fast";
                _cleanup_free_ char *name = net_bond_unit_name(nb), *cfg = net_bond_config(nb);
                r = name && cfg ? metadata_add_net_unit(m, name, cfg) : -ENOMEM;
        }
        for (i = 0; i < n_nis && r >= 0; i++) {
                _cleanup_free_ char *name = net_iface_unit_name(&nis[i]), *cfg = net_iface_config(&nis[i]);
                r = name && cfg ? metadata_add_net_unit(m, name, cfg) : -ENOMEM;
        }
        return r;
}

int packet_parse(json_t *doc, const char *dns, unsigned want, Metadata *m, char **ret_phone_home_url) {
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
        if (want & WANT_NETWORK) {
                r = packet_network(net, dns, m);
                if (r < 0)
                        return r;
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

/* The DNS= line of systemd-networkd's state file (SWITCHYARD_METADATA_NETIF_STATE overrides the path). */
static int packet_dns(char **ret) {
        const char *path = getenv("SWITCHYARD_METADATA_NETIF_STATE") ?: "/run/systemd/netif/state";
        _cleanup_free_ char *data = NULL;
        int r;

        r = read_full_file(path, 64 * 1024, &data, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s for the DNS servers: %m", path);
        for (char *p = data; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (startswith(p, "DNS=")) {
                        *ret = strndup(p + 4, strcspn(p + 4, "\n"));
                        return *ret ? 0 : -ENOMEM;
                }
        *ret = NULL;
        return 0;
}

static int packet_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *dns = NULL;
        FetchRequest req = {};
        int r = 0;

        if (want & WANT_NETWORK)
                r = packet_dns(&dns);
        if (r >= 0)
                r = packet_get(c, &req);
        if (r >= 0)
                r = packet_parse(req.json, dns, want, m, NULL);
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
                r = packet_parse(req.json, NULL, 0, &m, &url);
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
        .network_units = true,
};
