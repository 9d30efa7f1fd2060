/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hardening.conf text → ConfFile (switchyard syntax) → Settings, with every validation. */
#include "config.h"
#include "hardening-measures.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(conf_freep) ConfFile *conf = NULL;
        Settings s = {};

        if (size > 65536)
                return 0;
        log_set_target(LOG_TARGET_NULL);
        if (conf_new(&conf) < 0)
                return 0;
        if (conf_parse_into(conf, (const char *)data, size, CONF_SYNTAX_SWITCHYARD, "fuzz") < 0)
                return 0;
        if (settings_load(&s, conf, NULL, NULL) >= 0) {
                ButaneDoc d = {};
                char *yaml = NULL;
                for (size_t i = 0; s.measures[i]; i++)
                        (void)measure_find(s.measures[i])->butane(&s, &d);
                if (butane_doc_render(&d, "1.1.0", &yaml) >= 0)
                        free(yaml);
                butane_doc_done(&d);
                settings_done(&s);
        }
        return 0;
}
