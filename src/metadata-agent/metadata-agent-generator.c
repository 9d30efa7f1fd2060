/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* metadata-agent-generator: a systemd generator (systemd.generator(7)). For a config-drive provider on
 * the kernel command line it writes one .mount unit per label of the provider's drive, so that PID 1
 * mounts the drive read-only and no service of metadata-agent needs any privilege, plus drop-ins that
 * make the readers want the mounts and start after them. It reads only the kernel command line: no
 * devices, no network. */
#include <getopt.h>
#include <sys/stat.h>

#include "fileio.h"
#include "log.h"
#include "metadata-agent-cmdline.h"
#include "metadata-agent-drives.h"

/* Config drives are attached before the VM is started, so udev's coldplug creates
 * /dev/disk/by-label/LABEL within moments of systemd-udev-trigger.service. The timeout only bounds the
 * wait for a label that is not there, which every boot of a two-label provider (kubevirt, cloudstack)
 * has: 10 s leaves a loaded host ample time and delays the readers at most that long. */
#define DEVICE_TIMEOUT "10s"

/* The units that read the drive. */
static const char *const readers[] = {
        "metadata-agent.service",
        "metadata-agent-sshkeys@.service",
        "metadata-agent-varlink.service",
};

static void help(const char *prog) {
        printf("%s NORMAL-DIR [EARLY-DIR LATE-DIR]\n\n"
               "systemd generator: for a config-drive provider named by flatcar.oem.id=, coreos.oem.id= or\n"
               "ignition.platform.id= on the kernel command line, writes the .mount units that mount its\n"
               "drive read-only below " CONFIG_DRIVE_DIR " and drop-ins that order\n"
               "metadata-agent's units after them. Writes nothing for other providers.\n\n"
               "Environment: SWITCHYARD_METADATA_CMDLINE=FILE reads the command line from FILE\n"
               "(default /proc/cmdline).\n\n"
               "  --help, --version\n",
               prog);
}

/* The unit name of a path, by systemd's rules (systemd.unit(5), `systemd-escape --path`): slashes
 * squeezed and trimmed, '/' becomes '-', [A-Za-z0-9:_.] stay (but a leading '.'), the rest is \xNN. */
static int unit_name_from_path(const char *path, const char *suffix, char **ret) {
        _cleanup_free_ char *s = NULL;
        size_t n = 0;
        bool slash = false;

        s = malloc(strlen(path) * 4 + strlen(suffix) + 2);
        if (!s)
                return -ENOMEM;
        path += strspn(path, "/");
        for (const char *p = path; *p; p++) {
                unsigned char ch = (unsigned char) *p;
                if (ch == '/') {
                        slash = true;
                        continue;
                }
                if (slash && n > 0)
                        s[n++] = '-';
                slash = false;
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == ':' ||
                    ch == '_' || (ch == '.' && n > 0))
                        s[n++] = (char) ch;
                else
                        n += (size_t) sprintf(s + n, "\\x%02x", ch);
        }
        if (n == 0)
                s[n++] = '-';
        strcpy(s + n, suffix);
        *ret = TAKE_PTR(s);
        return 0;
}

