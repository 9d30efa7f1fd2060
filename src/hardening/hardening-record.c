/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <jansson.h>

#include "hardening-parse.h"
#include "hardening-record.h"
#include "log.h"

static void entry_done(RecordEntry *e)
{
        free(e->measure);
        free(e->path);
        node_done(&e->original);
        e->undo = strv_free(e->undo);
}

static int strv_copy(char *const *l, char ***ret)
{
        _cleanup_(strv_freep) char **c = NULL;
        int r;

        if (!l) {
                *ret = NULL;
                return 0;
        }
        c = calloc(1, sizeof(char *));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; l[i]; i++) {
                r = strv_push(&c, l[i]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static bool undo_valid(char *const *u)
{
        size_t n = strv_length(u);
        return !u || (n == 4 && streq(u[0], "passwd-shell")) ||
               (n == 2 && streq(u[0], "remove-line") && !strchr(u[1], '\n'));
}

int record_undo_edit(const RecordEntry *e, const Node *current, char **ret_data)
{
        char *const *u = e->undo;

        if (!u || current->type != NODE_FILE)
                return 0;
        if (streq(u[0], "passwd-shell")) {
                _cleanup_free_ char *shell = NULL;
                int r = passwd_get_shell(current->data, current->size, u[1], &shell);
                if (r <= 0 || !streq(shell, u[3]))
                        return r < 0 && r != -EBADMSG ? r : 0;
                r = passwd_set_shell(current->data, current->size, u[1], u[2], ret_data);
                return r < 0 ? (r == -ENOMEM ? r : 0) : 1;
        }
        if (streq(u[0], "remove-line")) {
                const char *line = u[1], *p = current->data, *end = current->data + current->size,
                           *hit = NULL;
                size_t l = strlen(line);
                char *out;

                /* The last occurrence of the whole line: that is the one apply appended. */
                while (p < end) {
                        const char *nl = memchr(p, '\n', (size_t)(end - p));
                        size_t len = (size_t)((nl ? nl : end) - p);
                        if (len == l && memcmp(p, line, l) == 0)
                                hit = p;
                        p = nl ? nl + 1 : end;
                }
                if (!hit)
                        return 0;
                size_t cut = l + (hit + l < end && hit[l] == '\n' ? 1 : 0);
                out = malloc(current->size - cut + 1);
                if (!out)
                        return -ENOMEM;
                memcpy(out, current->data, (size_t)(hit - current->data));
                memcpy(out + (hit - current->data), hit + cut, (size_t)(end - hit - cut));
                out[current->size - cut] = '\0';
                *ret_data = out;
                return 1;
        }
        return 0;
}

void record_done(Record *r)
{
        for (size_t i = 0; i < r->n_entries; i++)
                entry_done(&r->entries[i]);
        r->entries = mfree(r->entries);
        r->n_entries = 0;
        r->created_dirs = strv_free(r->created_dirs);
}

int node_hash(const Node *n, char ret[SHA256_HEX_SIZE])
{
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        uint8_t d[SHA256_DIGEST_SIZE];
        char hdr[64];
        int r;

        r = sha256_new(&h);
        if (r < 0)
                return r;
        (void)snprintf(hdr, sizeof hdr, "%s %o\n", node_type_to_string(n->type),
                       n->type == NODE_FILE ? (unsigned)(n->mode & 07777) : 0u);
        r = sha256_update(h, hdr, strlen(hdr));
        if (r >= 0 && (n->type == NODE_FILE || n->type == NODE_SYMLINK))
                r = sha256_update(h, n->data ?: "", n->size);
        if (r >= 0)
                r = sha256_final(h, d);
        if (r < 0)
                return r;
        hex_encode(d, sizeof d, ret);
        return 0;
}

RecordEntry *record_find(const Record *r, const char *path)
{
        for (size_t i = 0; i < r->n_entries; i++)
                if (streq(r->entries[i].path, path))
                        return &r->entries[i];
        return NULL;
}

bool record_is_ours(const Record *r, const char *path, const Node *current)
{
        RecordEntry *e = record_find(r, path);
        char h[SHA256_HEX_SIZE];

        return e && node_hash(current, h) >= 0 && streq(h, e->written);
}

int record_note(Record *r, const char *measure, const char *path, const Node *before, const Node *written,
                char *const *undo)
{
        RecordEntry *e = record_find(r, path);
        char h[SHA256_HEX_SIZE];
        char **u = NULL;
        int k;

        k = node_hash(written, h);
        if (k < 0)
                return k;
        k = strv_copy(undo, &u);
        if (k < 0)
                return k;
        if (e) {
                /* A hint only describes the edit from the original; keep the first one. */
                if (!e->undo)
                        e->undo = TAKE_PTR(u);
                strv_free(u);
                if (!record_is_ours(r, path, before)) {
                        /* Changed by someone else since our last write: theirs is what revert restores. */
                        Node copy;
                        k = node_copy(before, &copy);
                        if (k < 0)
                                return k;
                        node_done(&e->original);
                        e->original = copy;
                }
                memcpy(e->written, h, sizeof h);
                return 0;
        }
        if (r->n_entries >= RECORD_ENTRIES_MAX)
                return -E2BIG;
        RecordEntry *ne = reallocarray(r->entries, r->n_entries + 1, sizeof *ne);
        if (!ne)
                return -ENOMEM;
        r->entries = ne;
        e = &r->entries[r->n_entries];
        *e = (RecordEntry){};
        e->measure = strdup(measure);
        e->path = strdup(path);
        e->undo = u;
        k = node_copy(before, &e->original);
        if (!e->measure || !e->path || k < 0) {
                entry_done(e);
                return -ENOMEM;
        }
        memcpy(e->written, h, sizeof h);
        r->n_entries++;
        return 0;
}

int record_forget(Record *r, const char *path)
{
        for (size_t i = 0; i < r->n_entries; i++)
                if (streq(r->entries[i].path, path)) {
                        entry_done(&r->entries[i]);
                        memmove(&r->entries[i], &r->entries[i + 1],
                                (r->n_entries - i - 1) * sizeof(RecordEntry));
                        r->n_entries--;
                        return 1;
                }
        return 0;
}

static bool record_path_ok(const char *p)
{
        return p[0] == '/' && strlen(p) < 1024 && !strstr(p, "/../") && !endswith(p, "/..") &&
               !strstr(p, "//") && !strchr(p, '\n');
}

int record_parse(const char *text, size_t size, Record *ret)
{
        _cleanup_(json_decrefp) json_t *root = NULL;
        Record rec = {};
        json_error_t err;
        json_t *entries, *dirs, *v;
        size_t i;
        int r = 0;

        root = json_loadb(text, size, JSON_REJECT_DUPLICATES, &err);
        if (!root)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                       "Hardening record is not valid JSON: %s (line %d).", err.text,
                                       err.line);
        entries = json_object_get(root, "entries");
        dirs = json_object_get(root, "created_directories");
        if (!json_is_object(root) || !json_is_array(entries) || (dirs && !json_is_array(dirs)))
                return log_error_errno(
                    SYNTHETIC_ERRNO(EBADMSG),
                    "Hardening record lacks the \"entries\" array or has a bad \"created_directories\".");
        if (json_array_size(entries) > RECORD_ENTRIES_MAX)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Hardening record has too many entries.");
        rec.created_dirs = calloc(1, sizeof(char *));
        rec.entries = calloc(json_array_size(entries) + 1, sizeof(RecordEntry));
        if (!rec.created_dirs || !rec.entries) {
                record_done(&rec);
                return -ENOMEM;
        }
        json_array_foreach (entries, i, v) {
                const char *measure = json_string_value(json_object_get(v, "measure"));
                const char *path = json_string_value(json_object_get(v, "path"));
                const char *written = json_string_value(json_object_get(v, "written_sha256"));
                json_t *orig = json_object_get(v, "original");
                const char *type = json_string_value(json_object_get(orig, "type"));
                json_t *mode = json_object_get(orig, "mode"), *uid = json_object_get(orig, "uid"),
                       *gid = json_object_get(orig, "gid");
                const char *data = json_string_value(json_object_get(orig, "data_base64"));
                json_t *undo = json_object_get(v, "undo"), *x;
                size_t ui;
                RecordEntry *e = &rec.entries[rec.n_entries];
                NodeType t = node_type_from_string(type);
                uint8_t hb[SHA256_DIGEST_SIZE];

                if (!measure || !path || !written || !json_is_object(orig) || !record_path_ok(path) ||
                    strlen(written) != SHA256_HEX_SIZE - 1 || hex_decode(written, hb, sizeof hb) < 0 ||
                    !(t == NODE_ABSENT || t == NODE_FILE || t == NODE_SYMLINK) ||
                    (t != NODE_ABSENT &&
                     (!json_is_integer(mode) || !json_is_integer(uid) || !json_is_integer(gid) || !data)) ||
                    (t != NODE_ABSENT &&
                     (json_integer_value(mode) < 0 || json_integer_value(mode) > 07777 ||
                      json_integer_value(uid) < 0 || json_integer_value(uid) > UINT32_MAX - 1 ||
                      json_integer_value(gid) < 0 || json_integer_value(gid) > UINT32_MAX - 1)) ||
                    record_find(&rec, path)) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                            "Hardening record entry %zu is malformed.", i);
                        break;
                }
                e->measure = strdup(measure);
                e->path = strdup(path);
                memcpy(e->written, written, SHA256_HEX_SIZE);
                e->original.type = t;
                rec.n_entries++;
                if (!e->measure || !e->path) {
                        r = -ENOMEM;
                        break;
                }
                if (undo && (!json_is_array(undo) || json_array_size(undo) > 8)) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                            "Hardening record entry %zu has a bad undo hint.", i);
                        break;
                }
                if (undo) {
                        e->undo = calloc(1, sizeof(char *));
                        if (!e->undo) {
                                r = -ENOMEM;
                                break;
                        }
                }
                json_array_foreach (undo, ui, x) {
                        if (!json_is_string(x)) {
                                r = -EBADMSG;
                                break;
                        }
                        r = strv_push(&e->undo, json_string_value(x));
                        if (r < 0)
                                break;
                }
                if (r >= 0 && !undo_valid(e->undo))
                        r = -EBADMSG;
                if (r == -EBADMSG)
                        log_error("Hardening record entry %zu has a bad undo hint.", i);
                if (r < 0)
                        break;
                if (t != NODE_ABSENT) {
                        size_t l = strlen(data);
                        ssize_t n;
                        e->original.mode = (mode_t)json_integer_value(mode);
                        e->original.uid = (uid_t)json_integer_value(uid);
                        e->original.gid = (gid_t)json_integer_value(gid);
                        e->original.data = malloc(l / 4 * 3 + 4);
                        if (!e->original.data) {
                                r = -ENOMEM;
                                break;
                        }
                        n = base64_decode(data, (uint8_t *)e->original.data, l / 4 * 3 + 3);
                        if (n < 0 ||
                            (t == NODE_SYMLINK && (n == 0 || memchr(e->original.data, 0, (size_t)n)))) {
                                r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                                    "Hardening record entry %zu has bad contents.", i);
                                break;
                        }
                        e->original.data[n] = '\0';
                        e->original.size = (size_t)n;
                }
        }
        json_array_foreach (dirs, i, v) {
                if (r < 0)
                        break;
                if (!json_is_string(v) || !record_path_ok(json_string_value(v))) {
                        r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                            "Hardening record has a bad directory entry.");
                        break;
                }
                r = strv_push(&rec.created_dirs, json_string_value(v));
        }
        if (r < 0) {
                record_done(&rec);
                return r;
        }
        rec.on_disk = true;
        *ret = rec;
        return 0;
}

