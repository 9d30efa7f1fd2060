/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include "fileio.h"
#include "hardening-fs.h"
#include "hardening-parse.h"

static const char *const node_type_table[_NODE_TYPE_MAX] = {
    [NODE_ABSENT] = "absent", [NODE_FILE] = "file",          [NODE_SYMLINK] = "symlink",
    [NODE_DIR] = "directory", [NODE_OTHER] = "special file",
};

const char *node_type_to_string(NodeType t)
{
        return t >= 0 && t < _NODE_TYPE_MAX ? node_type_table[t] : NULL;
}

NodeType node_type_from_string(const char *s)
{
        for (int i = 0; s && i < _NODE_TYPE_MAX; i++)
                if (streq(node_type_table[i], s))
                        return (NodeType)i;
        return _NODE_TYPE_INVALID;
}

void node_done(Node *n)
{
        n->data = mfree(n->data);
        n->size = 0;
}

int node_copy(const Node *src, Node *ret)
{
        Node n = *src;

        n.data = NULL;
        if (src->data) {
                n.data = malloc(src->size + 1);
                if (!n.data)
                        return -ENOMEM;
                memcpy(n.data, src->data, src->size);
                n.data[src->size] = '\0';
        }
        *ret = n;
        return 0;
}

bool node_same(const Node *a, const Node *b)
{
        if (a->type != b->type)
                return false;
        if (a->type == NODE_FILE && (a->mode & 07777) != (b->mode & 07777))
                return false;
        if (a->type == NODE_FILE || a->type == NODE_SYMLINK)
                return a->size == b->size && (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
        return true;
}

static int node_set_data(Node *n, const char *data, size_t size)
{
        char *d = malloc(size + 1);
        if (!d)
                return -ENOMEM;
        memcpy(d, data, size);
        d[size] = '\0';
        free(n->data);
        n->data = d;
        n->size = size;
        return 0;
}

int node_set_file(Node *n, const char *data, size_t size, mode_t mode)
{
        n->type = NODE_FILE;
        n->mode = mode;
        return node_set_data(n, data, size);
}

int node_set_symlink(Node *n, const char *target)
{
        n->type = NODE_SYMLINK;
        n->mode = 0777;
        return node_set_data(n, target, strlen(target));
}

int root_open(const char *path, int *ret_fd)
{
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

int root_lock(int rootfd)
{
        /* Serialises apply/revert runs on one root (the boot service and the varlink service). */
        return flock(rootfd, LOCK_EX) < 0 ? -errno : 0;
}

/* Splits "/a/b/c" into a malloc'ed "a/b" (or ".") and a pointer to "c". Rejects "..", "." and empty
 * names so that a path can never climb out lexically either. */
static int path_split(const char *path, char **ret_dir, const char **ret_name)
{
        const char *p = path, *slash;
        _cleanup_free_ char *dir = NULL;

        while (*p == '/')
                p++;
        if (!*p)
                return -EINVAL;
        for (const char *c = p; *c;) {
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return -EINVAL;
                c += n;
                if (*c == '/')
                        c++;
        }
        if (endswith(p, "/"))
                return -EINVAL;
        slash = strrchr(p, '/');
        dir = slash ? strndup(p, (size_t)(slash - p)) : strdup(".");
        if (!dir)
                return -ENOMEM;
        *ret_name = slash ? slash + 1 : p;
        *ret_dir = TAKE_PTR(dir);
        return 0;
}

/* openat(O_DIRECTORY|O_NOFOLLOW) on a symlink fails with ENOTDIR; report it as the symlink it is. */
static int openat_dir_nofollow(int dfd, const char *name)
{
        struct stat st;
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd >= 0)
                return fd;
        if (errno == ENOTDIR && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISLNK(st.st_mode))
                return -ELOOP;
        return -errno;
}

/* Walks dir one component at a time with O_NOFOLLOW: the fallback when openat2() is unavailable. */
static int open_dir_walk(int rootfd, const char *dir)
{
        _cleanup_close_ int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *copy = strdup(dir);
        char *save = NULL;

        if (fd < 0)
                return -errno;
        if (!copy)
                return -ENOMEM;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                int nfd;
                if (streq(c, "."))
                        continue;
                if (streq(c, ".."))
                        return -EINVAL;
                nfd = openat_dir_nofollow(fd, c);
                if (nfd < 0)
                        return nfd;
                safe_close(fd);
                fd = nfd;
        }
        return TAKE_FD(fd);
}

static bool openat2_disabled = false;

void root_disable_openat2(void)
{
        openat2_disabled = true;
}

static int openat2_in_root(int rootfd, const char *path, uint64_t flags, uint64_t resolve)
{
        struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
        long fd;

        if (openat2_disabled)
                return -ENOSYS;
        fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
        return fd < 0 ? -errno : (int)fd;
}

