/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Proxmox VE: a NoCloud "cidata" drive with user-data, meta-data, vendor-data and cloud-init v1
 * network-config (spec §5.19). Without the drive the provider gives nothing (a warning, not an error). */
#include <arpa/inet.h>

#include "log.h"
#include "metadata-agent-network.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"
#include "metadata-agent-yaml.h"

static int pve_bad(const char *what) {
        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Proxmox VE cloud-init data: %s.", what);
}

/* "a.b.c.d/n", or a bare address (/32, /128), or address + netmask, into canonical "ip/prefix". */
static int pve_address(const char *address, const char *netmask, char *ip, size_t ip_size, int *ret_family,
                       int *ret_prefix) {
        char buf[INET6_ADDRSTRLEN + 8];
        const char *slash;
        int family, prefix;
        uint32_t p;

        if (!address || strlen(address) >= sizeof(buf))
                return -EBADMSG;
        slash = strchr(address, '/');
        memcpy(buf, address, slash ? (size_t) (slash - address) : strlen(address) + 1);
        if (slash)
                buf[slash - address] = '\0';
        if (ip_canonical(0, buf, ip, ip_size, &family) < 0)
                return -EBADMSG;
        if (netmask) {
                prefix = netmask_prefix(netmask, strchr(netmask, ':') ? AF_INET6 : AF_INET);
                if (prefix < 0)
                        return -EBADMSG;
        } else if (slash) {
                if (safe_atou32(slash + 1, &p) < 0 || p > (family == AF_INET6 ? 128u : 32u))
                        return -EBADMSG;
                prefix = (int) p;
        } else
                prefix = family == AF_INET6 ? 128 : 32;
        *ret_family = family;
        *ret_prefix = prefix;
        return 0;
}

