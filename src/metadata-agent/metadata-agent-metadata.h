/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a provider found: attributes (KEY without the AFTERBURN_ prefix → value), an optional hostname
 * and SSH public keys. Everything is collected in memory first and written out only when the whole
 * fetch succeeded, so a failure never leaves a partial file behind. */

#include "macro.h"

typedef struct MetadataAttribute {
        char *key;
        char *value;
} MetadataAttribute;

typedef struct Metadata {
        MetadataAttribute *attrs;
        size_t n_attrs;
        char *hostname;       /* NULL: the provider gives none */
        char **ssh_keys;      /* normalised OpenSSH lines */
        size_t n_ssh_keys;
        bool ssh_keys_valid;  /* the provider answered the key question (possibly with zero keys) */
        MetadataAttribute *net_units; /* systemd-networkd files: key = file name, value = contents */
        size_t n_net_units;
} Metadata;

typedef enum AttributeStyle {
        ATTRIBUTE_STYLE_AFTERBURN, /* AFTERBURN_AWS_INSTANCE_ID */
        ATTRIBUTE_STYLE_FLATCAR,   /* COREOS_EC2_INSTANCE_ID (coreos-metadata.service's renaming) */
        _ATTRIBUTE_STYLE_MAX,
        _ATTRIBUTE_STYLE_INVALID = -EINVAL,
} AttributeStyle;

void metadata_done(Metadata *m);

/* Adds or replaces KEY. A NULL value is a no-op (the source had no value). */
int metadata_set_attr(Metadata *m, const char *key, const char *value);
int metadata_set_attrf(Metadata *m, const char *value, const char *key_format, ...) _printf_(3, 4);
const char *metadata_get_attr(const Metadata *m, const char *key);
int metadata_set_hostname(Metadata *m, const char *hostname);
/* Adds a network unit file (name and contents, both copied). */
int metadata_add_net_unit(Metadata *m, const char *name, const char *contents);
/* Validates line as an OpenSSH public key and appends its normalised form; duplicates are dropped.
 * Returns -EBADMSG (after logging which key) if it does not parse. */
int metadata_add_ssh_key(Metadata *m, const char *line, const char *origin);
/* Splits text into lines, skipping blank and '#' lines, adding each as a key. With skip_bad, a key
 * that does not parse is logged and skipped (Aliyun, Vultr, UpCloud); otherwise it fails the run. */
int metadata_add_ssh_keys_text(Metadata *m, const char *text, bool skip_bad, const char *origin);

AttributeStyle attribute_style_from_string(const char *s);
/* The on-disk name of an attribute: AFTERBURN_<key>, or COREOS_<key> with a leading AWS_/GCP_
 * turned into EC2_/GCE_. */
char *attribute_name(const char *key, AttributeStyle style);
/* The whole attributes file: sorted by name, one NAME=value line each. Fails with -EBADMSG if a value
 * contains a newline or NUL (the format cannot carry it). */
int metadata_format_attributes(const Metadata *m, AttributeStyle style, char **ret);
/* The hostname as written: truncated to HOST_NAME_MAX, and then at the first '.' if it was too long. */
char *hostname_truncate(const char *hostname);
