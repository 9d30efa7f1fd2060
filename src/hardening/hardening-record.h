/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What apply changed, kept in ROOT/var/lib/switchyard/hardening/record.json so that revert can put
 * back exactly what was there: for every path, the node before the first change (type, mode, owner,
 * contents or symlink target) and a hash of what apply wrote last; plus the directories apply created. */

#include "hardening-fs.h"
#include "hash.h"

#define RECORD_DIR         "/var/lib/switchyard/hardening"
#define RECORD_PATH        RECORD_DIR "/record.json"
#define RECORD_ENTRIES_MAX 256

typedef struct RecordEntry {
        char *measure;
        char *path;
        Node original;
        char written[SHA256_HEX_SIZE];
        /* How to take back just our edit when the file changed after we wrote it (NULL: no way):
         * {"passwd-shell", USER, OLD_SHELL, NEW_SHELL} or {"remove-line", LINE}. */
        char **undo;
} RecordEntry;

typedef struct Record {
        RecordEntry *entries;
        size_t n_entries;
        char **created_dirs;
        bool on_disk;
} Record;

void record_done(Record *r);
/* A missing record is an empty one. A malformed record is an error naming what is wrong. */
int record_load(int rootfd, Record *ret);
/* Parses record JSON text (exposed for the fuzzer and the unit tests). */
int record_parse(const char *text, size_t size, Record *ret);
int record_format(const Record *r, char **ret);
/* Writes the record (creating its directory and remembering the directories created). */
int record_save(int rootfd, Record *r);
/* Removes the record file and every recorded directory that is empty afterwards. */
int record_remove(int rootfd, Record *r);

RecordEntry *record_find(const Record *r, const char *path);
int node_hash(const Node *n, char ret[SHA256_HEX_SIZE]);
/* True if path is in the record and current is exactly what apply last wrote there. */
bool record_is_ours(const Record *r, const char *path, const Node *current);
/* Notes a write: keeps the first original unless the node changed since our last write (then the
 * current node becomes the original to restore). */
int record_note(Record *r, const char *measure, const char *path, const Node *before, const Node *written,
                char *const *undo);
/* Applies entry's undo hint to current (a file changed since our write): 1 and the new contents when
 * our edit is still there to take back, 0 when it is not (or there is no hint). */
int record_undo_edit(const RecordEntry *e, const Node *current, char **ret_data);
int record_forget(Record *r, const char *path);
