/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Offline verb (no daemon, no network): print-request, used by tests and for debugging. Its sibling
 * parse-response is served by the job helper, which holds the response parser. */

#include "omaha-client-config.h"

/* kind: "updatecheck", "ping" or "event"; for events type/result/code come from args. */
int verb_print_request(const OmahaConfig *c, bool interactive, int argc, char **argv);
