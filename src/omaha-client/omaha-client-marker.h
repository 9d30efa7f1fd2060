/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The update-completed marker in the runtime directory: an update was applied and waits for a reboot.
 * It outlives a restart of the daemon, not a reboot. */

#include "omaha-client-config.h"
#include "omaha-client-status.h"

char *omaha_marker_path(const OmahaConfig *c);
bool omaha_marker_exists(const OmahaConfig *c);
int omaha_marker_write(const OmahaConfig *c);

/* At daemon start: an update applied by an earlier run is reported in *st (UPDATED_NEED_REBOOT with its
 * version). Returns 1 if so, 0 if there is none, or < 0. */
int omaha_marker_restore(const OmahaConfig *c, OmahaStatus *st);
/* ResetStatus: forgets the applied update (the slot stays as it is); *st returns to IDLE. */
int omaha_marker_reset(const OmahaConfig *c, OmahaStatus *st);
