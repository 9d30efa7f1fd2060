/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* File access below a root directory that may be hostile: paths are resolved with openat2()
 * RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS (or, where openat2 is unavailable, by walking one O_NOFOLLOW
 * component at a time), so no symlink is ever followed on the way to a file we write, and writes
 * replace the final name atomically (temporary file + renameat) instead of opening it. Paths are
 * given as they appear on the target system ("/etc/passwd"). */

#include <sys/types.h>

#include "macro.h"

#define NODE_SIZE_MAX (4u * 1024u * 1024u)

typedef enum NodeType {
        NODE_ABSENT,
        NODE_FILE,
        NODE_SYMLINK,
        NODE_DIR,
        NODE_OTHER, /* device, fifo, socket */
        _NODE_TYPE_MAX,
        _NODE_TYPE_INVALID = -EINVAL,
} NodeType;

const char *node_type_to_string(NodeType t);
NodeType node_type_from_string(const char *s);

typedef struct Node {
        NodeType type;
        mode_t mode; /* permission bits; files only */
        uid_t uid;
        gid_t gid;
        char *data; /* file contents, or symlink target (NUL-terminated either way) */
        size_t size;
        bool read_only; /* immutable or append-only attribute, no owner write bit, or read-only mount */
} Node;

void node_done(Node *n);
int node_copy(const Node *src, Node *ret);
/* Same type, and for files the same mode and contents, for symlinks the same target. Owners are
 * not compared: they are preserved when editing and root's when creating. */
bool node_same(const Node *a, const Node *b);
int node_set_file(Node *n, const char *data, size_t size, mode_t mode);
int node_set_symlink(Node *n, const char *target);

/* Behave as on kernels without openat2() (< 5.6): walk O_NOFOLLOW components. For tests. */
void root_disable_openat2(void);

/* Opens root as a directory fd. */
int root_open(const char *path, int *ret_fd);
/* Takes an exclusive flock() on the root directory, waiting for other runs to finish. */
int root_lock(int rootfd);
/* Reads what is at path without following any symlink. A missing file (or missing parent) gives
 * NODE_ABSENT. -ELOOP if a parent component is a symlink, -ENOTDIR if one is not a directory,
 * -EFBIG beyond NODE_SIZE_MAX. */
int root_read_node(int rootfd, const char *path, Node *ret);
/* Reads a regular file, following symlinks the way the target system would but never leaving root
 * (RESOLVE_IN_ROOT). -ENOENT if missing. */
int root_read_file_in_root(int rootfd, const char *path, char **ret_data, size_t *ret_size);
/* Creates path's missing parent directories (0755), pushing each created one onto *created. */
int root_mkdir_parents(int rootfd, const char *path, char ***created);
/* Replaces path with n atomically (regular file, symlink) or removes it (NODE_ABSENT). The parent must
 * exist. Never follows a symlink. */
int root_write_node(int rootfd, const char *path, const Node *n);
/* Removes an empty directory; 0 if removed or already gone, -ENOTEMPTY if not empty. */
int root_rmdir(int rootfd, const char *path);
/* Names in a directory (sorted, without . and ..). A missing directory gives an empty list. */
int root_list_dir(int rootfd, const char *path, char ***ret);
/* 1 if path is a directory (not a symlink to one), 0 if not. */
int root_is_dir(int rootfd, const char *path);
/* For error messages: the first component of path that is a symlink, and where it points. */
int root_find_symlink(int rootfd, const char *path, char **ret_component, char **ret_target);
/* Lexically resolves a symlink target found at path into an absolute path inside root (absolute
 * targets are taken relative to root, as the target system sees them). -EXDEV if ".." climbs out. */
int symlink_resolve_lexically(const char *path, const char *target, char **ret);
