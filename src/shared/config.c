/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>

#include "config.h"
#include "fileio.h"
#include "log.h"

#define CONF_FILE_MAX (1024u * 1024u)

typedef struct ConfEntry {
        char *key;
        char *value;
} ConfEntry;

struct ConfFile {
        ConfEntry *entries;
        size_t n, alloc;
};

int conf_new(ConfFile **ret) {
        ConfFile *f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        *ret = f;
        return 0;
}

ConfFile *conf_free(ConfFile *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n; i++) {
                free(f->entries[i].key);
                free(f->entries[i].value);
        }
        free(f->entries);
        return mfree(f);
}

static ConfEntry *conf_find(const ConfFile *f, const char *key) {
        for (size_t i = 0; i < f->n; i++)
                if (streq(f->entries[i].key, key))
                        return &f->entries[i];
        return NULL;
}

static int conf_setn(ConfFile *f, const char *key, size_t klen, const char *value, size_t vlen) {
        _cleanup_free_ char *k = strndup(key, klen), *v = strndup(value, vlen);
        ConfEntry *e;

        if (!k || !v)
                return -ENOMEM;
        e = conf_find(f, k);
        if (e) {
                free(e->value);
                e->value = TAKE_PTR(v);
                return 0;
        }
        if (f->n == f->alloc) {
                size_t na = f->alloc ? f->alloc * 2 : 16;
                ConfEntry *ne = reallocarray(f->entries, na, sizeof *ne);
                if (!ne)
                        return -ENOMEM;
                f->entries = ne;
                f->alloc = na;
        }
        f->entries[f->n++] = (ConfEntry){ .key = TAKE_PTR(k), .value = TAKE_PTR(v) };
        return 0;
}

int conf_set(ConfFile *f, const char *key, const char *value) {
        return conf_setn(f, key, strlen(key), value, strlen(value));
}

const char *conf_get(const ConfFile *f, const char *key) {
        ConfEntry *e = f ? conf_find(f, key) : NULL;
        return e ? e->value : NULL;
}

size_t conf_size(const ConfFile *f) {
        return f ? f->n : 0;
}
const char *conf_key_at(const ConfFile *f, size_t i) {
        return i < conf_size(f) ? f->entries[i].key : NULL;
}
const char *conf_value_at(const ConfFile *f, size_t i) {
        return i < conf_size(f) ? f->entries[i].value : NULL;
}

static void strip_quotes(const char **v, size_t *vlen) {
        if (*vlen >= 2 && ((*v)[0] == '"' || (*v)[0] == '\'') && (*v)[*vlen - 1] == (*v)[0]) {
                (*v)++;
                *vlen -= 2;
        }
}

static void trim(const char **s, size_t *len) {
        while (*len > 0 && isspace((unsigned char) (*s)[0])) {
                (*s)++;
                (*len)--;
        }
        while (*len > 0 && isspace((unsigned char) (*s)[*len - 1]))
                (*len)--;
}

int conf_parse_into(ConfFile *f, const char *text, size_t size, ConfSyntax syntax, const char *origin) {
        const char *p = text, *end = text + size;
        unsigned line_no = 0;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *line_end = nl ? nl : end;
                const char *line = p, *eq, *v;
                size_t len = (size_t) (line_end - line), klen, vlen;
                int r;

                p = nl ? nl + 1 : end;
                line_no++;

                if (syntax == CONF_SYNTAX_SWITCHYARD) {
                        trim(&line, &len);
                        if (len == 0 || line[0] == '#' || line[0] == ';')
                                continue;
                        if (memchr(line, '\0', len))
                                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s:%u: NUL byte in line.",
                                                       origin, line_no);
                }
                eq = memchr(line, '=', len);
                if (!eq) {
                        if (syntax == CONF_SYNTAX_FLATCAR)
                                continue;
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                               "%s:%u: expected KEY=VALUE, got \"%.*s\".", origin, line_no,
                                               (int) MIN(len, (size_t) 80), line);
                }
                klen = (size_t) (eq - line);
                v = eq + 1;
                vlen = len - klen - 1;
                if (syntax == CONF_SYNTAX_SWITCHYARD) {
                        trim(&line, &klen);
                        trim(&v, &vlen);
                        if (klen == 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s:%u: empty key.", origin,
                                                       line_no);
                }
                strip_quotes(&v, &vlen);
                r = conf_setn(f, line, klen, v, vlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int conf_load_into(ConfFile *f, const char *path, ConfSyntax syntax) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, CONF_FILE_MAX, &data, &size);
        if (r == -ENOENT)
                return r;
        if (r == -EFBIG)
                return log_error_errno(r, "Configuration file %s is larger than 1 MiB.", path);
        if (r < 0)
                return log_error_errno(r, "Failed to read configuration file %s: %m", path);
        return conf_parse_into(f, data, size, syntax, path);
}

