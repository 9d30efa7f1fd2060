/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include "slot-manager-ops.h"

/* Who may change slots over varlink besides root: SO_PEERCRED uid, or primary gid. */
typedef struct SlotAuth {
        uid_t uids[16];
        gid_t gids[16];
        size_t n_uids, n_gids;
} SlotAuth;

bool slot_auth_allows(const SlotAuth *a, uid_t uid, gid_t gid);

/* Serves io.switchyard.Slots on the sockets passed by systemd (exiting after idle_usec without a
 * connection), or on listen_path (until terminated). */
int slot_varlink_run(const SlotContext *c, const SlotAuth *auth, const char *listen_path, uint64_t idle_usec);
