/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <ctype.h>
#include <sys/stat.h>

#include "verity-check-roothash.h"

static const char *const arch_table[_KERNEL_ARCH_MAX] = {
        [KERNEL_ARCH_AMD64] = "amd64",
        [KERNEL_ARCH_ARM64] = "arm64",
};

const char *kernel_arch_to_string(KernelArch a) {
        if (a < 0 || a >= _KERNEL_ARCH_MAX)
                return NULL;
        return arch_table[a];
}

KernelArch kernel_arch_from_string(const char *s) {
        if (!s)
                return _KERNEL_ARCH_INVALID;
        if (streq(s, "amd64") || streq(s, "x86_64") || streq(s, "x86-64"))
                return KERNEL_ARCH_AMD64;
        if (streq(s, "arm64") || streq(s, "aarch64"))
                return KERNEL_ARCH_ARM64;
        return _KERNEL_ARCH_INVALID;
}

uint64_t kernel_arch_hash_offset(KernelArch a) {
        return a == KERNEL_ARCH_ARM64 ? 512 : 64;
}

KernelArch kernel_arch_native(void) {
#if defined(__x86_64__)
        return KERNEL_ARCH_AMD64;
#elif defined(__aarch64__)
        return KERNEL_ARCH_ARM64;
#else
        return _KERNEL_ARCH_INVALID;
#endif
}

static int pread_exact(int fd, void *buf, size_t size, off_t pos) {
        size_t done = 0;
        while (done < size) {
                ssize_t n = pread(fd, (uint8_t *) buf + done, size - done, pos + (off_t) done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                done += (size_t) n;
        }
        return 0;
}

int kernel_detect_arch(int fd, KernelArch *ret) {
        uint8_t m[4];

        if (pread_exact(fd, m, 4, 0x38) >= 0 && memcmp(m, "ARM\x64", 4) == 0) {
                *ret = KERNEL_ARCH_ARM64;
                return 0;
        }
        if (pread_exact(fd, m, 4, 0x202) >= 0 && memcmp(m, "HdrS", 4) == 0) {
                *ret = KERNEL_ARCH_AMD64;
                return 0;
        }
        return -ENOENT;
}

int root_hash_validate(const char *s) {
        if (!s || strlen(s) != ROOT_HASH_HEX_LEN)
                return -EINVAL;
        for (size_t i = 0; i < ROOT_HASH_HEX_LEN; i++)
                if (!isxdigit((unsigned char) s[i]))
                        return -EINVAL;
        return 0;
}

int kernel_read_root_hash(int fd, KernelArch arch, char ret[ROOT_HASH_HEX_LEN + 1]) {
        char buf[ROOT_HASH_HEX_LEN];
        int r;

        if (arch < 0 || arch >= _KERNEL_ARCH_MAX)
                return -EINVAL;
        r = pread_exact(fd, buf, sizeof buf, (off_t) kernel_arch_hash_offset(arch));
        if (r < 0)
                return r;
        /* Exactly what GRUB accepts: all lower-case hex, else there is no hash. */
        for (size_t i = 0; i < sizeof buf; i++)
                if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f')))
                        return -ENODATA;
        memcpy(ret, buf, sizeof buf);
        ret[ROOT_HASH_HEX_LEN] = 0;
        return 0;
}

int kernel_write_root_hash(int fd, KernelArch arch, const char *hex) {
        char buf[ROOT_HASH_HEX_LEN];
        uint64_t off;
        struct stat st;
        size_t done = 0;

        if (arch < 0 || arch >= _KERNEL_ARCH_MAX || root_hash_validate(hex) < 0)
                return -EINVAL;
        off = kernel_arch_hash_offset(arch);
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t) st.st_size < off + ROOT_HASH_HEX_LEN)
                return -ENOSPC;
        for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (char) tolower((unsigned char) hex[i]);
        while (done < sizeof buf) {
                ssize_t n = pwrite(fd, buf + done, sizeof buf - done, (off_t) (off + done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) n;
        }
        return fsync(fd) < 0 && errno != EINVAL ? -errno : 0;
}

/* Splits like the kernel does: whitespace separates words, double quotes group (and are dropped). */
static const char *next_word(const char *p, char *buf, size_t size, bool *ret_truncated) {
        bool quoted = false;
        size_t n = 0;

        *ret_truncated = false;
        while (*p && isspace((unsigned char) *p))
                p++;
        if (!*p)
                return NULL;
        for (; *p && (quoted || !isspace((unsigned char) *p)); p++) {
                if (*p == '"') {
                        quoted = !quoted;
                        continue;
                }
                if (n + 1 < size)
                        buf[n++] = *p;
                else
                        *ret_truncated = true;
        }
        buf[n] = 0;
        return p;
}

int cmdline_get_value(const char *cmdline, const char *key, char **ret) {
        _cleanup_free_ char *found = NULL;
        size_t len = strlen(cmdline) + 1;
        _cleanup_free_ char *word = malloc(len);
        const char *p = cmdline;
        bool trunc;

        if (!word)
                return -ENOMEM;
        while ((p = next_word(p, word, len, &trunc))) {
                const char *v = startswith(word, key);
                if (v && *v == '=') {
                        free(found);
                        found = strdup(v + 1);
                        if (!found)
                                return -ENOMEM;
                }
        }
        if (!found)
                return -ENOENT;
        *ret = TAKE_PTR(found);
        return 0;
}

int cmdline_get_usrhash(const char *cmdline, char ret[ROOT_HASH_HEX_LEN + 1]) {
        _cleanup_free_ char *v = NULL;
        int r = cmdline_get_value(cmdline, "verity.usrhash", &v);
        if (r < 0)
                return r;
        if (root_hash_validate(v) < 0)
                return -EINVAL;
        for (size_t i = 0; i <= ROOT_HASH_HEX_LEN; i++)
                ret[i] = (char) tolower((unsigned char) v[i]);
        return 0;
}
