/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* `metadata-agent mount-config-drive` / `umount-config-drive`: the only code of metadata-agent that
 * opens block devices or mounts anything. It runs in metadata-agent-config-drive.service (root with
 * CAP_SYS_ADMIN only), never in the services that parse metadata. */

#include "metadata-agent-provider.h"

/* Finds the device holding p's config drive with libblkid (no blkid cache file, no udev symlinks):
 * the first of p's labels that some device carries with p's file system type. *ret_dev is NULL when
 * there is none (a device with the label but another type is skipped with a warning). */
int config_drive_find_device(const ConfigDrive *d, char **ret_dev, const char **ret_label);
/* Mounts p's config drive read-only, nosuid, nodev, noexec on dir (created, parents 0755), retrying a
 * failed mount 3 times after backoff_ms, doubling. Success and nothing mounted when p reads no config
 * drive or no device has its labels. 1 if mounted. */
int config_drive_mount(const Provider *p, const char *dir, unsigned backoff_ms);
/* Unmounts dir and removes the directory; success when nothing is mounted there. */
int config_drive_umount(const char *dir);
