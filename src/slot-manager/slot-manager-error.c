/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>

#include "slot-manager-error.h"

static char *last_message;
static const char *last_name;

void slot_error_record(const char *name, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        /* Only the first failure counts: later ones are consequences of it. */
        if (last_message)
                return;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        last_message = s;
        last_name = name;
}

void slot_error_clear(void) {
        last_message = mfree(last_message);
        last_name = NULL;
}

const char *slot_error_name(void) {
        return last_name ?: SLOTS_ERROR_DISK;
}

const char *slot_error_message(void) {
        return last_message;
}