int record_format(const Record *r, char **ret)
{
        _cleanup_(json_decrefp) json_t *root = json_object(), *entries = json_array(), *dirs = json_array();
        char *s;

        if (!root || !entries || !dirs)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_entries; i++) {
                const RecordEntry *e = &r->entries[i];
                json_t *orig = json_pack("{s:s}", "type", node_type_to_string(e->original.type));
                if (!orig)
                        return -ENOMEM;
                if (e->original.type != NODE_ABSENT) {
                        _cleanup_free_ char *b64 = malloc(DIV_ROUND_UP(e->original.size, 3) * 4 + 1);
                        if (!b64) {
                                json_decref(orig);
                                return -ENOMEM;
                        }
                        base64_encode((const uint8_t *)(e->original.data ?: ""), e->original.size, b64);
                        if (json_object_set_new(orig, "mode", json_integer(e->original.mode)) < 0 ||
                            json_object_set_new(orig, "uid", json_integer(e->original.uid)) < 0 ||
                            json_object_set_new(orig, "gid", json_integer(e->original.gid)) < 0 ||
                            json_object_set_new(orig, "data_base64", json_string(b64)) < 0) {
                                json_decref(orig);
                                return -ENOMEM;
                        }
                }
                json_t *ej = json_pack("{s:s,s:s,s:o,s:s}", "measure", e->measure, "path", e->path,
                                       "original", orig, "written_sha256", e->written);
                if (!ej || json_array_append_new(entries, ej) < 0)
                        return -ENOMEM;
                if (e->undo) {
                        json_t *u = json_array();
                        for (size_t k = 0; u && e->undo[k]; k++)
                                if (json_array_append_new(u, json_string(e->undo[k])) < 0)
                                        return -ENOMEM;
                        if (!u || json_object_set_new(ej, "undo", u) < 0)
                                return -ENOMEM;
                }
        }
        for (size_t i = 0; r->created_dirs && r->created_dirs[i]; i++)
                if (json_array_append_new(dirs, json_string(r->created_dirs[i])) < 0)
                        return -ENOMEM;
        if (json_object_set_new(root, "version", json_integer(1)) < 0 ||
            json_object_set(root, "entries", entries) < 0 ||
            json_object_set(root, "created_directories", dirs) < 0)
                return -ENOMEM;
        s = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int record_load(int rootfd, Record *ret)
{
        Node n = {};
        int r;

        r = root_read_node(rootfd, RECORD_PATH, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to read the hardening record %s: %m", RECORD_PATH);
        if (n.type == NODE_ABSENT) {
                *ret = (Record){};
                ret->created_dirs = calloc(1, sizeof(char *));
                return ret->created_dirs ? 0 : -ENOMEM;
        }
        if (n.type != NODE_FILE) {
                node_done(&n);
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Hardening record %s is a %s, not a file.",
                                       RECORD_PATH, node_type_to_string(n.type));
        }
        r = record_parse(n.data, n.size, ret);
        node_done(&n);
        return r;
}

