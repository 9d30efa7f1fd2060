/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The CLI side: talks to the daemon over io.switchyard.Omaha. */

#include "macro.h"

int ctl_status(const char *address, bool json);
int ctl_check(const char *address, bool wait, bool json);
int ctl_watch(const char *address, bool json);
int ctl_reset_status(const char *address);
