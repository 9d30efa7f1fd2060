/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

/* Looks key up in systemd-networkd's DHCP lease files (/run/systemd/netif/leases/<ifindex>, KEY=VALUE
 * lines; SWITCHYARD_METADATA_LEASES_DIR overrides the directory), retrying like afterburn: 60 attempts,
 * 50 ms back-off doubling up to 500 ms (SWITCHYARD_METADATA_DHCP_RETRIES changes the count).
 * -ENOENT after the last attempt. NetworkManager's D-Bus API is not consulted. */
int dhcp_lease_lookup(const char *key, char **ret);