static void prefix_to_mask(int prefix, char buf[static INET_ADDRSTRLEN]) {
        struct in_addr a = { .s_addr = htonl(prefix == 0 ? 0 : 0xffffffffu << (32 - prefix)) };
        inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

typedef struct PveIface {
        NetIface net;
        int family[NET_MAX_ITEMS], prefix[NET_MAX_ITEMS];
        char ip[NET_MAX_ITEMS][INET6_ADDRSTRLEN];
} PveIface;

/* The physical entries of network-config as interfaces, the first one with the nameservers. */
static int pve_networks(json_t *netcfg, PveIface **ret, size_t *ret_n) {
        _cleanup_free_ PveIface *ifs = NULL;
        json_t *config = json_object_get(netcfg, "config"), *e, *ns_entry = NULL, *version = json_object_get(netcfg, "version");
        size_t i, n = 0, n_ns = 0;

        if (!json_is_object(netcfg) || !json_is_integer(version) || json_integer_value(version) < 0 || !json_is_array(config))
                return pve_bad("network-config lacks version or config");
        json_array_foreach(config, i, e) {
                const char *type;
                if (json_member_string(e, "type", &type) <= 0)
                        return pve_bad("a network-config entry has no type");
                if (streq(type, "nameserver")) {
                        ns_entry = e;
                        n_ns++;
                }
        }
        if (n_ns > 1)
                return pve_bad("too many nameserver entries, only one is supported");
        ifs = calloc(json_array_size(config) + 1, sizeof(PveIface));
        if (!ifs)
                return -ENOMEM;
        json_array_foreach(config, i, e) {
                const char *type, *name, *mac;
                json_t *subnets = json_object_get(e, "subnets"), *s;
                PveIface *pi;
                size_t k;

                (void) json_member_string(e, "type", &type);
                if (!streq(type, "physical"))
                        continue;
                pi = &ifs[n++];
                pi->net.priority = 20;
                if (json_member_string(e, "name", &name) < 0 || json_member_string(e, "mac_address", &mac) < 0)
                        return -EBADMSG;
                if (name)
                        snprintf(pi->net.name, sizeof(pi->net.name), "%s", name);
                if (mac && mac_canonical(mac, pi->net.mac) < 0)
                        return pve_bad("invalid mac_address");
                if (subnets && !json_is_null(subnets) && !json_is_array(subnets))
                        return pve_bad("subnets is not a list");
                json_array_foreach(subnets, k, s) {
                        const char *st, *addr, *mask, *gw;
                        if (json_member_string(s, "type", &st) <= 0)
                                return pve_bad("a subnet has no type");
                        if (json_member_string(s, "address", &addr) < 0 || json_member_string(s, "netmask", &mask) < 0 ||
                            json_member_string(s, "gateway", &gw) < 0)
                                return -EBADMSG;
                        if (strstr(st, "static")) {
                                size_t a = pi->net.n_addresses;
                                if (!addr)
                                        return pve_bad("a static subnet has no address");
                                if (a >= NET_MAX_ITEMS || pi->net.n_routes >= NET_MAX_ITEMS)
                                        return pve_bad("too many addresses");
                                if (pve_address(addr, mask, pi->ip[a], sizeof(pi->ip[a]), &pi->family[a], &pi->prefix[a]) < 0)
                                        return pve_bad("invalid static address or netmask");
                                {
                                        char cidr[sizeof(pi->net.addresses[0])];
                                        snprintf(cidr, sizeof(cidr), "%s/%d", pi->ip[a], pi->prefix[a]);
                                        memcpy(pi->net.addresses[a], cidr, sizeof(cidr));
                                }
                                pi->net.n_addresses++;
                                if (gw) {
                                        NetRoute *rt = &pi->net.routes[pi->net.n_routes];
                                        int gf;
                                        if (ip_canonical(0, gw, rt->gateway, sizeof(rt->gateway), &gf) < 0)
                                                return pve_bad("invalid gateway");
                                        snprintf(rt->destination, sizeof(rt->destination), "%s", gf == AF_INET6 ? "::/0" : "0.0.0.0/0");
                                        pi->net.n_routes++;
                                } else
                                        log_warning("Proxmox VE static subnet without gateway.");
                        }
                        if (streq(st, "dhcp") || streq(st, "dhcp4"))
                                pi->net.dhcp = "ipv4";
                        if (streq(st, "dhcp6"))
                                pi->net.dhcp = "ipv6";
                }
        }
        if (n > 0 && ns_entry) {
                json_t *addrs = json_object_get(ns_entry, "address"), *a;
                size_t k;
                if (addrs && !json_is_array(addrs))
                        return pve_bad("nameserver address is not a list");
                json_array_foreach(addrs, k, a) {
                        if (ifs[0].net.n_nameservers >= NET_MAX_ITEMS ||
                            ip_canonical(0, json_string_value(a), ifs[0].net.nameservers[ifs[0].net.n_nameservers],
                                         sizeof(ifs[0].net.nameservers[0]), NULL) < 0)
                                return pve_bad("invalid nameserver address");
                        ifs[0].net.n_nameservers++;
                }
        }
        *ret = TAKE_PTR(ifs);
        *ret_n = n;
        return 0;
}

char *proxmoxve_kargs(const PveIface *ifs, size_t n);
char *proxmoxve_kargs(const PveIface *ifs, size_t n) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        bool first = true;

        if (!f)
                return NULL;
#define SEP() (first ? (first = false, "") : " ")
        for (size_t i = 0; i < n; i++) {
                const PveIface *pi = &ifs[i];
                for (size_t a = 0; a < pi->net.n_addresses; a++) {
                        const char *gw = NULL;
                        bool v6 = pi->family[a] == AF_INET6;
                        char mask[INET_ADDRSTRLEN], pfx[8];

                        for (size_t r = 0; r < pi->net.n_routes && !gw; r++)
                                if (streq(pi->net.routes[r].destination, v6 ? "::/0" : "0.0.0.0/0"))
                                        gw = pi->net.routes[r].gateway;
                        if (v6)
                                snprintf(pfx, sizeof(pfx), "%d", pi->prefix[a]);
                        else
                                prefix_to_mask(pi->prefix[a], mask);
                        if (gw)
                                fprintf(f, "%sip=%s%s%s::%s%s%s:%s:::off", SEP(), v6 ? "[" : "", pi->ip[a], v6 ? "]" : "",
                                        v6 ? "[" : "", gw, v6 ? "]" : "", v6 ? pfx : mask);
                        else
                                fprintf(f, "%sip=%s%s%s:::%s:::off", SEP(), v6 ? "[" : "", pi->ip[a], v6 ? "]" : "",
                                        v6 ? pfx : mask);
                }
                if (pi->net.dhcp)
                        fprintf(f, "%sip=%s", SEP(), streq(pi->net.dhcp, "ipv4") ? "dhcp" :
                                                     streq(pi->net.dhcp, "ipv6") ? "dhcp6" : "dhcp,dhcp6");
                if (pi->net.n_nameservers > 0) {
                        fprintf(f, "%snameserver=", SEP());
                        for (size_t k = 0; k < pi->net.n_nameservers; k++)
                                fprintf(f, "%s%s", k ? "," : "", pi->net.nameservers[k]);
                }
        }
#undef SEP
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        if (isempty(buf))
                return mfree(buf);
        return buf;
}

