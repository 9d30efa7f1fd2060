/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fileio.h"
#include "log.h"
#include "omaha-client-state.h"

#define STATE_FILE_MAX (256u * 1024u)
#define ROLLED_BACK_MAX 64u
#define OMAHA_PREF_MAX (OMAHA_STATE_FULL_RESPONSE_MAX)

static const char *const imported_prefs[] = { "previous-version", "aleph-version" };

OmahaState *omaha_state_free(OmahaState *s) {
        if (!s)
                return NULL;
        free(s->dir);
        free(s->response_signature);
        free(s->resume_sha256);
        free(s->resume_version);
        free(s->staged_version);
        free(s->staged_slot);
        for (size_t i = 0; i < s->n_rolled_back; i++)
                free(s->rolled_back[i]);
        free(s->rolled_back);
        return mfree(s);
}

int omaha_state_set_string(char **field, const char *value) {
        char *n = NULL;

        if (value) {
                n = strdup(value);
                if (!n)
                        return -ENOMEM;
        }
        free(*field);
        *field = n;
        return 0;
}

bool omaha_state_is_rolled_back(const OmahaState *s, const char *version) {
        for (size_t i = 0; i < s->n_rolled_back; i++)
                if (streq(s->rolled_back[i], version))
                        return true;
        return false;
}

