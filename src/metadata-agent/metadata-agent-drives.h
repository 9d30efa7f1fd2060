/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The config drives of the providers that read one (spec §4.5 and the provider sections). Shared by
 * the providers (which read a mounted drive) and metadata-agent-generator (which writes the .mount
 * units PID 1 mounts them with), so both always agree on labels, types and places. */

#include "macro.h"

/* The drive with label L is mounted at CONFIG_DRIVE_DIR/L by the generator's mount units;
 * SWITCHYARD_METADATA_CONFIG_DRIVE_DIR replaces CONFIG_DRIVE_DIR for the readers (tests). */
#define CONFIG_DRIVE_DIR "/run/metadata-agent/config-drive"

typedef struct ConfigDrive {
        const char *labels[3]; /* NULL-terminated; the first one mounted wins, in this order */
        const char *fstype;
        bool needs_virtio_blk; /* the drive is a virtio disk: load virtio_blk first (spec §5.20) */
} ConfigDrive;

extern const ConfigDrive config_drive_cloudstack, config_drive_ibmcloud, config_drive_ibmcloud_classic,
        config_drive_kubevirt, config_drive_openstack, config_drive_powervs, config_drive_proxmoxve;

/* The drive of the provider named name (as on the kernel command line); NULL if it reads none. */
const ConfigDrive *config_drive_find(const char *name);
/* "config-2 or CONFIG-2" (static buffer). */
const char *config_drive_labels(const ConfigDrive *d);
