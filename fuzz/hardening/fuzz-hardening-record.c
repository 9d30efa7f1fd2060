/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* record.json (which a hostile root controls) → Record → JSON again. */
#include "hardening-record.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Record r = {};
        char *text = NULL;

        if (size > 1024 * 1024)
                return 0;
        log_set_target(LOG_TARGET_NULL);
        if (record_parse((const char *)data, size, &r) < 0)
                return 0;
        if (record_format(&r, &text) >= 0) {
                Record again = {};
                if (record_parse(text, strlen(text), &again) >= 0)
                        record_done(&again);
                free(text);
        }
        record_done(&r);
        return 0;
}
