/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* io.switchyard.Verity: socket-activated (or --listen=PATH), exits when idle. */
int verity_varlink_run(const char *listen_path);
