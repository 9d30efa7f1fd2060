/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The table of providers and what they share. Each provider lives in metadata-agent-<name>.c and fills a
 * Metadata with what was asked for; nothing is written to disk by providers. */

#include "metadata-agent-drives.h"
#include "metadata-agent-fetch.h"
#include "metadata-agent-metadata.h"

typedef enum Want {
        WANT_ATTRIBUTES = 1 << 0,
        WANT_HOSTNAME = 1 << 1,
        WANT_SSH_KEYS = 1 << 2,
        WANT_NETWORK = 1 << 3, /* systemd-networkd units (providers with .network_units) */
} Want;

typedef struct ProviderContext {
        FetchPolicy policy;
        const char *base_url;     /* --base-url: replaces the provider's main base address */
        const char *config_drive; /* --config-drive: an already mounted config drive / cidata tree */
} ProviderContext;

typedef struct Provider {
        const char *name;
        const ConfigDrive *config_drive; /* NULL: the provider reads no config drive */
        const char *env_name;    /* SWITCHYARD_METADATA_URL_<env_name> overrides the main base */
        const char *default_url; /* main base address (scheme://host[:port][/path]) */
        int (*fetch)(ProviderContext *c, unsigned want, Metadata *m);
        int (*check_in)(ProviderContext *c); /* NULL: nothing to report on this platform */
        /* Initrd network kernel arguments; *ret NULL when the platform gives none. NULL: never any. */
        int (*network_kargs)(ProviderContext *c, char **ret);
        bool network_units;                  /* fetch() fills Metadata.net_units for WANT_NETWORK */
        bool has_network_config;             /* upstream writes network configuration we do not produce */
} Provider;

extern const Provider provider_akamai, provider_aliyun, provider_aws, provider_azure, provider_azurestack, provider_cloudstack_configdrive,
        provider_cloudstack_metadata, provider_digitalocean,
        provider_exoscale, provider_gcp, provider_hetzner, provider_ibmcloud, provider_ibmcloud_classic, provider_kubevirt, provider_openstack,
        provider_openstack_metadata, provider_oraclecloud, provider_packet, provider_powervs, provider_proxmoxve,
        provider_scaleway, provider_upcloud, provider_vultr;

/* By name, with the Flatcar aliases ec2 → aws and gce → gcp. NULL if unknown. */
const Provider *provider_find(const char *name);
/* Names of every known provider (for --help and errors), NULL-terminated. */
const char *const *provider_names(void);

/* The base address for env_name: SWITCHYARD_METADATA_URL_<env_name>, else (for the provider's main base)
 * --base-url, else def. Trailing slashes are removed. */
char *provider_base(const ProviderContext *c, const Provider *p, const char *env_name, const char *def);

typedef struct Endpoint {
        const char *key;  /* attribute key, e.g. "AWS_INSTANCE_ID" */
        const char *path; /* appended to the base */
} Endpoint;

/* GETs every endpoint concurrently and sets its attribute from the raw body. With none_on_404 a 404
 * gives no attribute; skip_empty drops empty values. */
int fetch_endpoints(const ProviderContext *c, const char *base, const HttpHeader *headers, size_t n_headers,
                    const Endpoint *eps, size_t n, bool none_on_404, bool skip_empty, Metadata *m);
/* A platform that serves each value at its own URL under one base: the attributes, the hostname and the
 * SSH keys (text, one a line) are each a GET of base + "/" + path. */
typedef struct EndpointSet {
        const Endpoint *endpoints;
        size_t n_endpoints;
        bool none_on_404;          /* every GET: a 404 means "not given" rather than an error */
        bool skip_empty;           /* attributes: drop empty values */
        const char *hostname_path; /* NULL: the platform gives no hostname */
        const char *ssh_keys_path; /* NULL: the provider fetches the keys itself */
        bool skip_bad_keys;        /* a malformed key line is skipped (with a warning), not an error */
} EndpointSet;

/* Fetches what want asks for of an EndpointSet below base. */
int fetch_endpoint_set(const ProviderContext *c, const char *base, const EndpointSet *set, unsigned want, Metadata *m);

/* GETs one raw value; *ret is NULL on a 404 when none_on_404. */
int fetch_text(const ProviderContext *c, const char *url, const HttpHeader *headers, size_t n_headers,
               bool none_on_404, char **ret);
/* EC2-style keys (AWS, OpenStack): GET <list_url> → "<idx>=<name>" lines (404: no keys), then each
 * <list_url>/<idx>/openssh-key (404 is an error). */
int fetch_ec2_ssh_keys(const ProviderContext *c, const char *list_url, const HttpHeader *headers,
                       size_t n_headers, Metadata *m);
/* The second half of that: list is the listing's body (NULL after a 404: no keys). */
int fetch_ec2_ssh_keys_from_list(const ProviderContext *c, const char *list_url, const char *list,
                                 const HttpHeader *headers, size_t n_headers, Metadata *m);
/* Parses the EC2 public-keys listing into the indices; -EBADMSG if a line lacks exactly one '='. */
int ec2_parse_key_list(const char *text, char ***ret_indices, size_t *ret_n);
void strv_free_n(char **v, size_t n);

/* Typed JSON lookups for provider documents: a string member (NULL if absent or null, -EBADMSG if
 * another type). */
int json_member_string(json_t *obj, const char *key, const char **ret);
/* Follows "a.b.c" through objects. */
json_t *json_path(json_t *obj, const char *path);

/* The directory the drives are mounted below: SWITCHYARD_METADATA_CONFIG_DRIVE_DIR, else CONFIG_DRIVE_DIR. */
const char *config_drive_dir(void);
/* > 0 if path is the root of a mounted file system (STATX_ATTR_MOUNT_ROOT, else a device change against
 * the parent directory), 0 if a plain directory, -ENOENT if missing. */
int config_drive_is_mounted(const char *path);
/* Locates p's config drive: --config-drive if given (it must be a directory), else the first
 * config_drive_dir()/LABEL, in the order of p's labels, that a file system is mounted on (PID 1 mounts
 * them with the units metadata-agent-generator writes). This process never mounts anything.
 * -ENODEV (not logged) when none is mounted: the caller says so with config_drive_log_missing(). */
int config_drive_open(const ProviderContext *c, const Provider *p, char **ret_dir);
/* Logs at level that no drive with p's labels is mounted below config_drive_dir(); returns -ENODEV. */
int config_drive_log_missing(int level, const Provider *p);
/* Reads a file of the config drive (capped at METADATA_BODY_MAX); -ENOENT if missing. */
int config_drive_read(const char *dir, const char *path, char **ret, size_t *ret_size);
