/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every JSON (and YAML) provider document parser on one input. */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"
#include "metadata-agent-yaml.h"

static void run_parsers(json_t *j) {
        const unsigned all = WANT_ATTRIBUTES | WANT_HOSTNAME | WANT_SSH_KEYS;
        Metadata m = {};
        char *url = NULL;

        (void) aws_parse_identity_document(j, &m);
        (void) azure_parse_public_keys(j, &m);
        (void) digitalocean_parse(j, all, &m);
        (void) packet_parse(j, "8.8.8.8 2001:db8::1", all | WANT_NETWORK, &m, &url);
        free(url);
        (void) openstack_parse_config_drive(j, j, all, &m);
        (void) configdrive_parse_uuid_name(j, "POWERVS", true, all, &m);
        (void) hetzner_parse_metadata(j, json_object_get(j, "private-networks"), &m);
        (void) hetzner_parse_public_keys(j, &m);
        (void) oraclecloud_parse(j, all, &m);
        (void) scaleway_parse(j, all, &m);
        (void) akamai_parse_instance(j, &m);
        (void) akamai_parse_network(j, &m);
        (void) akamai_parse_ssh_keys(j, &m);
        (void) kubevirt_parse(j, all, &m);
        char *kargs = NULL;
        (void) proxmoxve_parse(NULL, j, json_object_get(j, "network"), all | WANT_NETWORK, &m, &kargs);
        free(kargs);
        char *s = NULL;
        (void) metadata_format_attributes(&m, ATTRIBUTE_STYLE_FLATCAR, &s);
        free(s);
        metadata_done(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *j;

        log_set_max_level(LOG_CRIT);
        if (size > 256 * 1024)
                return 0;
        j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
        if (j) {
                run_parsers(j);
                json_decref(j);
        }
        if (yaml_parse_json((const char *) data, size, &j) >= 0) {
                run_parsers(j);
                json_decref(j);
        }
        return 0;
}
