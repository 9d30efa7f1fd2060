/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The providers' document parsers, free of I/O, for the unit tests and fuzzers. Each fills m from a
 * parsed document and returns -EBADMSG (logged) when the document does not have the shape afterburn
 * requires. */

#include <jansson.h>

#include "metadata-agent-metadata.h"
#include "metadata-agent-xml.h"

typedef struct AzureGoalState {
        char *incarnation, *container_id, *instance_id, *shared_config_url;
        char *certificates_url; /* NULL when the goal state lists none */
} AzureGoalState;

int aws_parse_identity_document(json_t *doc, Metadata *m);
int gcp_add_ssh_keys(Metadata *m, const char *text, const char *origin, size_t *ret_added);

int azure_parse_versions(const XmlNode *root);
int azure_parse_goal_state(const XmlNode *root, AzureGoalState *ret);
void azure_goal_state_done(AzureGoalState *g);
int azure_parse_shared_config(const XmlNode *root, Metadata *m);
int azure_parse_public_keys(json_t *doc, Metadata *m);
char *azure_health_report(const AzureGoalState *g);

int digitalocean_parse(json_t *doc, unsigned want, Metadata *m);
/* dns: the space-separated DNS servers for the network units (needed only with WANT_NETWORK). */
int packet_parse(json_t *doc, const char *dns, unsigned want, Metadata *m, char **ret_phone_home_url);
int openstack_parse_config_drive(json_t *meta, json_t *ec2, unsigned want, Metadata *m);
int hetzner_parse_metadata(json_t *doc, json_t *private_networks, Metadata *m);
int hetzner_parse_public_keys(json_t *doc, Metadata *m);
int oraclecloud_parse(json_t *doc, unsigned want, Metadata *m);
int scaleway_parse(json_t *doc, unsigned want, Metadata *m);
int akamai_parse_instance(json_t *doc, Metadata *m);
int akamai_parse_network(json_t *doc, Metadata *m);
int akamai_parse_ssh_keys(json_t *doc, Metadata *m);
/* user_data may be NULL; *ret_kargs (if asked) is NULL when the network gives none. */
int proxmoxve_parse(const char *user_data, json_t *meta, json_t *netcfg, unsigned want, Metadata *m, char **ret_kargs);
int ibmcloud_parse_meta_data(const char *text, unsigned want, Metadata *m);
/* The body of the last text/cloud-config part of the MIME vendor-data that mentions ssh_authorized_keys. */
int ibmcloud_vendor_data_cloud_config(const char *data, size_t size, char **ret);
int ibmcloud_parse_vendor_data(const char *data, size_t size, Metadata *m);
int kubevirt_parse(json_t *meta, unsigned want, Metadata *m);
/* PowerVS and IBM Cloud classic: openstack/latest/meta_data.json with uuid and name. */
int configdrive_parse_uuid_name(json_t *doc, const char *prefix, bool with_keys, unsigned want, Metadata *m);