int proxmoxve_parse(const char *user_data, json_t *meta, json_t *netcfg, unsigned want, Metadata *m, char **ret_kargs) {
        _cleanup_free_ PveIface *ifs = NULL;
        json_t *ud = NULL;
        const char *instance_id, *hostname = NULL, *fqdn = NULL;
        size_t n = 0;
        int r;

        if (json_member_string(meta, "instance-id", &instance_id) <= 0)
                return pve_bad("meta-data has no instance-id");
        if (user_data && startswith(user_data, "#cloud-config")) {
                static const char *const bools[] = { "manage_etc_hosts", "package_upgrade" };
                r = yaml_parse_json(user_data, strlen(user_data), &ud);
                if (r < 0)
                        return pve_bad("user-data is not valid YAML");
                if (json_member_string(ud, "hostname", &hostname) <= 0 || json_member_string(ud, "fqdn", &fqdn) <= 0)
                        r = pve_bad("user-data lacks hostname or fqdn");
                for (size_t b = 0; r >= 0 && b < ELEMENTSOF(bools); b++)
                        if (!json_is_boolean(json_object_get(ud, bools[b])))
                                r = pve_bad("user-data lacks manage_etc_hosts or package_upgrade");
                if (r >= 0 && (!json_is_array(json_object_get(ud, "users")) ||
                               !json_is_boolean(json_object_get(json_object_get(ud, "chpasswd"), "expire"))))
                        r = pve_bad("user-data lacks users or chpasswd.expire");
                if (r < 0) {
                        json_decref(ud);
                        return r;
                }
        } else
                log_warning("Proxmox VE user-data does not start with #cloud-config, ignoring it.");

        r = pve_networks(netcfg, &ifs, &n);
        if (r >= 0 && (want & WANT_ATTRIBUTES)) {
                r = metadata_set_attr(m, "PROXMOXVE_INSTANCE_ID", instance_id);
                if (r >= 0)
                        r = metadata_set_attr(m, "PROXMOXVE_HOSTNAME", hostname);
                for (size_t a = 0; n > 0 && r >= 0 && a < ifs[0].net.n_addresses; a++)
                        r = metadata_set_attr(m, ifs[0].family[a] == AF_INET6 ? "PROXMOXVE_IPV6" : "PROXMOXVE_IPV4", ifs[0].ip[a]);
        }
        if (r >= 0 && (want & WANT_HOSTNAME))
                r = metadata_set_hostname(m, hostname);
        if (r >= 0 && (want & WANT_SSH_KEYS)) {
                json_t *keys = json_object_get(ud, "ssh_authorized_keys"), *k;
                size_t i;
                m->ssh_keys_valid = true;
                if (keys && !json_is_array(keys))
                        r = pve_bad("ssh_authorized_keys is not a list");
                json_array_foreach(keys, i, k) {
                        if (r < 0)
                                break;
                        r = json_is_string(k) ? metadata_add_ssh_key(m, json_string_value(k), "Proxmox VE user-data")
                                              : pve_bad("an SSH key is not a string");
                }
        }
        for (size_t i = 0; r >= 0 && (want & WANT_NETWORK) && i < n; i++) {
                _cleanup_free_ char *name = net_iface_unit_name(&ifs[i].net), *cfg = net_iface_config(&ifs[i].net);
                r = name && cfg ? metadata_add_net_unit(m, name, cfg) : -ENOMEM;
        }
        if (r >= 0 && ret_kargs)
                *ret_kargs = proxmoxve_kargs(ifs, n);
        json_decref(ud);
        return r;
}

static int load_yaml(const char *dir, const char *name, json_t **ret) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = config_drive_read(dir, name, &data, &size);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s from the cidata drive: %m", name);
        r = yaml_parse_json(data, size, ret);
        if (r == -ENODATA) {
                *ret = json_object(); /* an empty document, as the empty vendor-data Proxmox writes */
                return *ret ? 0 : -ENOMEM;
        }
        if (r < 0)
                return log_error_errno(r, "Malformed YAML in %s.", name);
        return 0;
}

static int proxmoxve_load(ProviderContext *c, unsigned want, Metadata *m, char **ret_kargs) {
        _cleanup_free_ char *user_data = NULL, *dir = NULL;
        json_t *meta = NULL, *vendor = NULL, *net = NULL;
        int r;

        r = config_drive_open(c, &provider_proxmoxve, &dir);
        if (r == -ENODEV) {
                config_drive_log_missing(LOG_WARNING, &provider_proxmoxve);
                log_warning("Nothing to do.");
                return 0;
        }
        if (r < 0)
                return r;
        r = config_drive_read(dir, "user-data", &user_data, NULL);
        if (r < 0)
                log_error_errno(r, "Failed to read user-data from the cidata drive: %m");
        if (r >= 0)
                r = load_yaml(dir, "meta-data", &meta);
        if (r >= 0)
                r = load_yaml(dir, "vendor-data", &vendor);
        if (r >= 0)
                r = load_yaml(dir, "network-config", &net);
        if (r >= 0)
                r = proxmoxve_parse(user_data, meta, net, want, m, ret_kargs);
        json_decref(meta);
        json_decref(vendor);
        json_decref(net);
        return r;
}

static int proxmoxve_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        return proxmoxve_load(c, want, m, NULL);
}

static int proxmoxve_network_kargs(ProviderContext *c, char **ret) {
        Metadata m = {};
        int r;

        *ret = NULL;
        r = proxmoxve_load(c, 0, &m, ret);
        metadata_done(&m);
        return r;
}

const Provider provider_proxmoxve = {
        .name = "proxmoxve",
        .config_drive = &config_drive_proxmoxve,
        .fetch = proxmoxve_fetch,
        .network_kargs = proxmoxve_network_kargs,
        .network_units = true,
};
