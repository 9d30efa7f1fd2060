/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Feeds arbitrary bytes to the Omaha response parser, and what it accepts to the code that consumes it. */
#include <jansson.h>

#include "log.h"
#include "omaha-client-response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OmahaResponse *r = NULL;
        char *reason = NULL, *sig = NULL;
        int code = 0;

        log_set_target(LOG_TARGET_NULL);
        if (omaha_response_parse(data, size, &r, &code, &reason) >= 0) {
                json_t *o = omaha_response_to_json(r);
                json_decref(o);
                if (omaha_response_signature(r, &sig) >= 0)
                        free(sig);
                if (r->update && (r->n_urls == 0 || r->size == 0 || !r->sha256 || !*r->sha256))
                        __builtin_trap(); /* accepted an update without what matters */
                omaha_response_free(r);
        } else if (code != 30 && code != 31 && code != 34)
                __builtin_trap();
        free(reason);
        return 0;
}
