/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "metadata-agent-drives.h"

/* cloudstack-configdrive (§5.11): config-2, then CONFIG-2; without it there is no metadata. */
const ConfigDrive config_drive_cloudstack = { { "config-2", "CONFIG-2" }, "iso9660", false };
/* ibmcloud (§5.13): NoCloud cidata. */
const ConfigDrive config_drive_ibmcloud = { { "cidata" }, "iso9660", false };
/* ibmcloud-classic (§5.13): config-2 on vfat. */
const ConfigDrive config_drive_ibmcloud_classic = { { "config-2" }, "vfat", false };
/* kubevirt (§5.20): config-2 (ConfigDrive format), else cidata (NoCloud); a no-op without either. */
const ConfigDrive config_drive_kubevirt = { { "config-2", "cidata" }, "iso9660", true };
/* openstack (§5.7): the drive first, else the metadata service. */
const ConfigDrive config_drive_openstack = { { "config-2" }, "iso9660", false };
/* powervs (§5.14). */
const ConfigDrive config_drive_powervs = { { "config-2" }, "iso9660", false };
/* proxmoxve (§5.19): a no-op without it. */
const ConfigDrive config_drive_proxmoxve = { { "cidata" }, "iso9660", false };

static const struct {
        const char *name;
        const ConfigDrive *drive;
} drives[] = {
        { "cloudstack-configdrive", &config_drive_cloudstack },
        { "ibmcloud", &config_drive_ibmcloud },
        { "ibmcloud-classic", &config_drive_ibmcloud_classic },
        { "kubevirt", &config_drive_kubevirt },
        { "openstack", &config_drive_openstack },
        { "powervs", &config_drive_powervs },
        { "proxmoxve", &config_drive_proxmoxve },
};

const ConfigDrive *config_drive_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(drives); i++)
                if (streq(drives[i].name, name))
                        return drives[i].drive;
        return NULL;
}

const char *config_drive_labels(const ConfigDrive *d) {
        static char buf[64];
        size_t n = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(d->labels) && d->labels[i]; i++) {
                int k = snprintf(buf + n, sizeof(buf) - n, "%s%s", i > 0 ? " or " : "", d->labels[i]);
                if (k < 0 || (size_t) k >= sizeof(buf) - n)
                        break;
                n += (size_t) k;
        }
        return buf;
}
