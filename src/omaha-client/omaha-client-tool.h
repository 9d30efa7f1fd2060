/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Offline verbs (no daemon, no network): parse-response and print-request, used by tests and for
 * debugging a server's answers. */

#include "omaha-client-config.h"

int verb_parse_response(const char *path, bool json);
/* kind: "updatecheck", "ping" or "event"; for events type/result/code come from args. */
int verb_print_request(const OmahaConfig *c, bool interactive, int argc, char **argv);
