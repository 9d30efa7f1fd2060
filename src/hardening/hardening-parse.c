/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>

#include "hardening-parse.h"

/* ---- string vectors ---- */

char **strv_free(char **l)
{
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        return mfree(l);
}

size_t strv_length(char *const *l)
{
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

static int strv_pushn(char ***l, const char *s, size_t len)
{
        size_t n = strv_length(*l);
        char *c = strndup(s, len);
        char **nl;

        if (!c)
                return -ENOMEM;
        nl = reallocarray(*l, n + 2, sizeof(char *));
        if (!nl) {
                free(c);
                return -ENOMEM;
        }
        nl[n] = c;
        nl[n + 1] = NULL;
        *l = nl;
        return 0;
}

int strv_push(char ***l, const char *s)
{
        return strv_pushn(l, s, strlen(s));
}

bool strv_contains(char *const *l, const char *s)
{
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

int strv_split_words(const char *s, char ***ret)
{
        _cleanup_(strv_freep) char **l = calloc(1, sizeof(char *));
        int r;

        if (!l)
                return -ENOMEM;
        while (s && *s) {
                size_t n;
                s += strspn(s, " \t\n,");
                n = strcspn(s, " \t\n,");
                if (n == 0)
                        break;
                r = strv_pushn(&l, s, n);
                if (r < 0)
                        return r;
                s += n;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* ---- line iteration over possibly NUL-containing text ---- */

typedef struct LineIter {
        const char *p, *end;
} LineIter;

/* Yields the next line (without '\n'); false at the end. */
static bool line_next(LineIter *it, const char **ret_line, size_t *ret_len)
{
        const char *nl;

        if (it->p >= it->end)
                return false;
        nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
        *ret_line = it->p;
        *ret_len = (size_t)((nl ? nl : it->end) - it->p);
        it->p = nl ? nl + 1 : it->end;
        return true;
}

static void trim_span(const char **s, size_t *len)
{
        while (*len > 0 && isspace((unsigned char)(*s)[0])) {
                (*s)++;
                (*len)--;
        }
        while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
                (*len)--;
}

static bool span_eq(const char *s, size_t len, const char *z)
{
        return strlen(z) == len && memcmp(s, z, len) == 0;
}

/* Growable output buffer. */
typedef struct Buf {
        char *data;
        size_t size, alloc;
        bool oom;
} Buf;

static void buf_add(Buf *b, const void *p, size_t n)
{
        if (b->oom)
                return;
        if (b->size + n + 1 > b->alloc) {
                size_t na = MAX(b->alloc * 2, b->size + n + 64);
                char *nd = realloc(b->data, na);
                if (!nd) {
                        b->oom = true;
                        return;
                }
                b->data = nd;
                b->alloc = na;
        }
        memcpy(b->data + b->size, p, n);
        b->size += n;
        b->data[b->size] = '\0';
}

static void buf_adds(Buf *b, const char *s)
{
        buf_add(b, s, strlen(s));
}

static void buf_done(Buf *b)
{
        b->data = mfree(b->data);
}

static int buf_finish(Buf *b, char **ret)
{
        if (b->oom) {
                b->data = mfree(b->data);
                return -ENOMEM;
        }
        if (!b->data) {
                b->data = strdup("");
                if (!b->data)
                        return -ENOMEM;
        }
        *ret = b->data;
        return 0;
}

/* ---- passwd / group ---- */

/* Splits a passwd/group line into fields on ':'; returns the count (at most max). */
static size_t split_fields(const char *line, size_t len, const char **f, size_t *fl, size_t max)
{
        size_t n = 0;
        const char *p = line, *end = line + len;

        while (n < max) {
                const char *c = memchr(p, ':', (size_t)(end - p));
                f[n] = p;
                fl[n] = (size_t)((c ? c : end) - p);
                n++;
                if (!c)
                        break;
                p = c + 1;
        }
        return n;
}

static bool line_is_user(const char *line, size_t len, const char *user)
{
        const char *c = memchr(line, ':', len);
        return c && span_eq(line, (size_t)(c - line), user);
}

int passwd_get_shell(const char *text, size_t size, const char *user, char **ret_shell)
{
        LineIter it = {text, text + size};
        const char *line;
        size_t len;

        while (line_next(&it, &line, &len)) {
                const char *f[8];
                size_t fl[8];
                char *s;

                if (!line_is_user(line, len, user))
                        continue;
                if (split_fields(line, len, f, fl, 8) != 7)
                        return -EBADMSG;
                s = strndup(f[6], fl[6]);
                if (!s)
                        return -ENOMEM;
                *ret_shell = s;
                return 1;
        }
        return 0;
}

int passwd_set_shell(const char *text, size_t size, const char *user, const char *shell, char **ret_text)
{
        LineIter it = {text, text + size};
        const char *line;
        size_t len;
        Buf b = {};

        if (isempty(shell) || shell[0] != '/' || strpbrk(shell, ":\n"))
                return -EINVAL;
        while (line_next(&it, &line, &len)) {
                const char *f[8];
                size_t fl[8];

                if (!line_is_user(line, len, user))
                        continue;
                if (split_fields(line, len, f, fl, 8) != 7)
                        return -EBADMSG;
                /* Everything up to the shell field, the new shell, then the rest of the text as it was. */
                buf_add(&b, text, (size_t)(f[6] - text));
                buf_adds(&b, shell);
                buf_add(&b, f[6] + fl[6], (size_t)(text + size - (f[6] + fl[6])));
                return buf_finish(&b, ret_text);
        }
        return -ENOENT;
}

bool group_has_member(const char *text, size_t size, const char *group, const char *user)
{
        LineIter it = {text, text + size};
        const char *line;
        size_t len;

        while (line_next(&it, &line, &len)) {
                const char *f[5], *p, *end;
                size_t fl[5];

                if (!line_is_user(line, len, group))
                        continue;
                if (split_fields(line, len, f, fl, 5) != 4)
                        continue;
                p = f[3];
                end = f[3] + fl[3];
                while (p < end) {
                        const char *c = memchr(p, ',', (size_t)(end - p));
                        const char *s = p;
                        size_t l = (size_t)((c ? c : end) - p);
                        trim_span(&s, &l);
                        if (span_eq(s, l, user))
                                return true;
                        p = c ? c + 1 : end;
                }
        }
        return false;
}

/* ---- sudoers ---- */

void sudoers_line_done(SudoersLine *l)
{
        l->users = strv_free(l->users);
}

static const char *skip_ws(const char *p)
{
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

static bool word_at(const char *p, const char *w)
{
        size_t n = strlen(w);
        return strncmp(p, w, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_';
}

int sudoers_line_parse(const char *line, SudoersLine *ret)
{
        static const char *const aliases[] = {"User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias",
                                              "Cmd_Alias"};
        _cleanup_(strv_freep) char **users = calloc(1, sizeof(char *));
        const char *p = skip_ws(line), *eq;
        bool nopasswd = false, passwd = true;
        int r;

        if (!users)
                return -ENOMEM;
        if (*p == '\0' || *p == '\n') {
                *ret = (SudoersLine){.type = SUDOERS_LINE_EMPTY};
                return 0;
        }
        if (word_at(p, "#include") || word_at(p, "#includedir") || word_at(p, "@include") ||
            word_at(p, "@includedir")) {
                *ret = (SudoersLine){.type = SUDOERS_LINE_INCLUDE};
                return 0;
        }
        /* "#123" is a uid in a user list; any other '#' starts a comment. */
        if (*p == '#' && !isdigit((unsigned char)p[1])) {
                *ret = (SudoersLine){.type = SUDOERS_LINE_EMPTY};
                return 0;
        }
        if (startswith(p, "Defaults") && (p[8] == '\0' || strchr(" \t:@>!", p[8]))) {
                *ret = (SudoersLine){.type = SUDOERS_LINE_DEFAULTS};
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(aliases); i++)
                if (word_at(p, aliases[i])) {
                        *ret = (SudoersLine){.type = SUDOERS_LINE_ALIAS};
                        return 0;
                }

        /* User list: items separated by commas (with optional blanks around them), ended by a blank. */
        for (;;) {
                size_t n = 0;
                while (p[n] && !strchr(", \t=\n", p[n])) {
                        if (p[n] == '\\' && p[n + 1])
                                n++;
                        n++;
                }
                if (n == 0)
                        return -EBADMSG;
                r = strv_pushn(&users, p, n);
                if (r < 0)
                        return r;
                p = skip_ws(p + n);
                if (*p != ',')
                        break;
                p = skip_ws(p + 1);
        }
        eq = strchr(p, '=');
        if (!eq || eq == p)
                return -EBADMSG;
        p = skip_ws(eq + 1);
        if (*p == '(') {
                const char *c = strchr(p, ')');
                if (!c)
                        return -EBADMSG;
                p = skip_ws(c + 1);
        }
        /* Tags: upper-case words followed by ':' (NOPASSWD:, SETENV:, ...). */
        for (;;) {
                size_t n = 0;
                while (isupper((unsigned char)p[n]) || p[n] == '_')
                        n++;
                if (n == 0 || p[n] != ':')
                        break;
                if (span_eq(p, n, "NOPASSWD")) {
                        nopasswd = true;
                        passwd = false;
                } else if (span_eq(p, n, "PASSWD")) {
                        nopasswd = false;
                        passwd = true;
                }
                p = skip_ws(p + n + 1);
        }
        *ret = (SudoersLine){
            .type = SUDOERS_LINE_USER_SPEC,
            .users = TAKE_PTR(users),
            .nopasswd = nopasswd,
            .passwd = passwd,
        };
        return 0;
}

static bool sudoers_user_matches(char *const *users, const char *user, const char *group_text,
                                 size_t group_size)
{
        bool match = false;

        for (size_t i = 0; users && users[i]; i++) {
                const char *u = users[i];
                bool neg = false;
                while (*u == '!') {
                        neg = !neg;
                        u++;
                }
                if (streq(u, "ALL") || streq(u, user) ||
                    (u[0] == '%' && group_text && group_has_member(group_text, group_size, u + 1, user)))
                        match = !neg;
        }
        return match;
}

SudoersMatch sudoers_last_match(const char *text, size_t size, const char *user, const char *group_text,
                                size_t group_size, bool after_include)
{
        LineIter it = {text, text + size};
        SudoersMatch m = SUDOERS_MATCH_NONE;
        bool seen_include = false;
        const char *line;
        size_t len;
        Buf logical = {};

        while (line_next(&it, &line, &len)) {
                SudoersLine l = {};

                if (memchr(line, '\0', len))
                        continue;
                if (len > 0 && line[len - 1] == '\\') {
                        buf_add(&logical, line, len - 1);
                        continue;
                }
                buf_add(&logical, line, len);
                if (logical.oom)
                        break;
                if (sudoers_line_parse(logical.data, &l) >= 0) {
                        if (l.type == SUDOERS_LINE_INCLUDE)
                                seen_include = true;
                        else if (l.type == SUDOERS_LINE_USER_SPEC && (!after_include || seen_include) &&
                                 sudoers_user_matches(l.users, user, group_text, group_size))
                                m = l.nopasswd ? SUDOERS_MATCH_NOPASSWD : SUDOERS_MATCH_PASSWD;
                        sudoers_line_done(&l);
                }
                logical.size = 0;
                logical.data[0] = '\0';
        }
        free(logical.data);
        return m;
}

bool sudoers_dropin_name_is_read(const char *name)
{
        return !isempty(name) && !strchr(name, '.') && !endswith(name, "~");
}

/* ---- unit files ---- */

int unit_file_get(const char *text, size_t size, const char *section, const char *key, char **ret_value)
{
        LineIter it = {text, text + size};
        const char *line, *found = NULL;
        size_t len, found_len = 0;
        bool in_section = false;

        while (line_next(&it, &line, &len)) {
                const char *eq, *k, *v;
                size_t kl, vl;

                trim_span(&line, &len);
                if (len == 0 || line[0] == '#' || line[0] == ';')
                        continue;
                if (line[0] == '[') {
                        in_section = len >= 2 && line[len - 1] == ']' && span_eq(line + 1, len - 2, section);
                        continue;
                }
                if (!in_section)
                        continue;
                eq = memchr(line, '=', len);
                if (!eq)
                        continue;
                k = line;
                kl = (size_t)(eq - line);
                trim_span(&k, &kl);
                if (!span_eq(k, kl, key))
                        continue;
                v = eq + 1;
                vl = (size_t)(line + len - v);
                trim_span(&v, &vl);
                found = v;
                found_len = vl;
        }
        if (!found)
                return 0;
        *ret_value = strndup(found, found_len);
        return *ret_value ? 1 : -ENOMEM;
}

/* ---- sysctl.d ---- */

static bool sysctl_key_eq(const char *a, size_t al, const char *b)
{
        if (al != strlen(b))
                return false;
        for (size_t i = 0; i < al; i++) {
                char x = a[i] == '/' ? '.' : a[i], y = b[i] == '/' ? '.' : b[i];
                if (x != y)
                        return false;
        }
        return true;
}

int sysctl_file_get(const char *text, size_t size, const char *key, char **ret_value)
{
        LineIter it = {text, text + size};
        const char *line, *found = NULL;
        size_t len, found_len = 0;

        while (line_next(&it, &line, &len)) {
                const char *eq, *k, *v;
                size_t kl, vl;

                trim_span(&line, &len);
                if (len == 0 || line[0] == '#' || line[0] == ';')
                        continue;
                eq = memchr(line, '=', len);
                if (!eq)
                        continue;
                k = line;
                kl = (size_t)(eq - line);
                if (kl > 0 && k[0] == '-') {
                        k++;
                        kl--;
                }
                trim_span(&k, &kl);
                if (!sysctl_key_eq(k, kl, key))
                        continue;
                v = eq + 1;
                vl = (size_t)(line + len - v);
                trim_span(&v, &vl);
                found = v;
                found_len = vl;
        }
        if (!found)
                return 0;
        *ret_value = strndup(found, found_len);
        return *ret_value ? 1 : -ENOMEM;
}

/* ---- grub.cfg ---- */

int grub_linux_append_args(const char *text, size_t size, char ***ret_args)
{
        _cleanup_(strv_freep) char **args = calloc(1, sizeof(char *));
        LineIter it = {text, text + size};
        const char *line;
        size_t len;
        int r;

        if (!args)
                return -ENOMEM;
        while (line_next(&it, &line, &len)) {
                const char *v, *end;
                char q = 0;

                trim_span(&line, &len);
                if (len < 17 || memcmp(line, "set linux_append=", 17) != 0)
                        continue;
                v = line + 17;
                end = line + len;
                if (v < end && (*v == '"' || *v == '\'')) {
                        const char *c;
                        q = *v++;
                        c = memchr(v, q, (size_t)(end - v));
                        if (c)
                                end = c;
                }
                while (v < end) {
                        const char *w;
                        while (v < end && isspace((unsigned char)*v))
                                v++;
                        w = v;
                        while (v < end && !isspace((unsigned char)*v))
                                v++;
                        if (v == w)
                                break;
                        if (span_eq(w, (size_t)(v - w), "$linux_append") ||
                            span_eq(w, (size_t)(v - w), "${linux_append}"))
                                continue;
                        r = strv_pushn(&args, w, (size_t)(v - w));
                        if (r < 0)
                                return r;
                }
        }
        *ret_args = TAKE_PTR(args);
        return 0;
}

static size_t karg_key_len(const char *a)
{
        return strcspn(a, "=");
}

int kargs_missing(char *const *args, char *const *wanted, char ***ret_missing)
{
        _cleanup_(strv_freep) char **missing = calloc(1, sizeof(char *));
        int r;

        if (!missing)
                return -ENOMEM;
        for (size_t i = 0; wanted && wanted[i]; i++) {
                const char *w = wanted[i], *last = NULL;
                size_t kl = karg_key_len(w);
                bool ok;

                for (size_t j = 0; args && args[j]; j++)
                        if (karg_key_len(args[j]) == kl && strncmp(args[j], w, kl) == 0)
                                last = args[j];
                ok = w[kl] == '=' ? (last && streq(last, w)) : strv_contains(args, w);
                if (!ok) {
                        r = strv_push(&missing, w);
                        if (r < 0)
                                return r;
                }
        }
        *ret_missing = TAKE_PTR(missing);
        return 0;
}

/* ---- selinux config ---- */

static bool line_assigns(const char *line, size_t len, const char *key)
{
        size_t kl = strlen(key);
        trim_span(&line, &len);
        return len > kl && memcmp(line, key, kl) == 0 && line[kl] == '=';
}

int selinux_config_set(const char *text, size_t size, const char *mode, const char *type, char **ret_text)
{
        LineIter it = {text, text + size};
        bool have_mode = false, have_type = false;
        const char *line;
        size_t len;
        Buf b = {};

        while (line_next(&it, &line, &len)) {
                bool last = it.p == it.end && (len == 0 || text[size - 1] != '\n');

                if (line_assigns(line, len, "SELINUX")) {
                        buf_adds(&b, "SELINUX=");
                        buf_adds(&b, mode);
                        have_mode = true;
                } else if (type && line_assigns(line, len, "SELINUXTYPE")) {
                        buf_adds(&b, "SELINUXTYPE=");
                        buf_adds(&b, type);
                        have_type = true;
                } else
                        buf_add(&b, line, len);
                if (!last)
                        buf_adds(&b, "\n");
        }
        if (b.size > 0 && b.data[b.size - 1] != '\n')
                buf_adds(&b, "\n");
        if (!have_mode) {
                buf_adds(&b, "SELINUX=");
                buf_adds(&b, mode);
                buf_adds(&b, "\n");
        }
        if (type && !have_type) {
                buf_adds(&b, "SELINUXTYPE=");
                buf_adds(&b, type);
                buf_adds(&b, "\n");
        }
        return buf_finish(&b, ret_text);
}

int selinux_config_get(const char *text, size_t size, const char *key, char **ret_value)
{
        LineIter it = {text, text + size};
        const char *line;
        size_t len;
        char *v = NULL;

        while (line_next(&it, &line, &len)) {
                const char *s;
                size_t sl;
                trim_span(&line, &len);
                if (!line_assigns(line, len, key))
                        continue;
                s = line + strlen(key) + 1;
                sl = len - strlen(key) - 1;
                trim_span(&s, &sl);
                free(v);
                v = strndup(s, sl);
                if (!v)
                        return -ENOMEM;
        }
        *ret_value = v;
        return v ? 1 : 0;
}

/* ---- unified diff ---- */

typedef struct Lines {
        const char **p;
        size_t *len;
        size_t n;
        bool no_final_newline;
} Lines;

static int lines_split(const char *text, size_t size, Lines *ret)
{
        LineIter it = {text, text + size};
        const char *line;
        size_t len, n = 0;

        for (size_t i = 0; i < size; i++)
                if (text[i] == '\n')
                        n++;
        n++;
        ret->p = calloc(n, sizeof(char *));
        ret->len = calloc(n, sizeof(size_t));
        if (!ret->p || !ret->len)
                return -ENOMEM;
        ret->n = 0;
        while (line_next(&it, &line, &len)) {
                ret->p[ret->n] = line;
                ret->len[ret->n] = len;
                ret->n++;
        }
        ret->no_final_newline = size > 0 && text[size - 1] != '\n';
        return 0;
}

static void lines_done(Lines *l)
{
        free(l->p);
        free(l->len);
}

static bool lines_eq(const Lines *a, size_t i, const Lines *b, size_t j)
{
        return a->len[i] == b->len[j] && memcmp(a->p[i], b->p[j], a->len[i]) == 0;
}

typedef struct DiffOp {
        char kind;   /* ' ', '-', '+' */
        size_t a, b; /* line index in a (for ' ', '-') and b (for ' ', '+') */
} DiffOp;

static void diff_emit_line(Buf *out, char kind, const Lines *l, size_t i)
{
        buf_add(out, &kind, 1);
        buf_add(out, l->p[i], l->len[i]);
        buf_adds(out, "\n");
        if (i + 1 == l->n && l->no_final_newline)
                buf_adds(out, "\\ No newline at end of file\n");
}

int unified_diff(const char *a, size_t a_size, const char *b, size_t b_size, const char *label_a,
                 const char *label_b, char **ret)
{
        _cleanup_(lines_done) Lines la = {}, lb = {};
        _cleanup_free_ DiffOp *ops = NULL;
        _cleanup_free_ uint16_t *dp = NULL;
        _cleanup_(buf_done) Buf out = {};
        size_t n_ops = 0, n, m;
        int r;

        if (a_size == b_size && memcmp(a, b, a_size) == 0) {
                *ret = strdup("");
                return *ret ? 0 : -ENOMEM;
        }
        r = lines_split(a, a_size, &la);
        if (r >= 0)
                r = lines_split(b, b_size, &lb);
        if (r < 0)
                return r;
        n = la.n;
        m = lb.n;
        ops = calloc(n + m + 1, sizeof(DiffOp));
        if (!ops)
                return -ENOMEM;
        if (n <= DIFF_LINES_MAX && m <= DIFF_LINES_MAX && (n + 1) * (m + 1) <= 4u * 1024u * 1024u)
                dp = calloc((n + 1) * (m + 1), sizeof(uint16_t));
        if (dp) {
                /* dp[i][j] = length of the longest common subsequence of a[i..] and b[j..]. */
                for (size_t i = n; i-- > 0;)
                        for (size_t j = m; j-- > 0;)
                                dp[i * (m + 1) + j] =
                                    lines_eq(&la, i, &lb, j)
                                        ? dp[(i + 1) * (m + 1) + j + 1] + 1
                                        : MAX(dp[(i + 1) * (m + 1) + j], dp[i * (m + 1) + j + 1]);
                size_t i = 0, j = 0;
                while (i < n || j < m) {
                        if (i < n && j < m && lines_eq(&la, i, &lb, j) &&
                            !(i + 1 == n && la.no_final_newline != (j + 1 == m && lb.no_final_newline)))
                                ops[n_ops++] = (DiffOp){' ', i++, j++};
                        else if (i < n && (j == m || dp[(i + 1) * (m + 1) + j] >= dp[i * (m + 1) + j + 1]))
                                ops[n_ops++] = (DiffOp){'-', i++, j};
                        else
                                ops[n_ops++] = (DiffOp){'+', i, j++};
                }
        } else {
                for (size_t i = 0; i < n; i++)
                        ops[n_ops++] = (DiffOp){'-', i, 0};
                for (size_t j = 0; j < m; j++)
                        ops[n_ops++] = (DiffOp){'+', n, j};
        }

        buf_adds(&out, "--- ");
        buf_adds(&out, label_a);
        buf_adds(&out, "\n+++ ");
        buf_adds(&out, label_b);
        buf_adds(&out, "\n");
        for (size_t k = 0; k < n_ops;) {
                size_t start, end, a0, b0, ac = 0, bc = 0;
                char hdr[96];

                if (ops[k].kind == ' ') {
                        k++;
                        continue;
                }
                /* A hunk: back up 3 context lines, then extend while changes are within 6 lines. */
                start = k >= 3 ? k - 3 : 0;
                while (start < k && ops[start].kind != ' ')
                        start++;
                end = k;
                for (;;) {
                        size_t ctx = 0, e = end;
                        while (e < n_ops && ops[e].kind != ' ')
                                e++;
                        while (e + ctx < n_ops && ops[e + ctx].kind == ' ' && ctx < 7)
                                ctx++;
                        if (e + ctx < n_ops && ctx < 7) {
                                end = e + ctx;
                                continue;
                        }
                        end = MIN(e + 3, n_ops);
                        break;
                }
                a0 = ops[start].a;
                b0 = ops[start].b;
                for (size_t q = start; q < end; q++) {
                        if (ops[q].kind != '+')
                                ac++;
                        if (ops[q].kind != '-')
                                bc++;
                }
                (void)snprintf(hdr, sizeof hdr, "@@ -%zu,%zu +%zu,%zu @@\n", ac ? a0 + 1 : a0, ac,
                               bc ? b0 + 1 : b0, bc);
                buf_adds(&out, hdr);
                for (size_t q = start; q < end; q++) {
                        if (ops[q].kind == '+')
                                diff_emit_line(&out, '+', &lb, ops[q].b);
                        else
                                diff_emit_line(&out, ops[q].kind, &la, ops[q].a);
                }
                k = end;
        }
        r = buf_finish(&out, ret);
        out.data = NULL;
        return r;
}
