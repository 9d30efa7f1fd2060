/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "metadata-agent-metadata.h"

/* Writes the attributes file atomically (temporary file, fsync, rename), creating parent directories. */
int output_write_attributes(const char *path, const Metadata *m, AttributeStyle style);
/* Writes "<hostname>\n" atomically if the provider gave one. */
int output_write_hostname(const char *path, const Metadata *m);
/* Writes ~user/.ssh/authorized_keys.d/afterburn (or removes it when there are no keys). root != NULL
 * means: look the user up in ROOT/etc/passwd and write below ROOT. */
int output_write_ssh_keys(const char *root, const char *user, const Metadata *m);
/* Creates dir and writes every network unit into it (each atomically, mode 0644). */
int output_write_network_units(const char *dir, const Metadata *m);
/* Writes ROOT/etc/cmdline.d/50-afterburn-network-kargs.conf with "<kargs>\n". */
int output_write_network_kargs(const char *root, const char *kargs);
