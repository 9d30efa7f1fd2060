/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "fileio.h"
#include "log.h"
#include "metadata-agent-output.h"

static int mkdir_parent(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        return mkdir_p(dirname(copy), 0755);
}

int output_write_attributes(const char *path, const Metadata *m, AttributeStyle style) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = metadata_format_attributes(m, style, &text);
        if (r < 0)
                return r;
        r = mkdir_parent(path);
        if (r < 0)
                return log_error_errno(r, "Failed to create the directory for %s: %m", path);
        r = write_string_file_atomic(path, text, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        log_info("Wrote %zu attribute%s to %s.", m->n_attrs, m->n_attrs == 1 ? "" : "s", path);
        return 0;
}

int output_write_hostname(const char *path, const Metadata *m) {
        _cleanup_free_ char *h = NULL, *line = NULL;
        int r;

        if (!m->hostname) {
                log_info("The provider gives no hostname, not writing %s.", path);
                return 0;
        }
        h = hostname_truncate(m->hostname);
        if (!h || asprintf(&line, "%s\n", h) < 0)
                return log_oom();
        if (strpbrk(h, "\r\n/") || isempty(h))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Refusing to write an unusable hostname.");
        r = mkdir_parent(path);
        if (r < 0)
                return log_error_errno(r, "Failed to create the directory for %s: %m", path);
        r = write_string_file_atomic(path, line, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        log_info("Wrote hostname %s to %s.", h, path);
        return 0;
}

typedef struct User {
        char *name, *home;
        uid_t uid;
        gid_t gid;
} User;

static void user_done(User *u) {
        free(u->name);
        free(u->home);
}

static int user_lookup(const char *root, const char *name, User *ret) {
        struct passwd *pw = NULL;
        _cleanup_fclose_ FILE *f = NULL;

        if (root) {
                _cleanup_free_ char *p = path_join_root(root, "/etc/passwd");
                if (!p)
                        return -ENOMEM;
                f = fopen(p, "re");
                if (!f)
                        return log_error_errno(errno, "Failed to open %s: %m", p);
                while ((pw = fgetpwent(f)))
                        if (streq(pw->pw_name, name))
                                break;
        } else {
                errno = 0;
                pw = getpwnam(name);
        }
        if (!pw)
                return log_error_errno(SYNTHETIC_ERRNO(ESRCH), "User %s does not exist.", name);
        if (!pw->pw_dir || pw->pw_dir[0] != '/')
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "User %s has no absolute home directory.", name);
        ret->name = strdup(pw->pw_name);
        ret->home = root ? path_join_root(root, pw->pw_dir) : strdup(pw->pw_dir);
        ret->uid = pw->pw_uid;
        ret->gid = pw->pw_gid;
        if (!ret->name || !ret->home)
                return -ENOMEM;
        return 0;
}

/* Opens (creating with mode 0700 and the user as owner if missing) a directory below dfd, never
 * following a symlink: the user owns these directories and could have planted one. */
static int open_user_dir(int dfd, const char *name, const User *u, bool create) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (create && mkdirat(dfd, name, 0700) >= 0) {
                fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                if (fstat(fd, &st) < 0)
                        return -errno;
                if ((st.st_uid != u->uid || st.st_gid != u->gid) && fchown(fd, u->uid, u->gid) < 0)
                        return -errno;
                return TAKE_FD(fd);
        }
        if (create && errno != EEXIST)
                return -errno;
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_uid != u->uid && st.st_uid != 0)
                return -EPERM;
        return TAKE_FD(fd);
}

