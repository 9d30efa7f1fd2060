/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whole-file reads with a size cap, and crash-safe writes (temporary file, fsync, rename, fsync of the
 * directory), for state that must survive a restart. */

#include <sys/types.h>

#include "macro.h"

/* Reads all of fd/path into a NUL-terminated buffer. Fails with -EFBIG if it exceeds max_size. */
int read_full_fd(int fd, size_t max_size, char **ret_data, size_t *ret_size);
int read_full_file(const char *path, size_t max_size, char **ret_data, size_t *ret_size);
/* The first line without its newline; -ENOENT if the file is missing. */
int read_one_line_file(const char *path, char **ret_line);

/* Replaces path atomically with data; the file has the given mode. Creates nothing but the file. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
static inline int write_string_file_atomic(const char *path, const char *s, mode_t mode) {
        return write_file_atomic(path, s, strlen(s), mode);
}
/* mkdir -p with mode for each created component. */
int mkdir_p(const char *path, mode_t mode);
/* Writes all of buf, retrying on EINTR and short writes. */
int loop_write(int fd, const void *buf, size_t size);
/* Reads exactly size bytes unless EOF comes first; returns the number read. */
ssize_t loop_read(int fd, void *buf, size_t size);
/* Joins root and path ("/" or NULL root means path itself). Caller frees. */
char *path_join_root(const char *root, const char *path);
