/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* KEY=VALUE configuration files.
 *
 * CONF_SYNTAX_FLATCAR follows update_engine's simple_key_value_store exactly (spec §2.1): split on '\n',
 * lines without '=' ignored, key = everything before the first '=' (no trimming, no comments), value =
 * the rest with one pair of matching outer quotes removed (no unescaping); later duplicates win.
 *
 * CONF_SYNTAX_SWITCHYARD is for /etc/switchyard/NAME.conf: the same quoting, but blank lines and lines
 * starting with '#' or ';' are comments, whitespace around key and value is trimmed, and any other line
 * without '=' is an error naming the file and line. */

#include "macro.h"

typedef enum ConfSyntax {
        CONF_SYNTAX_FLATCAR,
        CONF_SYNTAX_SWITCHYARD,
        _CONF_SYNTAX_MAX,
        _CONF_SYNTAX_INVALID = -EINVAL,
} ConfSyntax;

typedef struct ConfFile ConfFile;

int conf_new(ConfFile **ret);
ConfFile *conf_free(ConfFile *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(ConfFile *, conf_free);

/* Parses text into f (adding to/overriding what f already holds). origin names the source in errors.
 * Returns -EBADMSG on a syntax error (switchyard syntax only), after logging it. */
int conf_parse_into(ConfFile *f, const char *text, size_t size, ConfSyntax syntax, const char *origin);
/* Loads one file; -ENOENT if it does not exist (nothing logged then). Files are capped at 1 MiB. */
int conf_load(const char *path, ConfSyntax syntax, ConfFile **ret);

const char *conf_get(const ConfFile *f, const char *key);
int conf_set(ConfFile *f, const char *key, const char *value);
size_t conf_size(const ConfFile *f);
/* i-th entry in insertion order (the first time each key was seen). */
const char *conf_key_at(const ConfFile *f, size_t i);
const char *conf_value_at(const ConfFile *f, size_t i);

/* update_engine's lookup: the value comes from the first of paths (each below root) that contains the
 * key at all; later files are not consulted, missing files are skipped. ret_value is NULL when no file
 * has the key. */
int conf_chain_get(const char *root, const char *const *paths, const char *key, char **ret_value);

/* Loads switchyard's NAME.conf: /usr/share/switchyard/NAME.conf, then /etc/switchyard/NAME.conf, then
 * every /etc/switchyard/NAME.conf.d/ *.conf in lexical order; later values override earlier ones. A
 * missing file is fine; a malformed one fails the load. */
int conf_load_switchyard(const char *root, const char *name, ConfFile **ret);

/* "1", "yes", "true", "on" → 1; "0", "no", "false", "off" → 0; else -EINVAL. */
int parse_boolean(const char *s);
