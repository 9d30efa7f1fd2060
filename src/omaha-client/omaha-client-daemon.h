/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "omaha-client-config.h"

/* Runs the update daemon: the schedule of checks, the worker that performs them, and the varlink
 * interface io.switchyard.Omaha (socket activation, or listen_path) and the com.coreos.update1 D-Bus API. Returns when SIGTERM/SIGINT arrive. */
/* dbus_address: "system", "session", a D-Bus address, or NULL/"no" for none. */
int daemon_run(OmahaConfig *c, const char *listen_path, const char *dbus_address);
