/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "omaha-client-config.h"

/* Runs the update daemon: the schedule of checks, the worker that performs them, and the varlink
 * interface io.switchyard.Omaha (socket activation, or listen_path). Returns when SIGTERM/SIGINT arrive. */
int daemon_run(OmahaConfig *c, const char *listen_path);
