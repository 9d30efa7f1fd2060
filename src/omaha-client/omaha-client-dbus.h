/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* update_engine's D-Bus API (spec §3.1), so that locksmithd, FLUO and update_engine_client keep working:
 * com.coreos.update1 at /com/coreos/update1, interface com.coreos.update1.Manager with AttemptUpdate,
 * ResetStatus, GetStatus -> (x last_checked_time, d progress, s current_operation, s new_version,
 * x new_size) and the StatusUpdate signal of the same shape. */

#include <systemd/sd-event.h>

#include "omaha-client-status.h"

typedef struct OmahaDBus OmahaDBus;

typedef struct OmahaDBusOps {
        /* Starts an interactive check when idle; nothing otherwise. */
        void (*attempt_update)(void *userdata);
        /* 0, or < 0 when the status cannot be reset now. */
        int (*reset_status)(void *userdata);
        void (*get_status)(void *userdata, OmahaStatus *ret);
} OmahaDBusOps;

/* address: "system", "session", or a D-Bus address ("unix:path=..."). */
int omaha_dbus_new(OmahaDBus **ret, sd_event *event, const char *address, const OmahaDBusOps *ops, void *userdata);
OmahaDBus *omaha_dbus_free(OmahaDBus *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(OmahaDBus *, omaha_dbus_free);

/* Emits StatusUpdate when the operation changed, progress moved by 1 % or 10 s passed (update_engine's
 * rate). force: always. */
void omaha_dbus_status_changed(OmahaDBus *b, const OmahaStatus *st, bool force);