int record_save(int rootfd, Record *rec)
{
        _cleanup_free_ char *text = NULL;
        Node n = {.type = NODE_FILE, .mode = 0600};
        int r;

        r = root_mkdir_parents(rootfd, RECORD_PATH, &rec->created_dirs);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", RECORD_DIR);
        r = record_format(rec, &text);
        if (r < 0)
                return log_oom();
        n.data = text;
        n.size = strlen(text);
        r = root_write_node(rootfd, RECORD_PATH, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to write the hardening record %s: %m", RECORD_PATH);
        rec->on_disk = true;
        return 0;
}

static int cmp_depth_desc(const void *a, const void *b)
{
        return strcmp(*(char *const *)b, *(char *const *)a);
}

int record_remove(int rootfd, Record *rec)
{
        Node absent = {.type = NODE_ABSENT};
        size_t n = strv_length(rec->created_dirs);
        int r;

        r = root_write_node(rootfd, RECORD_PATH, &absent);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to remove the hardening record %s: %m", RECORD_PATH);
        /* Reverse lexical order removes children before their parents. */
        qsort(rec->created_dirs, n, sizeof(char *), cmp_depth_desc);
        for (size_t i = 0; i < n; i++) {
                r = root_rmdir(rootfd, rec->created_dirs[i]);
                if (r < 0)
                        log_notice_errno(r, "Left directory %s in place: %m", rec->created_dirs[i]);
        }
        rec->on_disk = false;
        return 0;
}
