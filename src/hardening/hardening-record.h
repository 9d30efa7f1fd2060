/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What apply changed, kept in ROOT/var/lib/switchyard/hardening/record.json so that revert can put
 * back exactly what was there: for every path, the node before the first change (type, mode, owner,
 * contents or symlink target) and a hash of what apply wrote last; plus the directories apply created. */

#include "hardening-fs.h"
#include "hash.h"

#define RECORD_DIR "/var/lib/switchyard/hardening"
#define RECORD_PATH RECORD_DIR "/record.json"
#define RECORD_ENTRIES_MAX 256

typedef struct RecordEntry {
        char *measure;
        char *path;
        Node original;
        char written[SHA256_HEX_SIZE];
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
int record_note(Record *r, const char *measure, const char *path, const Node *before, const Node *written);
int record_forget(Record *r, const char *path);
