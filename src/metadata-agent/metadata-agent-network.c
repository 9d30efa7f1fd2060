/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>

#include "metadata-agent-network.h"

int ip_canonical(int family, const char *s, char *buf, size_t size, int *ret_family) {
        unsigned char a[16];
        int f = family;

        if (!s)
                return -EBADMSG;
        if (f == 0)
                f = strchr(s, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(f, s, a) != 1 || !inet_ntop(f, a, buf, (socklen_t) size))
                return -EBADMSG;
        if (ret_family)
                *ret_family = f;
        return 0;
}

int netmask_prefix(const char *netmask, int family) {
        unsigned char a[16];
        size_t n = family == AF_INET6 ? 16 : 4;
        int prefix = 0;
        bool zero = false;

        if (!netmask || inet_pton(family, netmask, a) != 1)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++)
                for (int b = 7; b >= 0; b--) {
                        bool set = a[i] & (1u << b);
                        if (set && zero)
                                return -EBADMSG;
                        if (set)
                                prefix++;
                        else
                                zero = true;
                }
        return prefix;
}

int mac_canonical(const char *s, char ret[static 18]) {
        unsigned v[6];
        char end;

        if (!s || strlen(s) != 17 ||
            sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
                return -EBADMSG;
        for (size_t i = 0; i < 17; i++)
                if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char) s[i]))
                        return -EBADMSG;
        snprintf(ret, 18, "%02x:%02x:%02x:%02x:%02x:%02x", v[0], v[1], v[2], v[3], v[4], v[5]);
        return 0;
}

char *net_iface_unit_name(const NetIface *i) {
        char *s;
        const char *name = i->name[0] ? i->name : i->mac[0] ? i->mac : i->path;

        if (!name[0] || asprintf(&s, "%02u-%s.network", i->priority, name) < 0)
                return NULL;
        return s;
}

char *net_iface_config(const NetIface *i) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        fputs("[Match]\n", f);
        if (i->name[0])
                fprintf(f, "Name=%s\n", i->name);
        if (i->mac[0])
                fprintf(f, "MACAddress=%s\n", i->mac);
        if (i->path[0])
                fprintf(f, "Path=%s\n", i->path);
        fputs("\n[Network]\n", f);
        if (i->dhcp)
                fprintf(f, "DHCP=%s\n", i->dhcp);
        for (size_t k = 0; k < i->n_nameservers; k++)
                fprintf(f, "DNS=%s\n", i->nameservers[k]);
        if (i->bond[0])
                fprintf(f, "Bond=%s\n", i->bond);
        if (i->unmanaged || i->required_for_online)
                fputs("\n[Link]\n", f);
        if (i->unmanaged)
                fputs("Unmanaged=yes\n", f);
        if (i->required_for_online)
                fprintf(f, "RequiredForOnline=%s\n", i->required_for_online);
        for (size_t k = 0; k < i->n_addresses; k++)
                fprintf(f, "\n[Address]\nAddress=%s\n", i->addresses[k]);
        for (size_t k = 0; k < i->n_routes; k++)
                fprintf(f, "\n[Route]\nDestination=%s\nGateway=%s\n", i->routes[k].destination, i->routes[k].gateway);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

char *net_bond_unit_name(const NetBond *b) {
        char *s;
        if (asprintf(&s, "%02u-%s.netdev", b->priority, b->name) < 0)
                return NULL;
        return s;
}

char *net_bond_config(const NetBond *b) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        fprintf(f, "[NetDev]\nName=%s\nKind=bond\nMACAddress=%s\n", b->name, b->mac);
        fputs("\n[Bond]\n", f);
        for (size_t k = 0; k < b->n_attrs; k++)
                fprintf(f, "%s=%s\n", b->attrs[k][0], b->attrs[k][1]);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
