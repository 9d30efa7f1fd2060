/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/stat.h>

#include "fileio.h"
#include "log.h"
#include "payload-writer-keys.h"

typedef struct TrustedKey {
        EVP_PKEY *key;
        char *name;
} TrustedKey;

struct TrustedKeys {
        TrustedKey *keys;
        size_t n;
};

int trusted_keys_new(TrustedKeys **ret) {
        TrustedKeys *k = calloc(1, sizeof *k);
        if (!k)
                return -ENOMEM;
        *ret = k;
        return 0;
}

TrustedKeys *trusted_keys_free(TrustedKeys *k) {
        if (!k)
                return NULL;
        for (size_t i = 0; i < k->n; i++) {
                EVP_PKEY_free(k->keys[i].key);
                free(k->keys[i].name);
        }
        free(k->keys);
        return mfree(k);
}

size_t trusted_keys_count(const TrustedKeys *k) {
        return k ? k->n : 0;
}

const char *trusted_keys_name(const TrustedKeys *k, size_t i) {
        return i < k->n ? k->keys[i].name : NULL;
}

static int add_file(TrustedKeys *k, int dirfd, const char *name, const char *display) {
        _cleanup_close_ int fd = -EBADF;
        EVP_PKEY *key;
        FILE *f;
        int added = 0;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open key %s: %m", display);
        f = fdopen(fd, "re");
        if (!f)
                return log_error_errno(errno, "Failed to open key %s: %m", display);
        TAKE_FD(fd);
        /* A file may hold several keys (a bundle); each counts. */
        while ((key = PEM_read_PUBKEY(f, NULL, NULL, NULL))) {
                TrustedKey *n = realloc(k->keys, (k->n + 1) * sizeof *n);
                if (!n) {
                        EVP_PKEY_free(key);
                        fclose(f);
                        return log_oom();
                }
                k->keys = n;
                k->keys[k->n].key = key;
                k->keys[k->n].name = strdup(display);
                if (!k->keys[k->n].name) {
                        EVP_PKEY_free(key);
                        fclose(f);
                        return log_oom();
                }
                k->n++;
                added++;
        }
        fclose(f);
        /* The loop ends on the PEM reader's "no start line": not an error worth keeping around. */
        ERR_clear_error();
        if (added == 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Key file %s holds no PEM public key.", display);
        return added;
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int trusted_keys_add_path(TrustedKeys *k, const char *path, bool missing_ok) {
        struct stat st;
        _cleanup_closedir_ DIR *d = NULL;
        char **names = NULL;
        size_t n = 0;
        int r = 0, total = 0;

        if (stat(path, &st) < 0) {
                if (errno == ENOENT && missing_ok)
                        return 0;
                return log_error_errno(errno, "Failed to access trusted key path %s: %m", path);
        }
        if (!S_ISDIR(st.st_mode))
                return add_file(k, AT_FDCWD, path, path);

        d = opendir(path);
        if (!d)
                return log_error_errno(errno, "Failed to open key directory %s: %m", path);
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                char **nn = realloc(names, (n + 1) * sizeof *nn);
                if (!nn) {
                        r = log_oom();
                        break;
                }
                names = nn;
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = log_oom();
                        break;
                }
                n++;
        }
        if (r >= 0 && n > 0)
                qsort(names, n, sizeof *names, name_cmp);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *display = NULL;
                if (asprintf(&display, "%s/%s", path, names[i]) < 0) {
                        r = log_oom();
                        break;
                }
                r = add_file(k, dirfd(d), names[i], display);
                if (r > 0)
                        total += r;
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r < 0 ? r : total;
}

int trusted_keys_load(const char *root, char *const *paths, size_t n, TrustedKeys **ret) {
        _cleanup_(trusted_keys_freep) TrustedKeys *k = NULL;
        int r = trusted_keys_new(&k);

        if (r < 0)
                return log_oom();
        if (n == 0) {
                const char *defaults[] = { PAYLOAD_DEFAULT_KEY, PAYLOAD_DEFAULT_KEY_DIR };
                for (size_t i = 0; i < ELEMENTSOF(defaults) && r >= 0; i++) {
                        _cleanup_free_ char *p = path_join_root(root, defaults[i]);
                        if (!p)
                                return log_oom();
                        r = trusted_keys_add_path(k, p, true);
                }
        } else
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = trusted_keys_add_path(k, paths[i], false);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(k);
        return 0;
}

static EVP_PKEY_CTX *rsa_ctx(EVP_PKEY *key, bool sign) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
        if (!ctx)
                return NULL;
        if ((sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
            EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1) {
                EVP_PKEY_CTX_free(ctx);
                return NULL;
        }
        return ctx;
}

int public_key_verify(EVP_PKEY *key, const uint8_t digest[32], const uint8_t *sig, size_t sig_size) {
        EVP_PKEY_CTX *ctx;
        int ok;

        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
                return -EOPNOTSUPP;
        ctx = rsa_ctx(key, false);
        if (!ctx)
                return -EIO;
        ok = EVP_PKEY_verify(ctx, sig, sig_size, digest, 32);
        EVP_PKEY_CTX_free(ctx);
        return ok == 1 ? 0 : -EBADMSG;
}

int trusted_keys_verify(const TrustedKeys *k, const uint8_t digest[32], const uint8_t *sig, size_t sig_size) {
        for (size_t i = 0; k && i < k->n; i++)
                if (public_key_verify(k->keys[i].key, digest, sig, sig_size) == 0)
                        return (int) i;
        return -EBADMSG;
}

int private_key_load(const char *path, EVP_PKEY **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        EVP_PKEY *key;

        f = fopen(path, "re");
        if (!f)
                return log_error_errno(errno, "Failed to open private key %s: %m", path);
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        if (!key)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s holds no (unencrypted) PEM private key.", path);
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
                EVP_PKEY_free(key);
                return log_error_errno(SYNTHETIC_ERRNO(EOPNOTSUPP), "%s is not an RSA key.", path);
        }
        *ret = key;
        return 0;
}

size_t private_key_signature_size(EVP_PKEY *key) {
        return (size_t) EVP_PKEY_get_size(key);
}

int private_key_sign(EVP_PKEY *key, const uint8_t digest[32], uint8_t **ret_sig, size_t *ret_size) {
        EVP_PKEY_CTX *ctx = rsa_ctx(key, true);
        size_t len = 0;
        uint8_t *sig;

        if (!ctx)
                return -EIO;
        if (EVP_PKEY_sign(ctx, NULL, &len, digest, 32) != 1) {
                EVP_PKEY_CTX_free(ctx);
                return -EIO;
        }
        sig = malloc(len);
        if (!sig) {
                EVP_PKEY_CTX_free(ctx);
                return -ENOMEM;
        }
        if (EVP_PKEY_sign(ctx, sig, &len, digest, 32) != 1) {
                EVP_PKEY_CTX_free(ctx);
                free(sig);
                return -EIO;
        }
        EVP_PKEY_CTX_free(ctx);
        *ret_sig = sig;
        *ret_size = len;
        return 0;
}
