/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "hardening-measures.h"

/* Loads /etc/switchyard/hardening.conf (+ drop-ins) below root into ret. */
int hardening_load_settings(const char *root, const char *profile, char *const *names, Settings *ret);
/* Serves io.switchyard.Hardening on the sockets systemd passed, or on listen_path. */
int hardening_varlink_run(const char *root, const char *listen_path);
