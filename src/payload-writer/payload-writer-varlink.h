/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

/* Serves io.switchyard.PayloadWriter on the sockets systemd passed, or on listen (a path). Trusted keys
 * come from key_paths, or the default locations when n_keys is 0; they are re-read for every call. */
int payload_writer_varlink_run(const char *listen, const char *root, char *const *key_paths, size_t n_keys);