/* Opens the directory dir (relative to root) as O_RDONLY without following symlinks. */
static int open_dir_nofollow(int rootfd, const char *dir)
{
        int fd = openat2_in_root(rootfd, dir, O_RDONLY | O_DIRECTORY,
                                 RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (fd == -ENOSYS || fd == -EPERM)
                fd = open_dir_walk(rootfd, dir);
        return fd;
}

static int open_parent(int rootfd, const char *path, int *ret_dirfd, const char **ret_name)
{
        _cleanup_free_ char *dir = NULL;
        int r, fd;

        r = path_split(path, &dir, ret_name);
        if (r < 0)
                return r;
        fd = open_dir_nofollow(rootfd, dir);
        if (fd < 0)
                return fd;
        *ret_dirfd = fd;
        return 0;
}

static bool fd_is_read_only(int fd, const struct stat *st)
{
        struct statvfs sv;
        int flags = 0;

        if (!(st->st_mode & S_IWUSR))
                return true;
        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) >= 0 && (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL)))
                return true;
        return fstatvfs(fd, &sv) >= 0 && (sv.f_flag & ST_RDONLY);
}

int root_read_node(int rootfd, const char *path, Node *ret)
{
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        const char *name;
        struct stat st;
        size_t size = 0;
        Node n = {};
        int r;

        r = open_parent(rootfd, path, &dfd, &name);
        if (r == -ENOENT) {
                *ret = (Node){.type = NODE_ABSENT};
                return 0;
        }
        if (r < 0)
                return r;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT)
                        return -errno;
                *ret = (Node){.type = NODE_ABSENT};
                return 0;
        }
        n.uid = st.st_uid;
        n.gid = st.st_gid;
        n.mode = st.st_mode & 07777;
        if (S_ISLNK(st.st_mode)) {
                char buf[PATH_MAX + 1];
                ssize_t l = readlinkat(dfd, name, buf, sizeof buf - 1);
                if (l < 0)
                        return -errno;
                n.type = NODE_SYMLINK;
                data = strndup(buf, (size_t)l);
                if (!data)
                        return -ENOMEM;
                size = (size_t)l;
        } else if (S_ISDIR(st.st_mode)) {
                n.type = NODE_DIR;
        } else if (S_ISREG(st.st_mode)) {
                struct stat st2;
                fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                if (fstat(fd, &st2) < 0)
                        return -errno;
                if (!S_ISREG(st2.st_mode) || st2.st_ino != st.st_ino)
                        return -EAGAIN; /* replaced under our feet */
                r = read_full_fd(fd, NODE_SIZE_MAX, &data, &size);
                if (r < 0)
                        return r;
                n.type = NODE_FILE;
                n.read_only = fd_is_read_only(fd, &st2);
        } else
                n.type = NODE_OTHER;
        n.data = TAKE_PTR(data);
        n.size = size;
        *ret = n;
        return 0;
}

