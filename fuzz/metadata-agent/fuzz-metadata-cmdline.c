/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Line-oriented inputs: the kernel command line, SSH key lines and listings (EC2, GCP, plain). */
#include "log.h"
#include "metadata-agent-cmdline.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"
#include "metadata-agent-sshkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s, *v = NULL, **idx = NULL;
        Metadata m = {};
        size_t n = 0;

        log_set_max_level(LOG_CRIT);
        if (size > 64 * 1024)
                return 0;
        s = strndup((const char *) data, size);
        if (!s)
                return 0;
        if (cmdline_get_platform(s, &v) > 0)
                free(v);
        (void) cmdline_has_ip_arg(s);
        if (ssh_key_normalize(s, &v) >= 0)
                free(v);
        if (ec2_parse_key_list(s, &idx, &n) >= 0)
                strv_free_n(idx, n);
        (void) metadata_add_ssh_keys_text(&m, s, true, "fuzz");
        (void) gcp_add_ssh_keys(&m, s, "fuzz", NULL);
        (void) ibmcloud_parse_meta_data(s, WANT_ATTRIBUTES | WANT_HOSTNAME, &m);
        (void) ibmcloud_parse_vendor_data((const char *) data, size, &m);
        v = hostname_truncate(s);
        free(v);
        metadata_done(&m);
        free(s);
        return 0;
}