int output_write_ssh_keys(const char *root, const char *user, const Metadata *m) {
        _cleanup_(user_done) User u = {};
        _cleanup_close_ int home = -EBADF, ssh = -EBADF, dir = -EBADF, fd = -EBADF;
        _cleanup_free_ char *text = NULL, *path = NULL;
        char tmp[] = ".afterburn-XXXXXX";
        size_t len = 1;
        int r;

        r = user_lookup(root, user, &u);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/.ssh/authorized_keys.d/afterburn", u.home) < 0)
                return log_oom();
        home = open(u.home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (home < 0)
                return log_error_errno(errno, "Failed to open home directory %s of %s: %m", u.home, user);

        if (m->n_ssh_keys == 0) {
                ssh = open_user_dir(home, ".ssh", &u, false);
                if (ssh >= 0)
                        dir = open_user_dir(ssh, "authorized_keys.d", &u, false);
                if (dir >= 0 && unlinkat(dir, "afterburn", 0) >= 0) {
                        (void) fsync(dir);
                        log_info("Removed %s (the provider lists no keys).", path);
                        (void) sd_journal_send("MESSAGE_ID=f8b91c53f5544868a3a10d0dcf68e9ea",
                                               "MESSAGE=removed ssh authorized keys file for user: %s", user,
                                               "AFTERBURN_USER_NAME=%s", user, "AFTERBURN_PATH=%s", path, NULL);
                } else if (dir >= 0 && errno != ENOENT)
                        return log_error_errno(errno, "Failed to remove %s: %m", path);
                else
                        log_info("The provider lists no SSH keys for %s.", user);
                return 0;
        }

        for (size_t i = 0; i < m->n_ssh_keys; i++)
                len += strlen(m->ssh_keys[i]) + 1;
        text = malloc(len);
        if (!text)
                return log_oom();
        text[0] = '\0';
        for (size_t i = 0; i < m->n_ssh_keys; i++) {
                strcat(text, m->ssh_keys[i]);
                strcat(text, "\n");
        }

        ssh = open_user_dir(home, ".ssh", &u, true);
        if (ssh < 0)
                return log_error_errno(ssh, "Failed to open %s/.ssh: %m", u.home);
        dir = open_user_dir(ssh, "authorized_keys.d", &u, true);
        if (dir < 0)
                return log_error_errno(dir, "Failed to open %s/.ssh/authorized_keys.d: %m", u.home);

        for (unsigned attempt = 0;; attempt++) {
                static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                uint8_t rnd[6];
                if (getentropy(rnd, sizeof(rnd)) < 0)
                        return log_error_errno(errno, "Failed to get random bytes: %m");
                for (size_t i = 0; i < 6; i++)
                        tmp[strlen(".afterburn-") + i] = chars[rnd[i] % (sizeof(chars) - 1)];
                fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || attempt > 100)
                        return log_error_errno(errno, "Failed to create a temporary file next to %s: %m", path);
        }
        r = loop_write(fd, text, strlen(text));
        if (r >= 0 && fchmod(fd, 0600) < 0)
                r = -errno;
        if (r >= 0 && fchown(fd, u.uid, u.gid) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dir, tmp, dir, "afterburn") < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dir, tmp, 0);
                return log_error_errno(r, "Failed to write %s: %m", path);
        }
        (void) fsync(dir);
        log_info("Wrote %zu SSH key%s for %s to %s.", m->n_ssh_keys, m->n_ssh_keys == 1 ? "" : "s", user, path);
        (void) sd_journal_send("MESSAGE_ID=0f7d7a502f2d433caa1323440a6b4190",
                               "MESSAGE=wrote ssh authorized keys file for user: %s", user,
                               "AFTERBURN_USER_NAME=%s", user, "AFTERBURN_PATH=%s", path, NULL);
        return 0;
}

int output_write_network_kargs(const char *root, const char *kargs) {
        _cleanup_free_ char *path = path_join_root(root, "/etc/cmdline.d/50-afterburn-network-kargs.conf");
        _cleanup_free_ char *line = NULL;
        int r;

        if (!path || asprintf(&line, "%s\n", kargs) < 0)
                return log_oom();
        r = mkdir_parent(path);
        if (r >= 0)
                r = write_string_file_atomic(path, line, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        log_info("Wrote network kernel arguments to %s.", path);
        return 0;
}

int output_write_network_units(const char *dir, const Metadata *m) {
        int r;

        r = mkdir_p(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", dir);
        for (size_t i = 0; i < m->n_net_units; i++) {
                _cleanup_free_ char *path = NULL;

                if (strchr(m->net_units[i].key, '/') || m->net_units[i].key[0] == '.')
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Refusing network unit name %s.", m->net_units[i].key);
                if (asprintf(&path, "%s/%s", dir, m->net_units[i].key) < 0)
                        return log_oom();
                r = write_string_file_atomic(path, m->net_units[i].value, 0644);
                if (r < 0)
                        return log_error_errno(r, "Failed to write %s: %m", path);
        }
        log_info("Wrote %zu network unit%s to %s.", m->n_net_units, m->n_net_units == 1 ? "" : "s", dir);
        return 0;
}
