/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

#include "payload-writer-keys.h"

/* Any protobuf-c message as JSON (bytes as lower-case hex) or in protoc's text format. */
json_t *protobuf_to_json(const ProtobufCMessage *msg);
void protobuf_print_text(FILE *f, const ProtobufCMessage *msg, unsigned indent);

/* Reads a whole payload forward and reports header, manifest, sizes, hashes, per-op hash checks and
 * signatures (checked against keys when given). Returns 0 when everything checked out. */
int payload_inspect(int fd, const char *name, const TrustedKeys *keys, bool json);
