/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <stdarg.h>

#include "log.h"
#include "metadata-agent-metadata.h"
#include "metadata-agent-sshkey.h"

void metadata_done(Metadata *m) {
        for (size_t i = 0; i < m->n_attrs; i++) {
                free(m->attrs[i].key);
                free(m->attrs[i].value);
        }
        free(m->attrs);
        for (size_t i = 0; i < m->n_ssh_keys; i++)
                free(m->ssh_keys[i]);
        free(m->ssh_keys);
        for (size_t i = 0; i < m->n_net_units; i++) {
                free(m->net_units[i].key);
                free(m->net_units[i].value);
        }
        free(m->net_units);
        free(m->hostname);
        *m = (Metadata) {};
}

const char *metadata_get_attr(const Metadata *m, const char *key) {
        for (size_t i = 0; i < m->n_attrs; i++)
                if (streq(m->attrs[i].key, key))
                        return m->attrs[i].value;
        return NULL;
}

int metadata_set_attr(Metadata *m, const char *key, const char *value) {
        _cleanup_free_ char *v = NULL, *k = NULL;
        MetadataAttribute *a;

        if (!value)
                return 0;
        v = strdup(value);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_attrs; i++)
                if (streq(m->attrs[i].key, key)) {
                        free(m->attrs[i].value);
                        m->attrs[i].value = TAKE_PTR(v);
                        return 0;
                }
        k = strdup(key);
        if (!k)
                return -ENOMEM;
        a = reallocarray(m->attrs, m->n_attrs + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        m->attrs = a;
        m->attrs[m->n_attrs++] = (MetadataAttribute) { .key = TAKE_PTR(k), .value = TAKE_PTR(v) };
        return 0;
}

int metadata_set_attrf(Metadata *m, const char *value, const char *key_format, ...) {
        _cleanup_free_ char *key = NULL;
        va_list ap;
        int r;

        if (!value)
                return 0;
        va_start(ap, key_format);
        r = vasprintf(&key, key_format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return metadata_set_attr(m, key, value);
}

int metadata_set_hostname(Metadata *m, const char *hostname) {
        char *h;

        if (isempty(hostname))
                return 0;
        h = strdup(hostname);
        if (!h)
                return -ENOMEM;
        free(m->hostname);
        m->hostname = h;
        return 0;
}

int metadata_add_net_unit(Metadata *m, const char *name, const char *contents) {
        _cleanup_free_ char *n = strdup(name), *c = strdup(contents);
        MetadataAttribute *a;

        if (!n || !c)
                return -ENOMEM;
        a = reallocarray(m->net_units, m->n_net_units + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        m->net_units = a;
        m->net_units[m->n_net_units++] = (MetadataAttribute) { .key = TAKE_PTR(n), .value = TAKE_PTR(c) };
        return 0;
}

int metadata_add_ssh_key(Metadata *m, const char *line, const char *origin) {
        _cleanup_free_ char *norm = NULL;
        char **k;
        int r;

        r = ssh_key_normalize(line, &norm);
        if (r < 0)
                return log_error_errno(r, "Invalid SSH public key from %s: %.60s%s", origin, line,
                                       strlen(line) > 60 ? "..." : "");
        m->ssh_keys_valid = true;
        for (size_t i = 0; i < m->n_ssh_keys; i++)
                if (streq(m->ssh_keys[i], norm))
                        return 0;
        k = reallocarray(m->ssh_keys, m->n_ssh_keys + 1, sizeof(char *));
        if (!k)
                return -ENOMEM;
        m->ssh_keys = k;
        m->ssh_keys[m->n_ssh_keys++] = TAKE_PTR(norm);
        return 0;
}

int metadata_add_ssh_keys_text(Metadata *m, const char *text, bool skip_bad, const char *origin) {
        const char *p = text;

        m->ssh_keys_valid = true;
        while (p && *p) {
                size_t n = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, n);
                char *s;
                int r;

                if (!line)
                        return -ENOMEM;
                p += n;
                if (*p == '\n')
                        p++;
                s = line + strspn(line, " \t\r");
                s[strcspn(s, "\r")] = '\0';
                if (*s == '\0' || *s == '#')
                        continue;
                r = metadata_add_ssh_key(m, s, origin);
                if (r == -EBADMSG && skip_bad) {
                        log_warning("Skipping the SSH key above.");
                        continue;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

AttributeStyle attribute_style_from_string(const char *s) {
        if (streq(s, "afterburn"))
                return ATTRIBUTE_STYLE_AFTERBURN;
        if (streq(s, "flatcar") || streq(s, "coreos"))
                return ATTRIBUTE_STYLE_FLATCAR;
        return _ATTRIBUTE_STYLE_INVALID;
}

char *attribute_name(const char *key, AttributeStyle style) {
        const char *rest;
        char *r;

        if (style == ATTRIBUTE_STYLE_AFTERBURN) {
                if (asprintf(&r, "AFTERBURN_%s", key) < 0)
                        return NULL;
                return r;
        }
        /* Flatcar's coreos-metadata.service renamed with sed; we rename only the key, never values. */
        if ((rest = startswith(key, "AWS_")))
                return asprintf(&r, "COREOS_EC2_%s", rest) < 0 ? NULL : r;
        if ((rest = startswith(key, "GCP_")))
                return asprintf(&r, "COREOS_GCE_%s", rest) < 0 ? NULL : r;
        return asprintf(&r, "COREOS_%s", key) < 0 ? NULL : r;
}

static int line_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int metadata_format_attributes(const Metadata *m, AttributeStyle style, char **ret) {
        _cleanup_free_ char **lines = NULL;
        _cleanup_free_ char *out = NULL;
        size_t total = 1;
        int r = 0;

        lines = calloc(m->n_attrs + 1, sizeof(char *));
        if (!lines)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_attrs; i++) {
                _cleanup_free_ char *name = NULL;

                if (strpbrk(m->attrs[i].value, "\n\r")) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                            "Attribute %s has a value with a line break, refusing to write it.",
                                            m->attrs[i].key);
                        break;
                }
                name = attribute_name(m->attrs[i].key, style);
                if (!name || asprintf(&lines[i], "%s=%s\n", name, m->attrs[i].value) < 0) {
                        r = -ENOMEM;
                        break;
                }
                total += strlen(lines[i]);
        }
        if (r >= 0) {
                qsort(lines, m->n_attrs, sizeof(char *), line_cmp);
                out = malloc(total);
                if (!out)
                        r = -ENOMEM;
        }
        if (r >= 0) {
                char *p = out;
                *p = '\0';
                for (size_t i = 0; i < m->n_attrs; i++)
                        p = stpcpy(p, lines[i]);
        }
        for (size_t i = 0; i < m->n_attrs; i++)
                free(lines[i]);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}

char *hostname_truncate(const char *hostname) {
        long max = sysconf(_SC_HOST_NAME_MAX);
        char *h;

        if (max <= 0)
                max = HOST_NAME_MAX;
        h = strdup(hostname);
        if (!h)
                return NULL;
        if (strlen(h) > (size_t) max) {
                h[max] = '\0';
                h[strcspn(h, ".")] = '\0';
        }
        return h;
}
