/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hardening-measures.h"
#include "hardening-parse.h"

void butane_doc_done(ButaneDoc *d)
{
        for (size_t i = 0; i < d->n_files; i++) {
                free(d->files[i].path);
                free(d->files[i].contents);
        }
        for (size_t i = 0; i < d->n_units; i++) {
                free(d->units[i].name);
                free(d->units[i].dropin_name);
                free(d->units[i].dropin_contents);
        }
        d->files = mfree(d->files);
        d->units = mfree(d->units);
        d->n_files = d->n_units = 0;
        d->user = mfree(d->user);
        d->user_shell = mfree(d->user_shell);
        d->kernel_args = strv_free(d->kernel_args);
}

/* YAML double-quoted scalar. */
static void put_quoted(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch == '\n')
                        fputs("\\n", f);
                else if (ch == '\t')
                        fputs("\\t", f);
                else if (ch < 0x20 || ch == 0x7f)
                        fprintf(f, "\\x%02x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

/* Contents as a literal block scalar when that round-trips exactly, else double-quoted. */
static void put_contents(FILE *f, const char *key, const char *s, int indent)
{
        bool block = !isempty(s) && endswith(s, "\n") && !endswith(s, "\n\n") && s[0] != ' ' && s[0] != '\t';

        for (const char *p = s; block && *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') ||
                    (*p == '\n' && (p[1] == ' ' || p[1] == '\t')))
                        block = false;
        fprintf(f, "%*s%s: ", indent, "", key);
        if (!block) {
                put_quoted(f, s);
                fputc('\n', f);
                return;
        }
        fputs("|\n", f);
        for (const char *p = s; *p;) {
                size_t n = strcspn(p, "\n");
                if (n > 0)
                        fprintf(f, "%*s%.*s\n", indent + 2, "", (int)n, p);
                else
                        fputc('\n', f);
                p += n;
                if (*p == '\n')
                        p++;
        }
}

int butane_doc_render(const ButaneDoc *d, const char *version, char **ret)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!streq(version, "1.0.0") && !streq(version, "1.1.0"))
                return -EINVAL;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "variant: flatcar\nversion: %s\n", version);
        if (strv_length(d->kernel_args) > 0) {
                fputs("kernel_arguments:\n  should_exist:\n", f);
                for (size_t i = 0; d->kernel_args[i]; i++) {
                        fputs("    - ", f);
                        put_quoted(f, d->kernel_args[i]);
                        fputc('\n', f);
                }
        }
        if (d->user) {
                fputs("passwd:\n  users:\n    - name: ", f);
                put_quoted(f, d->user);
                fputs("\n      shell: ", f);
                put_quoted(f, d->user_shell);
                fputc('\n', f);
        }
        if (d->n_files > 0) {
                fputs("storage:\n  files:\n", f);
                for (size_t i = 0; i < d->n_files; i++) {
                        const ButaneFile *x = &d->files[i];
                        fputs("    - path: ", f);
                        put_quoted(f, x->path);
                        fprintf(f, "\n      mode: 0%o\n", (unsigned)x->mode);
                        if (x->overwrite)
                                fputs("      overwrite: true\n", f);
                        fputs("      contents:\n", f);
                        put_contents(f, "inline", x->contents, 8);
                }
        }
        if (d->n_units > 0) {
                fputs("systemd:\n  units:\n", f);
                for (size_t i = 0; i < d->n_units; i++) {
                        const ButaneUnit *u = &d->units[i];
                        fputs("    - name: ", f);
                        put_quoted(f, u->name);
                        fputc('\n', f);
                        if (u->mask)
                                fputs("      mask: true\n", f);
                        if (u->dropin_name) {
                                fputs("      dropins:\n        - name: ", f);
                                put_quoted(f, u->dropin_name);
                                fputc('\n', f);
                                put_contents(f, "contents", u->dropin_contents, 10);
                        }
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}
