/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>

#include "hardening-engine.h"
#include "hardening-varlink.h"
#include "hardening-parse.h"
#include "log.h"

typedef struct Eval {
        Plan plan;
        Node *current; /* one per change */
        bool *differs;
        size_t n_differ;
} Eval;

static void eval_done(Eval *e)
{
        for (size_t i = 0; e->current && i < e->plan.n_changes; i++)
                node_done(&e->current[i]);
        e->current = mfree(e->current);
        e->differs = mfree(e->differs);
        plan_done(&e->plan);
}

_printf_(2, 3) static int conflict(Plan *p, const char *fmt, ...)
{
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? -ENOMEM : strv_push(&p->conflicts, s);
}

static int evaluate(int rootfd, const Settings *s, const Record *rec, const Measure *m, Eval *e)
{
        Context c = {.rootfd = rootfd, .settings = s, .record = rec};
        int r;

        *e = (Eval){.plan.measure = m};
        r = m->plan(&c, &e->plan);
        if (r < 0)
                return log_error_errno(r, "Failed to evaluate measure %s: %m", m->name);
        if (e->plan.not_applicable)
                return 0;
        e->current = calloc(e->plan.n_changes + 1, sizeof(Node));
        e->differs = calloc(e->plan.n_changes + 1, sizeof(bool));
        if (!e->current || !e->differs)
                return log_oom();
        for (size_t i = 0; i < e->plan.n_changes; i++) {
                const Change *ch = &e->plan.changes[i];
                Node *cur = &e->current[i];
                bool ours;

                r = root_read_node(rootfd, ch->path, cur);
                if (r == -ELOOP || r == -ENOTDIR) {
                        _cleanup_free_ char *comp = NULL, *target = NULL;
                        *cur = (Node){.type = NODE_ABSENT};
                        e->differs[i] = true;
                        e->n_differ++;
                        if (root_find_symlink(rootfd, ch->path, &comp, &target) > 0)
                                r = conflict(&e->plan, "%s is a symlink to %s; not following it to write %s",
                                             comp, target, ch->path);
                        else
                                r = conflict(&e->plan, "a component of %s is not a directory", ch->path);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r < 0)
                        return log_error_errno(r, "Failed to read %s: %m", ch->path);
                if (node_same(cur, &ch->want))
                        continue;
                e->differs[i] = true;
                e->n_differ++;
                ours = record_is_ours(rec, ch->path, cur);
                r = 0;
                switch (cur->type) {
                case NODE_ABSENT:
                        break;
                case NODE_DIR:
                case NODE_OTHER:
                        r = conflict(&e->plan, "%s is a %s; not replacing it", ch->path,
                                     node_type_to_string(cur->type));
                        break;
                case NODE_SYMLINK:
                        if (!ours && !ch->replace_symlink)
                                r = conflict(&e->plan,
                                             "%s is a symlink to %s (not written by hardening); not "
                                             "following or replacing it",
                                             ch->path, cur->data);
                        break;
                case NODE_FILE:
                        if (ours)
                                break;
                        if (ch->want.type == NODE_ABSENT)
                                r = conflict(&e->plan,
                                             "%s was changed after hardening wrote it; not removing it",
                                             ch->path);
                        else if (!ch->edit)
                                r = conflict(&e->plan,
                                             "%s already exists with different contents (not written by "
                                             "hardening); not overwriting it",
                                             ch->path);
                        else if (cur->read_only)
                                r = conflict(&e->plan, "%s is read-only; not modifying it", ch->path);
                        break;
                default:
                        break;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Text shown in diffs for a node. */
static int node_diff_text(const Node *n, char **ret, size_t *ret_size)
{
        char *s = NULL;
        int r = 0;

        if (n->type == NODE_FILE) {
                s = malloc(n->size + 1);
                if (s) {
                        memcpy(s, n->data ?: "", n->size);
                        s[n->size] = '\0';
                        *ret_size = n->size;
                }
        } else if (n->type == NODE_SYMLINK) {
                r = asprintf(&s, "symbolic link to %s\n", n->data);
                if (r >= 0)
                        *ret_size = (size_t)r;
                else
                        s = NULL;
        } else if (n->type == NODE_ABSENT) {
                s = strdup("");
                *ret_size = 0;
        } else {
                r = asprintf(&s, "(%s)\n", node_type_to_string(n->type));
                if (r >= 0)
                        *ret_size = (size_t)r;
                else
                        s = NULL;
        }
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int diff_nodes(const char *path, const Node *from, const Node *to, FILE *out)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *la = NULL, *lb = NULL, *d = NULL;
        size_t as, bs;
        int r;

        r = node_diff_text(from, &a, &as);
        if (r >= 0)
                r = node_diff_text(to, &b, &bs);
        if (r < 0)
                return r;
        if (asprintf(&la, "%s%s", from->type == NODE_ABSENT ? "/dev/null" : "a",
                     from->type == NODE_ABSENT ? "" : path) < 0 ||
            asprintf(&lb, "%s%s", to->type == NODE_ABSENT ? "/dev/null" : "b",
                     to->type == NODE_ABSENT ? "" : path) < 0)
                return -ENOMEM;
        r = unified_diff(a, as, b, bs, la, lb, &d);
        if (r < 0)
                return r;
        if (from->type == NODE_FILE && to->type == NODE_FILE && (from->mode & 07777) != (to->mode & 07777)) {
                if (isempty(d))
                        fprintf(out, "--- %s\n+++ %s\n", la, lb);
                fprintf(out, "old mode %04o\nnew mode %04o\n", (unsigned)from->mode & 07777,
                        (unsigned)to->mode & 07777);
        } else if (from->type == NODE_ABSENT && to->type == NODE_FILE) {
                if (isempty(d))
                        fprintf(out, "--- %s\n+++ %s\n", la, lb);
                fprintf(out, "new file mode %04o\n", (unsigned)to->mode & 07777);
        }
        fputs(d, out);
        return 0;
}

static json_t *strv_to_json(char *const *l)
{
        json_t *a = json_array();
        for (size_t i = 0; a && l && l[i]; i++)
                if (json_array_append_new(a, json_string(l[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static int report_new(const Settings *s, json_t **ret)
{
        json_t *j = json_pack("{s:s,s:o,s:[]}", "profile", profile_to_string(s->profile), "selected",
                              strv_to_json(s->measures), "measures");
        if (!j)
                return -ENOMEM;
        *ret = j;
        return 0;
}

static int describe_difference(const char *path, const Node *cur, const Node *want, char **ret)
{
        if (want->type == NODE_ABSENT)
                return asprintf(ret, "%s should not exist (left by an earlier apply)", path);
        if (cur->type == NODE_ABSENT)
                return asprintf(ret, "%s is missing", path);
        if (cur->type != want->type)
                return asprintf(ret, "%s is a %s, should be a %s", path, node_type_to_string(cur->type),
                                node_type_to_string(want->type));
        if (cur->type == NODE_SYMLINK)
                return asprintf(ret, "%s points to %s, should point to %s", path, cur->data, want->data);
        if (cur->size == want->size && memcmp(cur->data, want->data, cur->size) == 0)
                return asprintf(ret, "%s has mode %04o, should have %04o", path, (unsigned)cur->mode & 07777,
                                (unsigned)want->mode & 07777);
        return asprintf(ret, "%s has different contents", path);
}

static int load_record(int rootfd, Record *rec)
{
        return record_load(rootfd, rec);
}

int engine_audit(int rootfd, const Settings *s, json_t **ret, Outcome *ret_outcome)
{
        _cleanup_(json_decrefp) json_t *report = NULL;
        Record rec = {};
        bool compliant = true, error = false;
        int r;

        r = report_new(s, &report);
        if (r < 0)
                return log_oom();
        r = load_record(rootfd, &rec);
        if (r < 0)
                return r;
        for (size_t i = 0; s->measures[i]; i++) {
                const Measure *m = measure_find(s->measures[i]);
                Eval e = {};
                const char *status;
                json_t *paths = json_array(), *reasons;

                r = evaluate(rootfd, s, &rec, m, &e);
                if (r < 0) {
                        error = true;
                        status = "error";
                        reasons = json_pack("[s]", strerror(-r));
                } else if (e.plan.not_applicable) {
                        status = "not-applicable";
                        reasons = json_pack("[s]", e.plan.not_applicable);
                } else {
                        bool ok = e.n_differ == 0 && strv_length(e.plan.conflicts) == 0;
                        status = ok ? "compliant" : "not-compliant";
                        reasons = strv_to_json(e.plan.conflicts);
                        for (size_t k = 0; reasons && k < e.plan.n_changes; k++) {
                                char *msg;
                                if (paths)
                                        json_array_append_new(paths, json_string(e.plan.changes[k].path));
                                if (!e.differs[k])
                                        continue;
                                if (describe_difference(e.plan.changes[k].path, &e.current[k],
                                                        &e.plan.changes[k].want, &msg) < 0)
                                        continue;
                                json_array_append_new(reasons, json_string(msg));
                                free(msg);
                        }
                        if (!ok)
                                compliant = false;
                }
                json_array_append_new(json_object_get(report, "measures"),
                                      json_pack("{s:s,s:s,s:s,s:o*,s:o*}", "name", m->name, "description",
                                                m->description, "status", status, "reasons", reasons,
                                                "paths", paths));
                eval_done(&e);
        }
        record_done(&rec);
        json_object_set_new(report, "compliant", json_boolean(compliant && !error));
        *ret_outcome = error ? OUTCOME_ERROR : compliant ? OUTCOME_OK : OUTCOME_ATTENTION;
        *ret = TAKE_PTR(report);
        return 0;
}

static int apply_measure(int rootfd, Record *rec, Eval *e, char **ret_error)
{
        const Measure *m = e->plan.measure;
        int r;

        for (size_t i = 0; i < e->plan.n_changes; i++) {
                const Change *ch = &e->plan.changes[i];

                if (!e->differs[i])
                        continue;
                if (ch->want.type != NODE_ABSENT) {
                        r = root_mkdir_parents(rootfd, ch->path, &rec->created_dirs);
                        if (r < 0)
                                return asprintf(ret_error, "cannot create the directories of %s: %s",
                                                ch->path, strerror(-r)) < 0
                                           ? -ENOMEM
                                           : r;
                }
                /* Write-ahead: the record knows the original before the file changes. */
                r = record_note(rec, m->name, ch->path, &e->current[i], &ch->want, ch->undo);
                if (r >= 0)
                        r = record_save(rootfd, rec);
                if (r < 0)
                        return asprintf(ret_error, "cannot update the hardening record: %s", strerror(-r)) <
                                       0
                                   ? -ENOMEM
                                   : r;
                r = root_write_node(rootfd, ch->path, &ch->want);
                if (r < 0)
                        return asprintf(ret_error, "cannot write %s: %s", ch->path, strerror(-r)) < 0
                                   ? -ENOMEM
                                   : r;
                log_debug("%s: wrote %s", m->name, ch->path);
        }
        return 0;
}

int engine_apply(int rootfd, const Settings *s, bool dry_run, json_t **ret, Outcome *ret_outcome)
{
        _cleanup_(json_decrefp) json_t *report = NULL;
        char *diff = NULL;
        size_t diff_size = 0;
        FILE *df = NULL;
        Record rec = {};
        bool changed = false, attention = false, error = false;
        int r;

        r = report_new(s, &report);
        if (r < 0)
                return log_oom();
        r = root_lock(rootfd);
        if (r < 0)
                return log_error_errno(r, "Failed to lock the root directory: %m");
        r = load_record(rootfd, &rec);
        if (r < 0)
                return r;
        if (dry_run) {
                df = open_memstream(&diff, &diff_size);
                if (!df) {
                        record_done(&rec);
                        return log_oom();
                }
        }
        for (size_t i = 0; s->measures[i]; i++) {
                const Measure *m = measure_find(s->measures[i]);
                _cleanup_free_ char *err = NULL;
                json_t *reasons = NULL, *paths = json_array();
                const char *status;
                Eval e = {};

                r = evaluate(rootfd, s, &rec, m, &e);
                if (r < 0) {
                        error = true;
                        status = "error";
                        reasons = json_pack("[s]", strerror(-r));
                } else if (e.plan.not_applicable) {
                        status = "not-applicable";
                        reasons = json_pack("[s]", e.plan.not_applicable);
                } else if (strv_length(e.plan.conflicts) > 0) {
                        attention = true;
                        status = "conflict";
                        reasons = strv_to_json(e.plan.conflicts);
                } else if (e.n_differ == 0) {
                        status = "unchanged";
                } else if (dry_run) {
                        status = "would-change";
                        for (size_t k = 0; k < e.plan.n_changes; k++)
                                if (e.differs[k]) {
                                        json_array_append_new(paths, json_string(e.plan.changes[k].path));
                                        (void)diff_nodes(e.plan.changes[k].path, &e.current[k],
                                                         &e.plan.changes[k].want, df);
                                }
                } else {
                        r = apply_measure(rootfd, &rec, &e, &err);
                        if (r < 0) {
                                error = true;
                                status = "failed";
                                reasons = json_pack("[s]", err ?: strerror(-r));
                        } else
                                status = "applied";
                        for (size_t k = 0; k < e.plan.n_changes; k++)
                                if (e.differs[k])
                                        json_array_append_new(paths, json_string(e.plan.changes[k].path));
                        changed = true;
                }
                json_array_append_new(json_object_get(report, "measures"),
                                      json_pack("{s:s,s:s,s:s,s:o*,s:o*}", "name", m->name, "description",
                                                m->description, "status", status, "reasons", reasons,
                                                "changed_paths", paths));
                eval_done(&e);
        }
        record_done(&rec);
        json_object_set_new(report, "dry_run", json_boolean(dry_run));
        json_object_set_new(report, "changed", json_boolean(changed));
        if (df) {
                if (fclose(df) == 0)
                        json_object_set_new(report, "diff", json_string(diff ?: ""));
                free(diff);
        }
        *ret_outcome = error ? OUTCOME_ERROR : attention ? OUTCOME_ATTENTION : OUTCOME_OK;
        *ret = TAKE_PTR(report);
        return 0;
}

int engine_revert(int rootfd, char *const *only, bool dry_run, json_t **ret, Outcome *ret_outcome)
{
        _cleanup_(json_decrefp) json_t *report = json_pack("{s:[],s:b}", "paths", "dry_run", dry_run);
        char *diff = NULL;
        size_t diff_size = 0;
        FILE *df = NULL;
        Record rec = {};
        bool changed = false, attention = false, error = false;
        int r;

        if (!report)
                return log_oom();
        r = root_lock(rootfd);
        if (r < 0)
                return log_error_errno(r, "Failed to lock the root directory: %m");
        r = load_record(rootfd, &rec);
        if (r < 0)
                return r;
        if (dry_run && !(df = open_memstream(&diff, &diff_size))) {
                record_done(&rec);
                return log_oom();
        }
        for (size_t i = rec.n_entries; i-- > 0;) {
                RecordEntry *e = &rec.entries[i];
                _cleanup_free_ char *path = strdup(e->path), *measure = strdup(e->measure);
                const char *status, *reason = NULL;
                _cleanup_free_ char *reason_buf = NULL;
                Node cur = {};

                if (!path || !measure) {
                        record_done(&rec);
                        return log_oom();
                }
                if (strv_length(only) > 0 && !strv_contains(only, e->measure))
                        continue;
                r = root_read_node(rootfd, e->path, &cur);
                if (r < 0) {
                        attention = true;
                        status = "conflict";
                        if (asprintf(&reason_buf, "cannot read %s without following a symlink: %s", e->path,
                                     strerror(-r)) >= 0)
                                reason = reason_buf;
                } else if (node_same(&cur, &e->original)) {
                        status = "unchanged";
                        if (!dry_run)
                                record_forget(&rec, path);
                } else if (!record_is_ours(&rec, e->path, &cur)) {
                        _cleanup_free_ char *undone = NULL;
                        /* Changed since: take back just our edit if it is still there (e.g. a user was
                         * added to /etc/passwd after core got nologin). */
                        r = record_undo_edit(e, &cur, &undone);
                        if (r > 0 && !cur.read_only) {
                                Node merged = cur;
                                merged.data = TAKE_PTR(undone);
                                merged.size = strlen(merged.data);
                                if (dry_run) {
                                        status = "would-restore";
                                        (void)diff_nodes(e->path, &cur, &merged, df);
                                } else if ((r = root_write_node(rootfd, e->path, &merged)) < 0) {
                                        error = true;
                                        status = "failed";
                                        if (asprintf(&reason_buf, "cannot restore %s: %s", e->path,
                                                     strerror(-r)) >= 0)
                                                reason = reason_buf;
                                } else {
                                        status = "restored";
                                        reason = "changed after hardening wrote it; took back only "
                                                 "hardening's edit";
                                        changed = true;
                                        record_forget(&rec, path);
                                }
                                node_done(&merged);
                        } else {
                                attention = true;
                                status = "conflict";
                                reason = "changed after hardening wrote it; leaving it as it is";
                        }
                } else if (dry_run) {
                        status = "would-restore";
                        (void)diff_nodes(e->path, &cur, &e->original, df);
                } else {
                        r = root_write_node(rootfd, e->path, &e->original);
                        if (r < 0) {
                                error = true;
                                status = "failed";
                                if (asprintf(&reason_buf, "cannot restore %s: %s", e->path, strerror(-r)) >=
                                    0)
                                        reason = reason_buf;
                        } else {
                                status = "restored";
                                changed = true;
                                record_forget(&rec, path);
                        }
                }
                node_done(&cur);
                json_array_append_new(json_object_get(report, "paths"),
                                      json_pack("{s:s,s:s,s:s,s:s*}", "path", path, "measure", measure,
                                                "status", status, "reason", reason));
        }
        if (!dry_run && rec.on_disk) {
                if (rec.n_entries == 0)
                        r = record_remove(rootfd, &rec);
                else
                        r = record_save(rootfd, &rec);
                if (r < 0)
                        error = true;
        }
        json_object_set_new(report, "changed", json_boolean(changed));
        json_object_set_new(report, "remaining", json_integer((json_int_t)rec.n_entries));
        if (df) {
                if (fclose(df) == 0)
                        json_object_set_new(report, "diff", json_string(diff ?: ""));
                free(diff);
        }
        record_done(&rec);
        *ret_outcome = error ? OUTCOME_ERROR : attention ? OUTCOME_ATTENTION : OUTCOME_OK;
        *ret = TAKE_PTR(report);
        return 0;
}

int engine_butane(const Settings *s, const char *version, char **ret)
{
        ButaneDoc d = {};
        int r = 0;

        for (size_t i = 0; r >= 0 && s->measures[i]; i++)
                r = measure_find(s->measures[i])->butane(s, &d);
        if (r >= 0)
                r = butane_doc_render(&d, version, ret);
        butane_doc_done(&d);
        return r;
}

void engine_print_report(FILE *f, const char *verb, json_t *report)
{
        json_t *list = json_object_get(report, "measures"), *paths = json_object_get(report, "paths"), *v;
        const char *diff = json_string_value(json_object_get(report, "diff"));
        size_t i;

        json_array_foreach (list, i, v) {
                json_t *reasons = json_object_get(v, "reasons"), *x;
                size_t k;
                fprintf(f, "%-15s %s\n", json_string_value(json_object_get(v, "name")),
                        json_string_value(json_object_get(v, "status")));
                json_array_foreach (reasons, k, x)
                        fprintf(f, "                  %s\n", json_string_value(x));
                json_array_foreach (json_object_get(v, "changed_paths"), k, x)
                        fprintf(f, "                  %s\n", json_string_value(x));
        }
        json_array_foreach (paths, i, v) {
                const char *reason = json_string_value(json_object_get(v, "reason"));
                fprintf(f, "%-15s %-13s %s%s%s\n", json_string_value(json_object_get(v, "measure")),
                        json_string_value(json_object_get(v, "status")),
                        json_string_value(json_object_get(v, "path")), reason ? ": " : "", reason ?: "");
        }
        if (diff && *diff)
                fputs(diff, f);
        if (streq(verb, "apply") && !json_is_true(json_object_get(report, "dry_run")) &&
            !json_is_true(json_object_get(report, "changed"))) {
                bool blocked = false;
                json_array_foreach (list, i, v) {
                        const char *st = json_string_value(json_object_get(v, "status"));
                        blocked = blocked || streq_ptr(st, "conflict") || streq_ptr(st, "failed") ||
                                  streq_ptr(st, "error");
                }
                fputs(blocked ? "No changes made.\n"
                              : "No changes made: every selected measure is already in place (or not "
                                "applicable).\n",
                      f);
        }
        if (streq(verb, "apply") && json_is_true(json_object_get(report, "dry_run")) && (!diff || !*diff))
                fputs("Nothing would change.\n", f);
        if (streq(verb, "revert") && !json_is_true(json_object_get(report, "changed")) &&
            !json_is_true(json_object_get(report, "dry_run")))
                fputs("Nothing was reverted.\n", f);
        if (streq(verb, "audit"))
                fprintf(f, "%s\n",
                        json_is_true(json_object_get(report, "compliant")) ? "Compliant."
                                                                           : "Not compliant.");
}

int hardening_load_settings(const char *root, const char *profile, char *const *names, Settings *ret)
{
        _cleanup_(conf_freep) ConfFile *conf = NULL;
        int r;

        r = conf_load_switchyard(root, "hardening", &conf);
        if (r == -EBADMSG || r == -EFBIG)
                return r; /* already logged, naming the file and line */
        if (r < 0)
                return log_error_errno(r, "Failed to load hardening.conf below %s: %m", root);
        return settings_load(ret, conf, profile, names);
}