int omaha_state_add_rolled_back(OmahaState *s, const char *version) {
        char **n;

        if (isempty(version) || omaha_state_is_rolled_back(s, version))
                return 0;
        if (s->n_rolled_back >= ROLLED_BACK_MAX) {
                /* Keep the newest: the oldest entries matter least. */
                free(s->rolled_back[0]);
                memmove(s->rolled_back, s->rolled_back + 1, (s->n_rolled_back - 1) * sizeof *s->rolled_back);
                s->n_rolled_back--;
        }
        n = reallocarray(s->rolled_back, s->n_rolled_back + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        s->rolled_back = n;
        n[s->n_rolled_back] = strdup(version);
        if (!n[s->n_rolled_back])
                return -ENOMEM;
        s->n_rolled_back++;
        return 1;
}

static char *pref_path(const OmahaState *s, const char *name) {
        char *p;
        return asprintf(&p, "%s/prefs/%s", s->dir, name) < 0 ? NULL : p;
}

int omaha_pref_get(const OmahaState *s, const char *name, char **ret) {
        _cleanup_free_ char *p = pref_path(s, name);
        char *data = NULL;
        int r;

        if (!p)
                return -ENOMEM;
        r = read_full_file(p, OMAHA_PREF_MAX, &data, NULL);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", p);
        *ret = data;
        return 1;
}

int omaha_pref_set(const OmahaState *s, const char *name, const char *value, size_t size) {
        _cleanup_free_ char *p = pref_path(s, name);
        int r;

        if (!p)
                return -ENOMEM;
        r = write_file_atomic(p, value, size, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", p);
        return 0;
}

char *omaha_state_checkpoint_path(const OmahaState *s) {
        char *p;
        return asprintf(&p, "%s/checkpoint", s->dir) < 0 ? NULL : p;
}

static int import_update_engine_prefs(const OmahaConfig *c, OmahaState *s) {
        for (size_t i = 0; i < ELEMENTSOF(imported_prefs); i++) {
                _cleanup_free_ char *ours = NULL, *theirs_rel = NULL, *theirs = NULL, *data = NULL;
                size_t size;
                int r;

                r = omaha_pref_get(s, imported_prefs[i], &ours);
                if (r != 0)
                        continue;
                if (asprintf(&theirs_rel, "/var/lib/update_engine/prefs/%s", imported_prefs[i]) < 0)
                        return -ENOMEM;
                theirs = path_join_root(c->root, theirs_rel);
                if (!theirs)
                        return -ENOMEM;
                r = read_full_file(theirs, OMAHA_PREF_MAX, &data, &size);
                if (r < 0)
                        continue;
                log_info("Importing update_engine's %s.", theirs);
                r = omaha_pref_set(s, imported_prefs[i], data, size);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int json_take_string(json_t *o, const char *key, char **field) {
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return -EBADMSG;
        return omaha_state_set_string(field, json_string_value(v));
}

static int json_take_uint(json_t *o, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(o, key);

        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int state_parse(OmahaState *s, const char *path, const char *data) {
        json_t *o, *rb;
        json_error_t err;
        uint64_t attempts = 0;
        int r = 0;

        o = json_loads(data, 0, &err);
        if (!o || !json_is_object(o)) {
                json_decref(o);
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: not a JSON object (line %d: %s).", path,
                                       err.line, err.text);
        }
        if ((r = json_take_uint(o, "last_interval_sec", &s->last_interval_sec)) < 0 ||
            (r = json_take_uint(o, "payload_attempts", &attempts)) < 0 ||
            (r = json_take_uint(o, "backoff_expiry", &s->backoff_expiry)) < 0 ||
            (r = json_take_string(o, "response_signature", &s->response_signature)) < 0 ||
            (r = json_take_string(o, "resume_sha256", &s->resume_sha256)) < 0 ||
            (r = json_take_string(o, "resume_version", &s->resume_version)) < 0 ||
            (r = json_take_string(o, "staged_version", &s->staged_version)) < 0 ||
            (r = json_take_string(o, "staged_slot", &s->staged_slot)) < 0)
                goto finish;
        s->payload_attempts = (unsigned) MIN(attempts, 1000u);
        rb = json_object_get(o, "rolled_back");
        if (rb && !json_is_array(rb))
                r = -EBADMSG;
        for (size_t i = 0; r >= 0 && rb && i < json_array_size(rb); i++) {
                json_t *v = json_array_get(rb, i);
                if (!json_is_string(v))
                        r = -EBADMSG;
                else
                        r = omaha_state_add_rolled_back(s, json_string_value(v));
        }
finish:
        json_decref(o);
        if (r == -EBADMSG)
                return log_error_errno(r, "%s: a field has the wrong type.", path);
        return r < 0 ? r : 0;
}

int omaha_state_load(const OmahaConfig *c, OmahaState **ret) {
        _cleanup_(omaha_state_freep) OmahaState *s = NULL;
        _cleanup_free_ char *path = NULL, *prefs = NULL, *data = NULL;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return log_oom();
        s->dir = strdup(c->state_dir);
        if (!s->dir || asprintf(&prefs, "%s/prefs", s->dir) < 0 || asprintf(&path, "%s/state.json", s->dir) < 0)
                return log_oom();
        r = mkdir_p(prefs, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", prefs);

        r = read_full_file(path, STATE_FILE_MAX, &data, NULL);
        if (r >= 0) {
                r = state_parse(s, path, data);
                if (r < 0) {
                        /* A damaged state file must not stop updates: start over, keep the evidence. */
                        _cleanup_free_ char *bad = NULL;
                        log_warning("Starting with fresh state; moving %s aside.", path);
                        if (asprintf(&bad, "%s.damaged", path) >= 0)
                                (void) rename(path, bad);
                        omaha_state_free(s);
                        s = calloc(1, sizeof *s);
                        if (!s || !(s->dir = strdup(c->state_dir)))
                                return log_oom();
                }
        } else if (r != -ENOENT)
                return log_error_errno(r, "Failed to read %s: %m", path);

        r = import_update_engine_prefs(c, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

json_t *omaha_state_to_json(const OmahaState *s) {
        json_t *rb = json_array();

        if (!rb)
                return NULL;
        for (size_t i = 0; i < s->n_rolled_back; i++)
                json_array_append_new(rb, json_string(s->rolled_back[i]));
        return json_pack("{s:I, s:I, s:I, s:s?, s:s?, s:s?, s:s?, s:s?, s:o}",
                         "last_interval_sec", (json_int_t) s->last_interval_sec,
                         "payload_attempts", (json_int_t) s->payload_attempts,
                         "backoff_expiry", (json_int_t) s->backoff_expiry,
                         "response_signature", s->response_signature,
                         "resume_sha256", s->resume_sha256,
                         "resume_version", s->resume_version,
                         "staged_version", s->staged_version,
                         "staged_slot", s->staged_slot,
                         "rolled_back", rb);
}

int omaha_state_save(const OmahaState *s) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        json_t *o;
        int r;

        o = omaha_state_to_json(s);
        if (!o)
                return log_oom();
        text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(o);
        if (!text || asprintf(&path, "%s/state.json", s->dir) < 0)
                return log_oom();
        r = write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

int omaha_version_compare(const char *a, const char *b) {
        while (*a || *b) {
                if (isdigit((unsigned char) *a) && isdigit((unsigned char) *b)) {
                        const char *ea = a, *eb = b;
                        size_t la, lb;
                        int c;

                        while (*a == '0' && isdigit((unsigned char) a[1]))
                                a++;
                        while (*b == '0' && isdigit((unsigned char) b[1]))
                                b++;
                        for (ea = a; isdigit((unsigned char) *ea); ea++)
                                ;
                        for (eb = b; isdigit((unsigned char) *eb); eb++)
                                ;
                        la = (size_t) (ea - a);
                        lb = (size_t) (eb - b);
                        if (la != lb)
                                return la < lb ? -1 : 1;
                        c = strncmp(a, b, la);
                        if (c != 0)
                                return c < 0 ? -1 : 1;
                        a = ea;
                        b = eb;
                        continue;
                }
                if (*a != *b) {
                        /* A missing part sorts first: "1.2" < "1.2.1". */
                        if (!*a)
                                return -1;
                        if (!*b)
                                return 1;
                        return (unsigned char) *a < (unsigned char) *b ? -1 : 1;
                }
                a++;
                b++;
        }
        return 0;
}
