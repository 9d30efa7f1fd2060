/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "log.h"
#include "omaha-client-check.h"
#include "omaha-client-tool.h"

int verb_print_request(const OmahaConfig *c, bool interactive, int argc, char **argv) {
        _cleanup_(omaha_state_freep) OmahaState *s = NULL;
        _cleanup_free_ char *xml = NULL;
        int r;

        if (argc < 1)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "print-request needs updatecheck, ping or event.");
        r = omaha_state_load(c, &s);
        if (r < 0)
                return r;
        if (streq(argv[0], "updatecheck"))
                r = omaha_build_updatecheck(c, s, interactive, false, &xml, NULL);
        else if (streq(argv[0], "ping"))
                r = omaha_build_ping(c, s, interactive, &xml);
        else if (streq(argv[0], "event")) {
                uint32_t type, result, code = OMAHA_NO_ERRORCODE;
                OmahaEvent e;

                if (argc < 3 || safe_atou32(argv[1], &type) < 0 || safe_atou32(argv[2], &result) < 0 ||
                    (argc > 3 && safe_atou32(argv[3], &code) < 0))
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Usage: print-request event TYPE RESULT [CODE]");
                if (argc > 3)
                        e = omaha_event_error(code, omaha_config_error_flags(c));
                else
                        e = (OmahaEvent) { .type = type, .result = result, .errorcode = OMAHA_NO_ERRORCODE };
                e.type = type;
                e.result = result;
                r = omaha_build_event(c, s, interactive, &e, &xml);
        } else
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown request kind \"%s\".", argv[0]);
        if (r < 0)
                return log_error_errno(r, "Failed to build the request: %m");
        fputs(xml, stdout);
        return 0;
}