static int write_unit_file(const char *dir, const char *name, const char *contents) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return log_oom();
        if (strchr(name, '/')) {
                _cleanup_free_ char *parent = strndup(path, (size_t) (strrchr(path, '/') - path));
                if (!parent)
                        return log_oom();
                r = mkdir_p(parent, 0755);
                if (r < 0)
                        return log_error_errno(r, "Failed to create %s: %m", parent);
        }
        r = write_string_file_atomic(path, contents, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

static int generate(const char *dir, const char *provider, const ConfigDrive *d) {
        _cleanup_free_ char *units = NULL;
        const char *options = streq(d->fstype, "vfat") ? "uid=0,gid=0,fmask=0333,dmask=0222" : "mode=0444,dmode=0555";
        int r;

        units = strdup("");
        if (!units)
                return log_oom();
        for (size_t i = 0; i < ELEMENTSOF(d->labels) && d->labels[i]; i++) {
                const char *label = d->labels[i];
                _cleanup_free_ char *what = NULL, *where = NULL, *mount = NULL, *device = NULL, *text = NULL,
                                    *dropin = NULL, *more = NULL;

                if (asprintf(&what, "/dev/disk/by-label/%s", label) < 0 ||
                    asprintf(&where, CONFIG_DRIVE_DIR "/%s", label) < 0)
                        return log_oom();
                r = unit_name_from_path(where, ".mount", &mount);
                if (r >= 0)
                        r = unit_name_from_path(what, ".device", &device);
                if (r < 0)
                        return log_oom();
                /* Read by metadata-agent's unprivileged services (DynamicUser=, User=%i): "other" may read
                 * (iso9660 without Rock Ridge and vfat take their modes from the options). nofail: not part
                 * of local-fs.target, a missing drive fails nothing. StopWhenUnneeded: unmounted when no
                 * reader wants it any more. */
                if (asprintf(&text,
                             "# Written by metadata-agent-generator: the %s config drive (label %s).\n"
                             "[Unit]\n"
                             "Description=Metadata Agent config drive %s\n"
                             "Documentation=man:metadata-agent-generator(8)\n"
                             "StopWhenUnneeded=yes\n"
                             "%s"
                             "\n"
                             "[Mount]\n"
                             "What=%s\n"
                             "Where=%s\n"
                             "Type=%s\n"
                             "Options=ro,nosuid,nodev,noexec,nofail,%s\n"
                             "DirectoryMode=0755\n",
                             provider, label, label,
                             d->needs_virtio_blk ? "Wants=modprobe@virtio_blk.service\nAfter=modprobe@virtio_blk.service\n" : "",
                             what, where, d->fstype, options) < 0)
                        return log_oom();
                r = write_unit_file(dir, mount, text);
                if (r < 0)
                        return r;
                /* What systemd-fstab-generator makes of x-systemd.device-timeout= (PID 1 does not read
                 * that option in a .mount unit): the wait for the device is bounded. */
                if (asprintf(&dropin, "%s.d/50-metadata-agent-device-timeout.conf", device) < 0)
                        return log_oom();
                r = write_unit_file(dir, dropin,
                                    "# Written by metadata-agent-generator: a config drive is attached before boot.\n"
                                    "[Unit]\n"
                                    "JobRunningTimeoutSec=" DEVICE_TIMEOUT "\n");
                if (r < 0)
                        return r;
                if (asprintf(&more, "%s%s%s", units, *units ? " " : "", mount) < 0)
                        return log_oom();
                free(units);
                units = TAKE_PTR(more);
        }

        /* Wants=, not Requires= or RequiresMountsFor=: a missing drive is no failure of the unit; the
         * program itself says whether the provider can do without it. */
        for (size_t i = 0; i < ELEMENTSOF(readers); i++) {
                _cleanup_free_ char *name = NULL, *text = NULL;
                if (asprintf(&name, "%s.d/50-metadata-agent-config-drive.conf", readers[i]) < 0 ||
                    asprintf(&text,
                             "# Written by metadata-agent-generator: the %s config drive.\n"
                             "[Unit]\n"
                             "Wants=%s\n"
                             "After=%s\n",
                             provider, units, units) < 0)
                        return log_oom();
                r = write_unit_file(dir, name, text);
                if (r < 0)
                        return r;
        }
        log_debug("Wrote %s for the %s config drive (label %s).", units, provider, config_drive_labels(d));
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        _cleanup_free_ char *cmdline = NULL, *platform = NULL;
        const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        const char *path, *dir;
        const ConfigDrive *d;
        struct stat st;
        int c, r;

        log_setup(argv[0]);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(prog);
                        return 0;
                case 'V':
                        printf("metadata-agent-generator %s\n", SWITCHYARD_VERSION);
                        return 0;
                default:
                        return 1;
                }
        /* systemd passes the normal, early and late output directories; only the first is written. */
        if (argc - optind != 1 && argc - optind != 3) {
                log_error("Expected 1 or 3 output directories (NORMAL-DIR [EARLY-DIR LATE-DIR]), got %d.", argc - optind);
                return 1;
        }
        dir = argv[optind];
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                log_error_errno(errno ?: ENOTDIR, "Output directory %s: %m", dir);
                return 1;
        }

        path = getenv("SWITCHYARD_METADATA_CMDLINE") ?: "/proc/cmdline";
        r = read_full_file(path, 64 * 1024, &cmdline, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to read the kernel command line from %s: %m", path);
                return 1;
        }
        r = cmdline_get_platform(cmdline, &platform);
        if (r < 0) {
                log_oom();
                return 1;
        }
        if (r == 0) {
                log_debug("No flatcar.oem.id=, coreos.oem.id= or ignition.platform.id= on the kernel command line.");
                return 0;
        }
        d = config_drive_find(platform);
        if (!d) {
                log_debug("Provider %s reads no config drive: nothing to mount.", platform);
                return 0;
        }
        return generate(dir, platform, d) < 0 ? 1 : 0;
}
