/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Small helpers used everywhere: cleanup attributes, ownership transfer, errno helpers. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _public_ __attribute__((visibility("default")))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(x, y) (((x) + (y) - 1) / (y))
#define ALIGN_TO(x, a) (DIV_ROUND_UP((x), (a)) * (a))

/* An invented failure: the negative errno travels together with the message that explains it. */
#define SYNTHETIC_ERRNO(e) (-(int) (e))
#define ERRNO_VALUE(r) ((r) < 0 ? -(r) : (r))

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

/* Closes fd unless negative, keeps errno, returns -EBADF so that "fd = safe_close(fd);" is one line. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline FILE *safe_fclose(FILE *f) {
        if (f)
                (void) fclose(f);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
static inline void fclosep(FILE **f) {
        safe_fclose(*f);
}
struct __dirstream;
int closedir(struct __dirstream *d);
static inline void closedirp(struct __dirstream **d) {
        if (*d)
                (void) closedir(*d);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                              \
        static inline void func##p(type *p) {                                                                \
                if (*p)                                                                                      \
                        *p = func(*p);                                                                       \
        }
/* For free functions returning void. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(type, func)                                                         \
        static inline void func##p(type *p) {                                                                \
                if (*p)                                                                                      \
                        func(*p);                                                                            \
        }

#define TAKE_PTR(p)                                                                                          \
        ({                                                                                                   \
                __typeof__(p) _p_ = (p);                                                                     \
                (p) = NULL;                                                                                  \
                _p_;                                                                                         \
        })
#define TAKE_FD(fd)                                                                                          \
        ({                                                                                                   \
                int _fd_ = (fd);                                                                             \
                (fd) = -EBADF;                                                                               \
                _fd_;                                                                                        \
        })

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}
static inline bool isempty(const char *s) {
        return !s || !*s;
}
/* Returns the rest of s after prefix, or NULL. */
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}
const char *endswith(const char *s, const char *suffix);

#define strjoina(a, b)                                                                                       \
        ({                                                                                                   \
                const char *_a_ = (a), *_b_ = (b);                                                           \
                size_t _la_ = strlen(_a_), _lb_ = strlen(_b_);                                               \
                char *_r_ = alloca(_la_ + _lb_ + 1);                                                         \
                memcpy(_r_, _a_, _la_);                                                                      \
                memcpy(_r_ + _la_, _b_, _lb_ + 1);                                                           \
                _r_;                                                                                         \
        })

/* Integer parsing that rejects junk, signs where not allowed, and overflow. */
int safe_atou64(const char *s, uint64_t *ret);
int safe_atoi64(const char *s, int64_t *ret);
int safe_atou32(const char *s, uint32_t *ret);

/* "1G", "512M", "4096" → bytes (binary suffixes K, M, G, T). */
int parse_size(const char *s, uint64_t *ret);
