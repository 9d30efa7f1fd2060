/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Azure WireServer documents: versions, goal state, shared config, and the ready report built from them. */
#include "log.h"
#include "metadata-agent-parsers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        AzureGoalState g = {};
        XmlNode *x = NULL;
        Metadata m = {};

        log_set_max_level(LOG_CRIT);
        if (size > 256 * 1024 || xml_parse((const char *) data, size, &x) < 0)
                return 0;
        (void) azure_parse_versions(x);
        if (azure_parse_goal_state(x, &g) >= 0) {
                free(azure_health_report(&g));
                azure_goal_state_done(&g);
        }
        (void) azure_parse_shared_config(x, &m);
        metadata_done(&m);
        for (XmlNode *c = x->children; c; c = c->next)
                free(xml_text(c));
        xml_free(x);
        return 0;
}
