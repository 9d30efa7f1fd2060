/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The three request bodies omaha-client sends (spec §1.2), with the pref logic around them: the
 * aleph version created on first use, and the previous-version pref that carries the "update complete"
 * report (or the rollback, error 44) into the first check after a reboot. */

#include "omaha-client-error.h"
#include "omaha-client-request.h"
#include "omaha-client-state.h"

/* The aleph version; created from the running version on first use. */
int omaha_aleph_version(const OmahaConfig *c, OmahaState *s, char **ret);

/* An update check. consume_previous: overwrite the previous-version pref with "" afterwards (a real
 * check does; printing a request does not). *ret_rollback is set when this check reports a rollback. */
int omaha_build_updatecheck(const OmahaConfig *c, OmahaState *s, bool interactive, bool consume_previous,
                            char **ret_xml, bool *ret_rollback);
int omaha_build_ping(const OmahaConfig *c, OmahaState *s, bool interactive, char **ret_xml);
int omaha_build_event(const OmahaConfig *c, OmahaState *s, bool interactive, const OmahaEvent *e, char **ret_xml);
