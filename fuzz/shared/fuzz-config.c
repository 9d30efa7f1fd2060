/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conf_parse_into() with both syntaxes on the same bytes, then every lookup the parsed file offers. */
#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool initialized = false;

        if (size > 1024 * 1024)
                return 0;
        if (!initialized) {
                log_set_target(LOG_TARGET_NULL);
                initialized = true;
        }
        for (ConfSyntax syntax = 0; syntax < _CONF_SYNTAX_MAX; syntax++) {
                _cleanup_(conf_freep) ConfFile *f = NULL;

                if (conf_new(&f) < 0)
                        abort();
                (void) conf_parse_into(f, (const char *) data, size, syntax, "fuzz");
                for (size_t i = 0; i < conf_size(f); i++) {
                        const char *k = conf_key_at(f, i), *v = conf_value_at(f, i);
                        if (!k || !v || conf_get(f, k) == NULL)
                                abort();
                        (void) parse_boolean(v);
                }
                /* Parsing the same text again on top must not change what a lookup of GROUP gives. */
                const char *g = conf_get(f, "GROUP");
                char *copy = g ? strdup(g) : NULL;
                (void) conf_parse_into(f, (const char *) data, size, syntax, "fuzz");
                if (!streq_ptr(copy, conf_get(f, "GROUP")))
                        abort();
                free(copy);
        }
        return 0;
}
