/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "omaha-client-marker.h"
#include "omaha-client-state.h"

#define MARKER_NAME "update-completed"

char *omaha_marker_path(const OmahaConfig *c) {
        char *p;
        return asprintf(&p, "%s/" MARKER_NAME, c->runtime_dir) < 0 ? NULL : p;
}

bool omaha_marker_exists(const OmahaConfig *c) {
        _cleanup_free_ char *p = omaha_marker_path(c);
        return p && access(p, F_OK) == 0;
}

int omaha_marker_write(const OmahaConfig *c) {
        _cleanup_free_ char *p = omaha_marker_path(c);
        int r;

        if (!p)
                return -ENOMEM;
        r = mkdir_p(c->runtime_dir, 0755);
        if (r < 0)
                return r;
        return write_string_file_atomic(p, "", 0644);
}

static void status_set_offer(OmahaStatus *st, const char *version) {
        snprintf(st->new_version, sizeof st->new_version, "%s", version);
        st->new_size = 0;
}

static void status_set_code(OmahaStatus *st, OmahaStatusCode code) {
        st->code = code;
        st->progress = 0;
        st->bytes_done = st->bytes_total = 0;
}

int omaha_marker_restore(const OmahaConfig *c, OmahaStatus *st) {
        _cleanup_(omaha_state_freep) OmahaState *s = NULL;
        int r;

        if (!omaha_marker_exists(c))
                return 0;
        r = omaha_state_load(c, &s);
        if (r < 0)
                return r;
        status_set_offer(st, s->staged_version ?: "0.0.0");
        status_set_code(st, OMAHA_STATUS_UPDATED_NEED_REBOOT);
        return 1;
}

int omaha_marker_reset(const OmahaConfig *c, OmahaStatus *st) {
        _cleanup_(omaha_state_freep) OmahaState *s = NULL;
        _cleanup_free_ char *m = omaha_marker_path(c);
        int r;

        if (!m)
                return -ENOMEM;
        if (access(m, F_OK) == 0) {
                /* The staged update is abandoned on purpose: it must not be reported as a rollback (and
                 * its version must not be refused) at the next check. */
                r = omaha_state_load(c, &s);
                if (r < 0)
                        return r;
                (void) omaha_state_set_string(&s->staged_version, NULL);
                (void) omaha_state_set_string(&s->staged_slot, NULL);
                r = omaha_state_save(s);
                if (r < 0)
                        return r;
                r = omaha_pref_set(s, "previous-version", "", 0);
                if (r < 0)
                        return r;
        }
        if (unlink(m) < 0 && errno != ENOENT)
                return log_error_errno(errno, "Failed to remove %s: %m", m);
        status_set_offer(st, "0.0.0");
        status_set_code(st, OMAHA_STATUS_IDLE);
        return 0;
}
