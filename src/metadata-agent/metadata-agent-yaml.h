/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* YAML documents (Hetzner metadata, cloud-config) read with libyaml into jansson values, so that one
 * set of typed accessors serves JSON and YAML. Plain scalars that look like YAML 1.1 integers, booleans
 * or null become those JSON types; everything else is a string. Anchors/aliases are refused. */

#include <jansson.h>

#include "macro.h"

/* -EBADMSG on malformed YAML, -E2BIG beyond the depth/node limits. */
int yaml_parse_json(const char *data, size_t size, json_t **ret);
