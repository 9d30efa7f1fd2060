/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <blkid.h>
#include <libmount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "metadata-agent-mount.h"

int config_drive_find_device(const ConfigDrive *d, char **ret_dev, const char **ret_label) {
        blkid_cache cache = NULL;
        bool removable = false;
        int r = 0;

        *ret_dev = NULL;
        /* Like afterburn's `blkid --cache-file /dev/null -L LABEL`: probe the devices now, trust no cache
         * and no /dev/disk/by-label (udev may not have run, e.g. in a container). */
        if (blkid_get_cache(&cache, "/dev/null") < 0)
                return log_error_errno(SYNTHETIC_ERRNO(ENOMEM), "Failed to set up libblkid.");
        if (blkid_probe_all(cache) < 0)
                log_warning("libblkid could not probe every block device (/proc/partitions).");
        for (size_t i = 0; i < ELEMENTSOF(d->labels) && d->labels[i] && !*ret_dev; i++) {
                blkid_dev dev = blkid_find_dev_with_tag(cache, "LABEL", d->labels[i]);
                _cleanup_free_ char *type = NULL;
                const char *name;

                if (!dev && !removable) {
                        /* CD-ROMs (where config drives usually are) are not always in /proc/partitions. */
                        removable = true;
                        (void) blkid_probe_all_removable(cache);
                        dev = blkid_find_dev_with_tag(cache, "LABEL", d->labels[i]);
                }
                if (!dev)
                        continue;
                name = blkid_dev_devname(dev);
                type = blkid_get_tag_value(cache, "TYPE", name);
                if (!type || !streq(type, d->fstype)) {
                        log_warning("%s has the label %s but holds %s, not %s; ignoring it.", name, d->labels[i],
                                    type ?: "no file system", d->fstype);
                        continue;
                }
                *ret_dev = strdup(name);
                if (!*ret_dev) {
                        r = log_oom();
                        break;
                }
                *ret_label = d->labels[i];
        }
        blkid_put_cache(cache);
        return r;
}

static int mount_once(const char *dev, const char *dir, const char *fstype, const char *options) {
        struct libmnt_context *cxt = mnt_new_context();
        int r;

        if (!cxt)
                return -ENOMEM;
        /* Only mount(2): no /sbin/mount.<type> helpers, no fstab, no utab bookkeeping. */
        r = mnt_context_disable_helpers(cxt, 1);
        if (r >= 0)
                r = mnt_context_disable_mtab(cxt, 1);
        if (r >= 0)
                r = mnt_context_set_optsmode(cxt, MNT_OMODE_NOTAB);
        if (r >= 0)
                r = mnt_context_set_source(cxt, dev);
        if (r >= 0)
                r = mnt_context_set_target(cxt, dir);
        if (r >= 0)
                r = mnt_context_set_fstype(cxt, fstype);
        if (r >= 0)
                r = mnt_context_set_options(cxt, options);
        if (r >= 0) {
                r = mnt_context_mount(cxt);
                if (r > 0) /* libmount: > 0 is the errno of the failed mount(2) */
                        r = -r;
        }
        mnt_free_context(cxt);
        return r < 0 ? r : 0;
}

int config_drive_mount(const Provider *p, const char *dir, unsigned backoff_ms) {
        _cleanup_free_ char *dev = NULL, *parent = NULL, *options = NULL;
        const ConfigDrive *d = p->config_drive;
        const char *label = NULL, *slash;
        unsigned delay = backoff_ms;
        int r;

        if (!d) {
                log_info("Provider %s reads no config drive, nothing to mount.", p->name);
                return 0;
        }
        r = config_drive_is_mounted(dir);
        if (r > 0) {
                log_info("A file system is already mounted at %s.", dir);
                return 1;
        }
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to check the mount point %s: %m", dir);
        r = config_drive_find_device(d, &dev, &label);
        if (r < 0)
                return r;
        if (!dev) {
                log_info("No block device has the label %s with %s; no config drive to mount.", config_drive_labels(d),
                         d->fstype);
                return 0;
        }
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                parent = strndup(dir, (size_t) (slash - dir));
                if (!parent)
                        return log_oom();
                r = mkdir_p(parent, 0755);
                if (r < 0)
                        return log_error_errno(r, "Failed to create %s: %m", parent);
        }
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create the mount point %s: %m", dir);
        /* The unprivileged readers must reach it whatever the umask (the unit runs with 0077). */
        if ((parent && chmod(parent, 0755) < 0) || chmod(dir, 0755) < 0)
                return log_error_errno(errno, "Failed to make %s accessible: %m", dir);
        /* Readable by the unprivileged services that parse it (they are "other" in their user namespace);
         * without Rock Ridge or on vfat the modes come from these options. */
        if (asprintf(&options, "ro,nosuid,nodev,noexec,%s", streq(d->fstype, "vfat") ? "uid=0,gid=0,fmask=0333,dmask=0222"
                                                                                       : "mode=0444,dmode=0555") < 0)
                return log_oom();
        /* spec §4.5: a failed mount is retried 3 times, after 1, 2 and 4 s (backoff_ms doubling). */
        for (unsigned attempt = 0;; attempt++) {
                r = mount_once(dev, dir, d->fstype, options);
                if (r >= 0)
                        break;
                if (attempt == 3 || r == -ENOMEM) {
                        (void) rmdir(dir);
                        return log_error_errno(r, "Failed to mount %s (label %s) as %s on %s: %m%s", dev, label, d->fstype, dir,
                                               r == -ENODEV ? " (the kernel has no such file system type)" : "");
                }
                log_info_errno(r, "Mounting %s on %s failed (%m), retrying in %u ms.", dev, dir, delay);
                (void) nanosleep(&(struct timespec) { delay / 1000, (long) (delay % 1000) * 1000000L }, NULL);
                delay *= 2;
        }
        log_info("Mounted the %s config drive %s (label %s, %s) read-only on %s.", p->name, dev, label, d->fstype, dir);
        return 1;
}

int config_drive_umount(const char *dir) {
        struct libmnt_context *cxt;
        int r;

        r = config_drive_is_mounted(dir);
        if (r == -ENOENT || r == 0) {
                if (r == 0 && rmdir(dir) < 0 && errno != ENOTEMPTY)
                        log_debug_errno(errno, "Failed to remove %s: %m", dir);
                log_info("Nothing is mounted at %s.", dir);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to check the mount point %s: %m", dir);
        cxt = mnt_new_context();
        if (!cxt)
                return log_oom();
        r = mnt_context_disable_helpers(cxt, 1);
        if (r >= 0)
                r = mnt_context_disable_mtab(cxt, 1);
        if (r >= 0)
                r = mnt_context_set_optsmode(cxt, MNT_OMODE_NOTAB);
        if (r >= 0)
                r = mnt_context_set_target(cxt, dir);
        if (r >= 0) {
                r = mnt_context_umount(cxt);
                if (r > 0)
                        r = -r;
        }
        mnt_free_context(cxt);
        if (r < 0)
                return log_error_errno(r, "Failed to unmount %s: %m", dir);
        if (rmdir(dir) < 0)
                log_warning_errno(errno, "Unmounted %s, but failed to remove the directory: %m", dir);
        log_info("Unmounted the config drive from %s.", dir);
        return 0;
}