int conf_load(const char *path, ConfSyntax syntax, ConfFile **ret) {
        _cleanup_(conf_freep) ConfFile *f = NULL;
        int r;

        r = conf_new(&f);
        if (r < 0)
                return r;
        r = conf_load_into(f, path, syntax);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

int conf_chain_get(const char *root, const char *const *paths, const char *key, char **ret_value) {
        for (const char *const *p = paths; *p; p++) {
                _cleanup_free_ char *full = path_join_root(root, *p);
                _cleanup_(conf_freep) ConfFile *f = NULL;
                const char *v;
                int r;

                if (!full)
                        return -ENOMEM;
                r = conf_load(full, CONF_SYNTAX_FLATCAR, &f);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                v = conf_get(f, key);
                if (v) {
                        char *copy = strdup(v);
                        if (!copy)
                                return -ENOMEM;
                        *ret_value = copy;
                        return 1;
                }
        }
        *ret_value = NULL;
        return 0;
}

static int dropin_compare(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int conf_load_dropins(ConfFile *f, const char *dir) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        char **names = NULL;
        size_t n = 0;
        int r = 0;

        if (!d)
                return errno == ENOENT ? 0 : log_error_errno(errno, "Failed to open %s: %m", dir);
        for (struct dirent *de; (de = readdir(d));) {
                char **nn;
                if (de->d_name[0] == '.' || !endswith(de->d_name, ".conf"))
                        continue;
                nn = reallocarray(names, n + 1, sizeof *nn);
                if (!nn) {
                        r = -ENOMEM;
                        break;
                }
                names = nn;
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        if (r >= 0)
                qsort(names, n, sizeof *names, dropin_compare);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", dir, names[i]) < 0)
                        r = -ENOMEM;
                else
                        r = conf_load_into(f, path, CONF_SYNTAX_SWITCHYARD);
                if (r == -ENOENT)
                        r = 0;
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}

int conf_load_switchyard(const char *root, const char *name, ConfFile **ret) {
        _cleanup_(conf_freep) ConfFile *f = NULL;
        static const char *const bases[] = { "/usr/share/switchyard", "/etc/switchyard" };
        int r;

        r = conf_new(&f);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                _cleanup_free_ char *rel = NULL, *path = NULL;
                if (asprintf(&rel, "%s/%s.conf", bases[i], name) < 0)
                        return -ENOMEM;
                path = path_join_root(root, rel);
                if (!path)
                        return -ENOMEM;
                r = conf_load_into(f, path, CONF_SYNTAX_SWITCHYARD);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        {
                _cleanup_free_ char *rel = NULL, *dir = NULL;
                if (asprintf(&rel, "/etc/switchyard/%s.conf.d", name) < 0)
                        return -ENOMEM;
                dir = path_join_root(root, rel);
                if (!dir)
                        return -ENOMEM;
                r = conf_load_dropins(f, dir);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(f);
        return 0;
}

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "true", "on", "y" };
        static const char *const no[] = { "0", "no", "false", "off", "n" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}
