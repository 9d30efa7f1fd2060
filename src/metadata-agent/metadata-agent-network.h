/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* systemd-networkd configuration in afterburn's layout: "<priority:02>-<name>.network" files with
 * [Match], [Network], optional [Link], then one [Address] per address and one [Route] per route. */

#include "macro.h"

#define NET_MAX_ITEMS 64

typedef struct NetRoute {
        char destination[64]; /* "ip/prefix" */
        char gateway[48];
} NetRoute;

typedef struct NetIface {
        char name[32];        /* may be empty */
        char mac[18];         /* lower-case aa:bb:cc:dd:ee:ff, may be empty */
        char path[32];        /* [Match] Path=, may be empty */
        char bond[32];        /* [Network] Bond=, may be empty */
        bool unmanaged;
        const char *required_for_online; /* NULL or an operational state */
        unsigned priority;
        const char *dhcp;     /* NULL, "ipv4", "ipv6" or "yes" */
        char nameservers[NET_MAX_ITEMS][48];
        size_t n_nameservers;
        char addresses[NET_MAX_ITEMS][64];
        size_t n_addresses;
        NetRoute routes[NET_MAX_ITEMS];
        size_t n_routes;
} NetIface;

/* Canonical text form of an IPv4/IPv6 address (family 0: either). -EBADMSG if s is not one. */
int ip_canonical(int family, const char *s, char *buf, size_t size, int *ret_family);
/* Prefix length of a contiguous netmask; -EBADMSG if not contiguous. */
int netmask_prefix(const char *netmask, int family);
/* Parses a MAC address into lower-case colon form. */
int mac_canonical(const char *s, char ret[static 18]);

/* The unit file name and contents. */
char *net_iface_unit_name(const NetIface *i);
char *net_iface_config(const NetIface *i);

/* A bond netdev: "<priority:02>-<name>.netdev" with [NetDev] and a [Bond] section of key=value pairs. */
typedef struct NetBond {
        char name[32];
        char mac[18];
        unsigned priority;
        const char *attrs[8][2];
        size_t n_attrs;
} NetBond;

char *net_bond_unit_name(const NetBond *b);
char *net_bond_config(const NetBond *b);
