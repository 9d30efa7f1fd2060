/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"
#include "omaha-client-check.h"

int omaha_aleph_version(const OmahaConfig *c, OmahaState *s, char **ret) {
        char *v = NULL;
        int r;

        r = omaha_pref_get(s, "aleph-version", &v);
        if (r < 0)
                return r;
        if (!v) {
                r = omaha_pref_set(s, "aleph-version", c->version, strlen(c->version));
                if (r < 0)
                        return r;
                v = strdup(c->version);
                if (!v)
                        return -ENOMEM;
        }
        *ret = v;
        return 0;
}

int omaha_build_updatecheck(const OmahaConfig *c, OmahaState *s, bool interactive, bool consume_previous,
                            char **ret_xml, bool *ret_rollback) {
        _cleanup_free_ char *aleph = NULL, *previous = NULL;
        OmahaEvent e;
        bool rollback = false;
        int r;

        r = omaha_aleph_version(c, s, &aleph);
        if (r < 0)
                return r;
        r = omaha_pref_get(s, "previous-version", &previous);
        if (r < 0)
                return r;

        if (!previous)
                e = (OmahaEvent) { .type = OMAHA_EVENT_UPDATE_COMPLETE, .result = OMAHA_RESULT_SUCCESS_REBOOT,
                                   .errorcode = OMAHA_NO_ERRORCODE, .previous_version = "0.0.0.0" };
        else if (!isempty(previous) && streq(previous, c->version)) {
                /* We are still on the version that was running when the update was applied: the new
                 * slot did not stick (spec §6.5). */
                e = omaha_event_error(OMAHA_ERROR_ROLLBACK, omaha_config_error_flags(c));
                rollback = true;
        } else
                e = (OmahaEvent) { .type = OMAHA_EVENT_UPDATE_COMPLETE, .result = OMAHA_RESULT_SUCCESS_REBOOT,
                                   .errorcode = OMAHA_NO_ERRORCODE, .previous_version = previous };

        r = omaha_request_build(c,
                                &(OmahaRequest) { .interactive = interactive, .ping = true, .updatecheck = true,
                                                  .event = &e, .alephversion = aleph },
                                ret_xml);
        if (r < 0)
                return r;
        if (consume_previous) {
                r = omaha_pref_set(s, "previous-version", "", 0);
                if (r < 0)
                        return r;
        }
        if (ret_rollback)
                *ret_rollback = rollback;
        return 0;
}

int omaha_build_ping(const OmahaConfig *c, OmahaState *s, bool interactive, char **ret_xml) {
        _cleanup_free_ char *aleph = NULL;
        int r;

        r = omaha_aleph_version(c, s, &aleph);
        if (r < 0)
                return r;
        return omaha_request_build(c, &(OmahaRequest) { .interactive = interactive, .ping = true, .alephversion = aleph },
                                   ret_xml);
}

int omaha_build_event(const OmahaConfig *c, OmahaState *s, bool interactive, const OmahaEvent *e, char **ret_xml) {
        _cleanup_free_ char *aleph = NULL;
        int r;

        r = omaha_aleph_version(c, s, &aleph);
        if (r < 0)
                return r;
        return omaha_request_build(c, &(OmahaRequest) { .interactive = interactive, .event = e, .alephversion = aleph },
                                   ret_xml);
}
