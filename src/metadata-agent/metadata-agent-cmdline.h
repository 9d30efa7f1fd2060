/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

/* Afterburn's kernel command line lookup: split on single spaces, keep key=value tokens, return the
 * trimmed value of the first token whose key is key; an empty value does not count. *ret is NULL when
 * there is no match. */
int cmdline_get_value(const char *cmdline, const char *key, char **ret);
/* flatcar.oem.id, then coreos.oem.id (Flatcar's patched lookup), then ignition.platform.id. */
int cmdline_get_platform(const char *cmdline, char **ret);
/* True if any space-separated token starts with "ip=". */
bool cmdline_has_ip_arg(const char *cmdline);
