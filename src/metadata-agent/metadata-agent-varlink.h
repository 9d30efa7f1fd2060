/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "metadata-agent-metadata.h"

/* Serves io.switchyard.Metadata on the sockets systemd passed, or on listen (a path); exits when idle. */
int metadata_varlink_run(const char *listen, AttributeStyle style, const char *base_url, const char *config_drive,
                         const char *cmdline_file);