int root_read_file_in_root(int rootfd, const char *path, char **ret_data, size_t *ret_size)
{
        _cleanup_close_ int pfd = -EBADF, fd = -EBADF;
        char proc[64];
        struct stat st, st2;

        while (*path == '/')
                path++;
        /* O_PATH first: a device node or fifo the symlink chain ends at is never opened. */
        pfd =
            openat2_in_root(rootfd, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
        if (pfd == -ENOSYS || pfd == -EPERM)
                /* Without openat2 there is no safe way to follow symlinks inside the root. */
                return -EOPNOTSUPP;
        if (pfd < 0)
                return pfd;
        if (fstat(pfd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        (void)snprintf(proc, sizeof proc, "/proc/self/fd/%i", pfd);
        fd = open(proc, O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st2) < 0)
                return -errno;
        if (st2.st_ino != st.st_ino || st2.st_dev != st.st_dev)
                return -EAGAIN;
        return read_full_fd(fd, NODE_SIZE_MAX, ret_data, ret_size);
}

int root_mkdir_parents(int rootfd, const char *path, char ***created)
{
        _cleanup_free_ char *dir = NULL, *sofar = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *name;
        char *save = NULL;
        int r;

        r = path_split(path, &dir, &name);
        if (r < 0)
                return r;
        fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        sofar = strdup("");
        if (!sofar)
                return -ENOMEM;
        for (char *c = strtok_r(dir, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                char *np;
                int nfd;

                if (streq(c, "."))
                        continue;
                if (asprintf(&np, "%s/%s", sofar, c) < 0)
                        return -ENOMEM;
                free(sofar);
                sofar = np;
                bool made = mkdirat(fd, c, 0755) >= 0;
                if (made) {
                        r = strv_push(created, sofar);
                        if (r < 0)
                                return r;
                } else if (errno != EEXIST)
                        return -errno;
                nfd = openat_dir_nofollow(fd, c);
                if (nfd < 0)
                        return nfd;
                /* 0755 whatever the umask, as Ignition creates them. */
                if (made && fchmod(nfd, 0755) < 0) {
                        r = -errno;
                        safe_close(nfd);
                        return r;
                }
                safe_close(fd);
                fd = nfd;
        }
        return 0;
}

static int tmp_name(const char *name, char **ret)
{
        static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        char sfx[9];
        uint64_t x;

        if (getentropy(&x, sizeof x) < 0)
                x = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&x;
        for (size_t i = 0; i < 8; i++, x /= 36)
                sfx[i] = chars[x % 36];
        sfx[8] = '\0';
        return asprintf(ret, ".#hardening.%.64s.%s", name, sfx) < 0 ? -ENOMEM : 0;
}

int root_write_node(int rootfd, const char *path, const Node *n)
{
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *tmp = NULL;
        const char *name;
        int r;

        r = open_parent(rootfd, path, &dfd, &name);
        if (r < 0)
                return r;
        if (n->type == NODE_ABSENT) {
                if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
                        return -errno;
                (void)fsync(dfd);
                return 0;
        }
        for (int attempt = 0;; attempt++) {
                tmp = mfree(tmp);
                r = tmp_name(name, &tmp);
                if (r < 0)
                        return r;
                if (n->type == NODE_FILE) {
                        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                        r = fd < 0 ? -errno : 0;
                } else if (n->type == NODE_SYMLINK)
                        r = symlinkat(n->data, dfd, tmp) < 0 ? -errno : 0;
                else
                        return -EINVAL;
                if (r != -EEXIST || attempt > 16)
                        break;
        }
        if (r < 0)
                return r;
        if (n->type == NODE_FILE) {
                r = loop_write(fd, n->data, n->size);
                if (r >= 0 && fchown(fd, n->uid, n->gid) < 0)
                        r = -errno;
                /* After chown, which may clear set-id bits. */
                if (r >= 0 && fchmod(fd, n->mode & 07777) < 0)
                        r = -errno;
                if (r >= 0 && fsync(fd) < 0)
                        r = -errno;
        } else if (fchownat(dfd, tmp, n->uid, n->gid, AT_SYMLINK_NOFOLLOW) < 0)
                r = -errno;
        if (r >= 0 && renameat(dfd, tmp, dfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dfd, tmp, 0);
                return r;
        }
        (void)fsync(dfd);
        return 0;
}

int root_rmdir(int rootfd, const char *path)
{
        _cleanup_close_ int dfd = -EBADF;
        const char *name;
        int r;

        r = open_parent(rootfd, path, &dfd, &name);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0)
                return errno == ENOENT ? 0 : (errno == EEXIST ? -ENOTEMPTY : -errno);
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int root_list_dir(int rootfd, const char *path, char ***ret)
{
        _cleanup_(strv_freep) char **l = calloc(1, sizeof(char *));
        _cleanup_closedir_ DIR *d = NULL;
        int fd, r;

        if (!l)
                return -ENOMEM;
        while (*path == '/')
                path++;
        fd = open_dir_nofollow(rootfd, *path ? path : ".");
        if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP) {
                *ret = TAKE_PTR(l);
                return 0;
        }
        if (fd < 0)
                return fd;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                r = strv_push(&l, de->d_name);
                if (r < 0)
                        return r;
        }
        qsort(l, strv_length(l), sizeof(char *), cmp_str);
        *ret = TAKE_PTR(l);
        return 0;
}

int root_is_dir(int rootfd, const char *path)
{
        _cleanup_close_ int fd = -EBADF;

        while (*path == '/')
                path++;
        fd = open_dir_nofollow(rootfd, *path ? path : ".");
        return fd >= 0;
}

int root_find_symlink(int rootfd, const char *path, char **ret_component, char **ret_target)
{
        _cleanup_free_ char *copy = strdup(path), *sofar = strdup("");
        char *save = NULL;

        if (!copy || !sofar)
                return -ENOMEM;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                char buf[PATH_MAX + 1], *np;
                struct stat st;
                ssize_t l;

                if (asprintf(&np, "%s/%s", sofar, c) < 0)
                        return -ENOMEM;
                free(sofar);
                sofar = np;
                if (fstatat(rootfd, sofar + 1, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (!S_ISLNK(st.st_mode))
                        continue;
                l = readlinkat(rootfd, sofar + 1, buf, sizeof buf - 1);
                if (l < 0)
                        return -errno;
                buf[l] = '\0';
                *ret_target = strdup(buf);
                if (!*ret_target)
                        return -ENOMEM;
                *ret_component = TAKE_PTR(sofar);
                return 1;
        }
        return 0;
}

int symlink_resolve_lexically(const char *path, const char *target, char **ret)
{
        _cleanup_free_ char *joined = NULL, *out = NULL;
        char *save = NULL;
        size_t len = 0;

        if (target[0] == '/')
                joined = strdup(target);
        else {
                const char *slash = strrchr(path, '/');
                if (asprintf(&joined, "%.*s/%s", slash ? (int)(slash - path) : 0, path, target) < 0)
                        joined = NULL;
        }
        if (!joined)
                return -ENOMEM;
        out = calloc(1, strlen(joined) + 2);
        if (!out)
                return -ENOMEM;
        for (char *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (streq(c, "."))
                        continue;
                if (streq(c, "..")) {
                        char *p;
                        if (len == 0)
                                return -EXDEV; /* climbs above the root */
                        p = strrchr(out, '/');
                        *p = '\0';
                        len = (size_t)(p - out);
                        continue;
                }
                out[len++] = '/';
                strcpy(out + len, c);
                len += strlen(c);
        }
        if (len == 0)
                strcpy(out, "/");
        *ret = TAKE_PTR(out);
        return 0;
}
