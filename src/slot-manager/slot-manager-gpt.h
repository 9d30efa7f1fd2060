/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The on-disk GPT, read and written at sector level the way GRUB's gptprio and cgpt see it: headers
 * and entry arrays checked with their CRC32s, the primary wins when both copies are valid, and every
 * write lays down the backup copy first (synced), then the primary, so that a write cut off at any
 * sector leaves one intact copy holding either the old or the new table.
 *
 * All I/O goes through GptIO so that the reader can be fed from memory (fuzzing, unit tests). */

#include <inttypes.h>

#include "macro.h"

#define GPT_ENTRIES_MAX_BYTES (1024u * 1024u)
#define GPT_GUID_STRING_MAX 37 /* 36 characters + NUL */
#define GPT_NAME_MAX 36        /* UTF-16 code units in an entry's name */
#define GPT_LABEL_MAX (GPT_NAME_MAX * 3 + 1)

typedef struct GptIO {
        /* Reads/writes exactly size bytes at offset; 0 or negative errno. */
        int (*read)(void *userdata, uint64_t offset, void *buf, size_t size);
        int (*write)(void *userdata, uint64_t offset, const void *buf, size_t size);
        int (*sync)(void *userdata);
        void *userdata;
        uint32_t sector_size;
        uint64_t n_sectors;
} GptIO;

typedef struct GptHeader {
        uint32_t revision, header_size, n_entries, entry_size, entries_crc;
        uint64_t my_lba, alternate_lba, first_usable_lba, last_usable_lba, entries_lba;
        uint8_t disk_guid[16];
} GptHeader;

typedef enum GptCopy {
        GPT_PRIMARY,
        GPT_BACKUP,
        _GPT_COPY_MAX,
        _GPT_COPY_INVALID = -EINVAL,
} GptCopy;

typedef struct GptTable {
        uint32_t sector_size;
        uint64_t n_sectors;
        GptHeader header;   /* of the copy in use (source) */
        GptCopy source;     /* the primary unless it is damaged */
        uint8_t *entries;   /* n_entries * entry_size bytes of the copy in use */
        bool valid[_GPT_COPY_MAX];
        char *problem[_GPT_COPY_MAX]; /* why a copy is not usable, NULL if it is */
        bool backup_stale;  /* both valid but different: the primary wins */
        bool hybrid_mbr;
} GptTable;

uint32_t gpt_crc32(const void *data, size_t size);

GptTable *gpt_table_free(GptTable *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(GptTable *, gpt_table_free);

/* Reads and checks both copies. Fails with -ENOMSG (no protective MBR / no GPT signature anywhere) or
 * -EBADMSG (both copies damaged); *ret_error then says what exactly (caller frees). */
int gpt_read(const GptIO *io, GptTable **ret, char **ret_error);

/* True if a write would change anything on disk (a copy damaged or stale, or entries changed since
 * the read: pass the entries as read). */
bool gpt_needs_write(const GptTable *t, const uint8_t *entries_as_read);

/* Why two copies that each check out on their own do not form one table: the fields that must agree
 * (each header's alternate LBA is the other's LBA, the backup's entries directly below the backup
 * header, usable range, disk GUID, revision, header size, entry count and size, entries CRC) and the
 * entry arrays themselves, byte for byte. Returns true if they agree; otherwise false, with *ret_reason
 * (caller frees; may be NULL) naming the first difference. */
bool gpt_copies_agree(const GptHeader *primary, const uint8_t *primary_entries, const GptHeader *backup,
                      const uint8_t *backup_entries, uint32_t sector_size, char **ret_reason);

/* Writes both copies from t->header and t->entries: first the copy that is not in use (normally the
 * backup) entries and header, sync, then the copy in use, entries and header, sync; so the copy the
 * readers trust is only overwritten once the other one holds the new table. Refuses (-ERANGE) any sector
 * inside the usable area, so partition data (the booted slot included) is never touched. Afterwards both
 * copies are valid and equal. */
int gpt_write(const GptIO *io, GptTable *t);

typedef struct GptRepairResult {
        bool rewritten[_GPT_COPY_MAX];
        unsigned sectors_written;
} GptRepairResult;

/* What cgpt repair does: when one copy is damaged, or both are valid but differ (then the primary wins,
 * as with cgpt and GRUB), rewrites that copy from the one in use (t->source), entries first, then its
 * header, then syncs. The copy in use is rewritten too, after that, only if its own header needs
 * correcting (its alternate LBA does not point at the other copy, a non-standard header size, or backup
 * entries not directly below the backup header). Writes nothing when both copies are valid and equal.
 * Same guard as gpt_write(): only sectors outside the usable area. */
int gpt_repair(const GptIO *io, GptTable *t, GptRepairResult *ret);

/* Entry access; index is 0-based (partition number - 1). */
uint8_t *gpt_entry(const GptTable *t, uint32_t index);
bool gpt_entry_is_used(const GptTable *t, uint32_t index);
uint64_t gpt_entry_get_attrs(const GptTable *t, uint32_t index);
void gpt_entry_set_attrs(GptTable *t, uint32_t index, uint64_t attrs);
uint64_t gpt_entry_first_lba(const GptTable *t, uint32_t index);
uint64_t gpt_entry_last_lba(const GptTable *t, uint32_t index);
void gpt_entry_type(const GptTable *t, uint32_t index, uint8_t ret[16]);
void gpt_entry_uuid(const GptTable *t, uint32_t index, uint8_t ret[16]);
/* The entry's name as UTF-8 (invalid UTF-16 becomes '?'). */
void gpt_entry_label(const GptTable *t, uint32_t index, char ret[GPT_LABEL_MAX]);

/* GUIDs in GPT's mixed-endian byte order <-> lower-case text. */
void gpt_guid_to_string(const uint8_t guid[16], char ret[GPT_GUID_STRING_MAX]);
int gpt_guid_from_string(const char *s, uint8_t ret[16]);

/* Test hook: when the environment variable SWITCHYARD_TEST_GPT_CRASH_AFTER=N is set, gpt_write()
 * ends the process with _exit(77) instead of issuing sector write N+1 (after syncing what it wrote),
 * to simulate power loss after exactly N sector writes. */
#define GPT_TEST_CRASH_ENV "SWITCHYARD_TEST_GPT_CRASH_AFTER"
