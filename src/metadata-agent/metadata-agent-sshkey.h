/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* OpenSSH public key lines ("[options] type base64 [comment]"): the type must be one OpenSSH knows, the
 * base64 must decode to a wire-format key of that same type with exactly the fields that type has. */

#include "macro.h"

/* Returns -EBADMSG if line is not a valid key; on success *ret is "type base64[ comment]" with any
 * options kept in front. */
int ssh_key_normalize(const char *line, char **ret);
