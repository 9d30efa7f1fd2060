/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <stdarg.h>

#include "slot-manager-gpt.h"

#define GPT_SIGNATURE "EFI PART"
#define GPT_REVISION_1_0 0x00010000u
#define GPT_HEADER_SIZE_MIN 92u
#define GPT_ENTRY_SIZE_MIN 128u
#define GPT_ENTRY_SIZE_MAX 4096u
#define MBR_TYPE_GPT_PROTECTIVE 0xee

static uint32_t crc_table[256];

static void crc_table_init(void) {
        if (crc_table[1] != 0)
                return;
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
                crc_table[i] = c;
        }
}

uint32_t gpt_crc32(const void *data, size_t size) {
        const uint8_t *p = data;
        uint32_t c = 0xffffffffu;

        crc_table_init();
        for (size_t i = 0; i < size; i++)
                c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
        return c ^ 0xffffffffu;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
static uint64_t le64(const uint8_t *p) {
        return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32;
}
static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

GptTable *gpt_table_free(GptTable *t) {
        if (!t)
                return NULL;
        free(t->entries);
        for (int i = 0; i < _GPT_COPY_MAX; i++)
                free(t->problem[i]);
        return mfree(t);
}

static _printf_(2, 3) void set_problem(char **p, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        free(*p);
        *p = s;
}

/* Checks one header sector on its own and in its place on the disk. Returns false with *problem set. */
static bool header_check(const uint8_t *sector, uint32_t sector_size, uint64_t n_sectors, uint64_t lba,
                         GptCopy copy, GptHeader *ret, char **problem) {
        GptHeader h = {};

        if (memcmp(sector, GPT_SIGNATURE, 8) != 0) {
                set_problem(problem, "no GPT signature at LBA %" PRIu64, lba);
                return false;
        }
        h.revision = le32(sector + 8);
        h.header_size = le32(sector + 12);
        if (h.revision != GPT_REVISION_1_0) {
                set_problem(problem, "header at LBA %" PRIu64 " has unsupported revision 0x%08x", lba, h.revision);
                return false;
        }
        if (h.header_size < GPT_HEADER_SIZE_MIN || h.header_size > sector_size) {
                set_problem(problem, "header at LBA %" PRIu64 " has invalid size %u", lba, h.header_size);
                return false;
        }
        uint8_t copy_buf[4096];
        memcpy(copy_buf, sector, h.header_size);
        put_le32(copy_buf + 16, 0);
        if (gpt_crc32(copy_buf, h.header_size) != le32(sector + 16)) {
                set_problem(problem, "header at LBA %" PRIu64 " has a bad CRC32", lba);
                return false;
        }
        if (le32(sector + 20) != 0) {
                set_problem(problem, "header at LBA %" PRIu64 " has a non-zero reserved field", lba);
                return false;
        }
        h.my_lba = le64(sector + 24);
        h.alternate_lba = le64(sector + 32);
        h.first_usable_lba = le64(sector + 40);
        h.last_usable_lba = le64(sector + 48);
        memcpy(h.disk_guid, sector + 56, 16);
        h.entries_lba = le64(sector + 72);
        h.n_entries = le32(sector + 80);
        h.entry_size = le32(sector + 84);
        h.entries_crc = le32(sector + 88);

        if (h.my_lba != lba) {
                set_problem(problem, "header at LBA %" PRIu64 " claims to be at LBA %" PRIu64, lba, h.my_lba);
                return false;
        }
        if (h.entry_size < GPT_ENTRY_SIZE_MIN || h.entry_size > GPT_ENTRY_SIZE_MAX ||
            (h.entry_size & (h.entry_size - 1)) != 0) {
                set_problem(problem, "header at LBA %" PRIu64 " has invalid entry size %u", lba, h.entry_size);
                return false;
        }
        if (h.n_entries == 0 || (uint64_t) h.n_entries * h.entry_size > GPT_ENTRIES_MAX_BYTES) {
                set_problem(problem, "header at LBA %" PRIu64 " has invalid entry count %u", lba, h.n_entries);
                return false;
        }
        uint64_t entries_sectors = DIV_ROUND_UP((uint64_t) h.n_entries * h.entry_size, sector_size);
        if (h.first_usable_lba < 2 || h.first_usable_lba > h.last_usable_lba ||
            h.last_usable_lba >= n_sectors - 1) {
                set_problem(problem, "header at LBA %" PRIu64 " has an invalid usable range %" PRIu64 "-%" PRIu64,
                            lba, h.first_usable_lba, h.last_usable_lba);
                return false;
        }
        bool entries_ok;
        if (copy == GPT_PRIMARY)
                entries_ok = h.entries_lba >= 2 && h.entries_lba < h.first_usable_lba &&
                             entries_sectors <= h.first_usable_lba - h.entries_lba;
        else
                entries_ok = h.entries_lba > h.last_usable_lba && h.entries_lba < h.my_lba &&
                             entries_sectors <= h.my_lba - h.entries_lba;
        if (!entries_ok) {
                set_problem(problem, "header at LBA %" PRIu64 " places its entries at an invalid LBA %" PRIu64,
                            lba, h.entries_lba);
                return false;
        }

        *ret = h;
        return true;
}

static int entry_cmp_first(const void *a, const void *b) {
        const uint64_t *x = a, *y = b;
        return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0;
}

static bool guid_is_null(const uint8_t *g) {
        for (int i = 0; i < 16; i++)
                if (g[i])
                        return false;
        return true;
}

/* Every used entry lies inside the usable range and no two overlap. */
static bool entries_check(const GptHeader *h, const uint8_t *entries, char **problem, const char *what) {
        _cleanup_free_ uint64_t *ranges = NULL;
        size_t n = 0;

        ranges = calloc(h->n_entries, 2 * sizeof(uint64_t));
        if (!ranges) {
                set_problem(problem, "out of memory");
                return false;
        }
        for (uint32_t i = 0; i < h->n_entries; i++) {
                const uint8_t *e = entries + (size_t) i * h->entry_size;
                if (guid_is_null(e))
                        continue;
                uint64_t first = le64(e + 32), last = le64(e + 40);
                if (first > last || first < h->first_usable_lba || last > h->last_usable_lba) {
                        set_problem(problem, "%s entry %u has an invalid range %" PRIu64 "-%" PRIu64, what, i + 1,
                                    first, last);
                        return false;
                }
                ranges[2 * n] = first;
                ranges[2 * n + 1] = last;
                n++;
        }
        qsort(ranges, n, 2 * sizeof(uint64_t), entry_cmp_first);
        for (size_t i = 1; i < n; i++)
                if (ranges[2 * i] <= ranges[2 * (i - 1) + 1]) {
                        set_problem(problem, "%s entries overlap at LBA %" PRIu64, what, ranges[2 * i]);
                        return false;
                }
        return true;
}

static int read_copy(const GptIO *io, GptCopy copy, uint64_t lba, GptHeader *ret_header, uint8_t **ret_entries,
                     char **problem) {
        const char *what = copy == GPT_PRIMARY ? "primary" : "backup";
        _cleanup_free_ uint8_t *sector = NULL, *entries = NULL;
        GptHeader h;
        int r;

        sector = malloc(io->sector_size);
        if (!sector)
                return -ENOMEM;
        r = io->read(io->userdata, lba * io->sector_size, sector, io->sector_size);
        if (r < 0) {
                set_problem(problem, "%s header at LBA %" PRIu64 " cannot be read: %s", what, lba, strerror(-r));
                return 0;
        }
        if (!header_check(sector, io->sector_size, io->n_sectors, lba, copy, &h, problem))
                return 0;

        size_t size = (size_t) h.n_entries * h.entry_size;
        entries = malloc(size);
        if (!entries)
                return -ENOMEM;
        r = io->read(io->userdata, h.entries_lba * io->sector_size, entries, size);
        if (r < 0) {
                set_problem(problem, "%s entries at LBA %" PRIu64 " cannot be read: %s", what, h.entries_lba,
                            strerror(-r));
                return 0;
        }
        if (gpt_crc32(entries, size) != h.entries_crc) {
                set_problem(problem, "%s entries at LBA %" PRIu64 " have a bad CRC32", what, h.entries_lba);
                return 0;
        }
        if (!entries_check(&h, entries, problem, what))
                return 0;

        *ret_header = h;
        *ret_entries = TAKE_PTR(entries);
        return 1;
}

static bool disagree(char **ret_reason, const char *fmt, ...) _printf_(2, 3);
static bool disagree(char **ret_reason, const char *fmt, ...) {
        va_list ap;

        if (!ret_reason)
                return false;
        free(*ret_reason);
        *ret_reason = NULL;
        va_start(ap, fmt);
        if (vasprintf(ret_reason, fmt, ap) < 0)
                *ret_reason = NULL;
        va_end(ap);
        return false;
}

bool gpt_copies_agree(const GptHeader *p, const uint8_t *pe, const GptHeader *b, const uint8_t *be,
                      uint32_t sector_size, char **ret_reason) {
        if (p->alternate_lba != b->my_lba)
                return disagree(ret_reason, "the primary names LBA %" PRIu64 " as its alternate, the backup is at LBA %" PRIu64,
                                p->alternate_lba, b->my_lba);
        if (b->alternate_lba != p->my_lba)
                return disagree(ret_reason, "the backup names LBA %" PRIu64 " as its alternate, the primary is at LBA %" PRIu64,
                                b->alternate_lba, p->my_lba);
        if (p->revision != b->revision || p->header_size != b->header_size)
                return disagree(ret_reason, "revision or header size differ (0x%08x/%u vs 0x%08x/%u)", p->revision,
                                p->header_size, b->revision, b->header_size);
        if (p->first_usable_lba != b->first_usable_lba || p->last_usable_lba != b->last_usable_lba)
                return disagree(ret_reason,
                                "usable range differs (%" PRIu64 "-%" PRIu64 " vs %" PRIu64 "-%" PRIu64 ")",
                                p->first_usable_lba, p->last_usable_lba, b->first_usable_lba, b->last_usable_lba);
        if (memcmp(p->disk_guid, b->disk_guid, 16) != 0)
                return disagree(ret_reason, "disk GUID differs");
        if (p->n_entries != b->n_entries || p->entry_size != b->entry_size)
                return disagree(ret_reason, "entry count or size differs (%u x %u vs %u x %u)", p->n_entries,
                                p->entry_size, b->n_entries, b->entry_size);
        uint64_t entries_sectors = DIV_ROUND_UP((uint64_t) b->n_entries * b->entry_size, sector_size);
        if (b->entries_lba + entries_sectors != b->my_lba)
                return disagree(ret_reason, "backup entries at LBA %" PRIu64 ", not directly below the backup header (LBA %" PRIu64 ")",
                                b->entries_lba, b->my_lba - entries_sectors);
        if (p->entries_crc != b->entries_crc)
                return disagree(ret_reason, "entries differ (CRC32 0x%08x vs 0x%08x)", p->entries_crc, b->entries_crc);
        size_t size = (size_t) p->n_entries * p->entry_size;
        for (size_t i = 0; i < size; i++)
                if (pe[i] != be[i])
                        return disagree(ret_reason, "entry %zu differs", i / p->entry_size + 1);
        return true;
}

int gpt_read(const GptIO *io, GptTable **ret, char **ret_error) {
        _cleanup_(gpt_table_freep) GptTable *t = NULL;
        _cleanup_free_ uint8_t *mbr = NULL, *primary_entries = NULL, *backup_entries = NULL;
        GptHeader primary = {}, backup = {};
        int r;

        *ret_error = NULL;
        if (io->sector_size < 512 || io->sector_size > 4096 || (io->sector_size & (io->sector_size - 1)))
                return (*ret_error = strdup("unsupported sector size")) ? -EINVAL : -ENOMEM;
        if (io->n_sectors < 6)
                return (*ret_error = strdup("disk too small to hold a GPT")) ? -ENOMSG : -ENOMEM;

        t = calloc(1, sizeof(*t));
        mbr = malloc(io->sector_size);
        if (!t || !mbr)
                return -ENOMEM;
        t->sector_size = io->sector_size;
        t->n_sectors = io->n_sectors;

        r = io->read(io->userdata, 0, mbr, io->sector_size);
        if (r < 0)
                return asprintf(ret_error, "cannot read the MBR: %s", strerror(-r)) < 0 ? -ENOMEM : r;
        bool protective = false;
        if (mbr[510] == 0x55 && mbr[511] == 0xaa)
                for (int i = 0; i < 4; i++) {
                        uint8_t type = mbr[446 + 16 * i + 4];
                        if (type == MBR_TYPE_GPT_PROTECTIVE)
                                protective = true;
                        else if (type != 0)
                                t->hybrid_mbr = true;
                }
        if (!protective)
                return (*ret_error = strdup("no GPT: sector 0 holds no protective MBR")) ? -ENOMSG : -ENOMEM;

        r = read_copy(io, GPT_PRIMARY, 1, &primary, &primary_entries, &t->problem[GPT_PRIMARY]);
        if (r < 0)
                return r;
        t->valid[GPT_PRIMARY] = r > 0;

        /* The backup belongs at the disk's last sector (where cgpt requires it and where sgdisk/cgpt
         * repair move it when a disk grows). */
        r = read_copy(io, GPT_BACKUP, io->n_sectors - 1, &backup, &backup_entries, &t->problem[GPT_BACKUP]);
        if (r < 0)
                return r;
        t->valid[GPT_BACKUP] = r > 0;

        if (!t->valid[GPT_PRIMARY] && !t->valid[GPT_BACKUP]) {
                bool any_signature = t->problem[GPT_PRIMARY] && t->problem[GPT_BACKUP] &&
                                     !(startswith(t->problem[GPT_PRIMARY], "no GPT signature") &&
                                       startswith(t->problem[GPT_BACKUP], "no GPT signature"));
                if (asprintf(ret_error, "%s: primary: %s; backup: %s",
                             any_signature ? "both GPT copies are damaged" : "no GPT found",
                             t->problem[GPT_PRIMARY] ?: "?", t->problem[GPT_BACKUP] ?: "?") < 0)
                        return -ENOMEM;
                return any_signature ? -EBADMSG : -ENOMSG;
        }

        if (t->valid[GPT_PRIMARY]) {
                t->source = GPT_PRIMARY;
                t->header = primary;
                t->entries = TAKE_PTR(primary_entries);
                _cleanup_free_ char *reason = NULL;
                if (t->valid[GPT_BACKUP] &&
                    !gpt_copies_agree(&primary, t->entries, &backup, backup_entries, io->sector_size, &reason)) {
                        t->backup_stale = true;
                        set_problem(&t->problem[GPT_BACKUP], "backup differs from the primary: %s",
                                    reason ?: "out of memory");
                }
        } else {
                t->source = GPT_BACKUP;
                t->header = backup;
                t->entries = TAKE_PTR(backup_entries);
        }

        *ret = TAKE_PTR(t);
        return 0;
}

bool gpt_needs_write(const GptTable *t, const uint8_t *entries_as_read) {
        if (!t->valid[GPT_PRIMARY] || !t->valid[GPT_BACKUP] || t->backup_stale)
                return true;
        return memcmp(t->entries, entries_as_read, (size_t) t->header.n_entries * t->header.entry_size) != 0;
}

static void header_serialize(const GptHeader *h, uint8_t *sector, uint32_t sector_size) {
        memset(sector, 0, sector_size);
        memcpy(sector, GPT_SIGNATURE, 8);
        put_le32(sector + 8, GPT_REVISION_1_0);
        put_le32(sector + 12, GPT_HEADER_SIZE_MIN);
        put_le64(sector + 24, h->my_lba);
        put_le64(sector + 32, h->alternate_lba);
        put_le64(sector + 40, h->first_usable_lba);
        put_le64(sector + 48, h->last_usable_lba);
        memcpy(sector + 56, h->disk_guid, 16);
        put_le64(sector + 72, h->entries_lba);
        put_le32(sector + 80, h->n_entries);
        put_le32(sector + 84, h->entry_size);
        put_le32(sector + 88, h->entries_crc);
        put_le32(sector + 16, gpt_crc32(sector, GPT_HEADER_SIZE_MIN));
}

typedef struct Writer {
        const GptIO *io;
        const GptHeader *h;
        long crash_after;
        long written;
} Writer;

static int writer_sector(Writer *w, uint64_t lba, const uint8_t *data) {
        /* Never anything a partition may occupy, nor the MBR, nor past the end. */
        if (lba == 0 || lba >= w->io->n_sectors ||
            (lba >= w->h->first_usable_lba && lba <= w->h->last_usable_lba))
                return -ERANGE;
        if (w->crash_after >= 0 && w->written >= w->crash_after) {
                if (w->io->sync)
                        (void) w->io->sync(w->io->userdata);
                _exit(77);
        }
        int r = w->io->write(w->io->userdata, lba * w->io->sector_size, data, w->io->sector_size);
        if (r < 0)
                return r;
        w->written++;
        return 0;
}

static int writer_copy(Writer *w, const GptHeader *h, const uint8_t *entries_padded, uint64_t entries_sectors,
                       uint8_t *sector) {
        int r;

        for (uint64_t s = 0; s < entries_sectors; s++) {
                r = writer_sector(w, h->entries_lba + s, entries_padded + s * w->io->sector_size);
                if (r < 0)
                        return r;
        }
        header_serialize(h, sector, w->io->sector_size);
        r = writer_sector(w, h->my_lba, sector);
        if (r < 0)
                return r;
        return w->io->sync ? w->io->sync(w->io->userdata) : 0;
}

/* Does the header of the copy in use need rewriting besides its entries being right? */
static bool source_header_needs_write(const GptTable *t, uint64_t entries_sectors) {
        const GptHeader *h = &t->header;

        if (h->header_size != GPT_HEADER_SIZE_MIN)
                return true;
        if (t->source == GPT_PRIMARY)
                return h->alternate_lba != t->n_sectors - 1;
        return h->alternate_lba != 1 || h->entries_lba + entries_sectors != h->my_lba;
}

/* Writes the copy not in use, then (if write_source) the copy in use, each entries first, header last,
 * then synced. */
static int write_table(const GptIO *io, GptTable *t, bool write_source, unsigned *ret_sectors) {
        _cleanup_free_ uint8_t *padded = NULL, *sector = NULL;
        GptHeader h[_GPT_COPY_MAX];
        int r;

        if (io->sector_size != t->sector_size || io->n_sectors != t->n_sectors)
                return -EINVAL;

        size_t size = (size_t) t->header.n_entries * t->header.entry_size;
        uint64_t entries_sectors = DIV_ROUND_UP(size, io->sector_size);

        h[GPT_PRIMARY] = t->header;
        h[GPT_PRIMARY].my_lba = 1;
        h[GPT_PRIMARY].alternate_lba = io->n_sectors - 1;
        /* Keep the primary entries where a valid primary had them; a rebuilt one gets the standard LBA 2. */
        if (t->source != GPT_PRIMARY)
                h[GPT_PRIMARY].entries_lba = 2;
        h[GPT_PRIMARY].entries_crc = gpt_crc32(t->entries, size);

        h[GPT_BACKUP] = h[GPT_PRIMARY];
        h[GPT_BACKUP].my_lba = io->n_sectors - 1;
        h[GPT_BACKUP].alternate_lba = 1;
        h[GPT_BACKUP].entries_lba = h[GPT_BACKUP].my_lba - entries_sectors;

        if (h[GPT_PRIMARY].entries_lba + entries_sectors > h[GPT_PRIMARY].first_usable_lba ||
            h[GPT_BACKUP].entries_lba <= h[GPT_PRIMARY].last_usable_lba)
                return -ERANGE;

        padded = calloc(entries_sectors, io->sector_size);
        sector = malloc(io->sector_size);
        if (!padded || !sector)
                return -ENOMEM;
        memcpy(padded, t->entries, size);

        Writer w = { .io = io, .h = &h[GPT_PRIMARY], .crash_after = -1 };
        const char *e = getenv(GPT_TEST_CRASH_ENV);
        if (e) {
                uint64_t n;
                if (safe_atou64(e, &n) >= 0 && n < LONG_MAX)
                        w.crash_after = (long) n;
        }

        GptCopy first = t->source == GPT_PRIMARY ? GPT_BACKUP : GPT_PRIMARY;
        r = writer_copy(&w, &h[first], padded, entries_sectors, sector);
        if (r < 0)
                return r;
        if (write_source) {
                r = writer_copy(&w, &h[t->source], padded, entries_sectors, sector);
                if (r < 0)
                        return r;
        }

        t->header = h[GPT_PRIMARY];
        t->source = GPT_PRIMARY;
        t->valid[GPT_PRIMARY] = t->valid[GPT_BACKUP] = true;
        t->backup_stale = false;
        for (int i = 0; i < _GPT_COPY_MAX; i++)
                t->problem[i] = mfree(t->problem[i]);
        if (ret_sectors)
                *ret_sectors = (unsigned) w.written;
        return 0;
}

int gpt_write(const GptIO *io, GptTable *t) {
        return write_table(io, t, /* write_source= */ true, NULL);
}

int gpt_repair(const GptIO *io, GptTable *t, GptRepairResult *ret) {
        GptRepairResult result = {};
        int r;

        if (!t->valid[GPT_PRIMARY] && !t->valid[GPT_BACKUP])
                return -EBADMSG; /* gpt_read() never returns such a table */
        if (t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP] && !t->backup_stale) {
                if (ret)
                        *ret = result;
                return 0;
        }

        GptCopy source = t->source, other = source == GPT_PRIMARY ? GPT_BACKUP : GPT_PRIMARY;
        uint64_t entries_sectors = DIV_ROUND_UP((uint64_t) t->header.n_entries * t->header.entry_size,
                                                t->sector_size);
        bool write_source = source_header_needs_write(t, entries_sectors);

        r = write_table(io, t, write_source, &result.sectors_written);
        if (r < 0)
                return r;
        result.rewritten[other] = true;
        result.rewritten[source] = write_source;
        if (ret)
                *ret = result;
        return 0;
}

uint8_t *gpt_entry(const GptTable *t, uint32_t index) {
        if (index >= t->header.n_entries)
                return NULL;
        return t->entries + (size_t) index * t->header.entry_size;
}

bool gpt_entry_is_used(const GptTable *t, uint32_t index) {
        const uint8_t *e = gpt_entry(t, index);
        return e && !guid_is_null(e);
}

uint64_t gpt_entry_get_attrs(const GptTable *t, uint32_t index) {
        return le64(gpt_entry(t, index) + 48);
}

void gpt_entry_set_attrs(GptTable *t, uint32_t index, uint64_t attrs) {
        put_le64(gpt_entry(t, index) + 48, attrs);
}

uint64_t gpt_entry_first_lba(const GptTable *t, uint32_t index) {
        return le64(gpt_entry(t, index) + 32);
}

uint64_t gpt_entry_last_lba(const GptTable *t, uint32_t index) {
        return le64(gpt_entry(t, index) + 40);
}

void gpt_entry_type(const GptTable *t, uint32_t index, uint8_t ret[16]) {
        memcpy(ret, gpt_entry(t, index), 16);
}

void gpt_entry_uuid(const GptTable *t, uint32_t index, uint8_t ret[16]) {
        memcpy(ret, gpt_entry(t, index) + 16, 16);
}

static char *utf8_put(char *p, uint32_t c) {
        if (c < 0x80)
                *p++ = (char) c;
        else if (c < 0x800) {
                *p++ = (char) (0xc0 | (c >> 6));
                *p++ = (char) (0x80 | (c & 0x3f));
        } else {
                *p++ = (char) (0xe0 | (c >> 12));
                *p++ = (char) (0x80 | ((c >> 6) & 0x3f));
                *p++ = (char) (0x80 | (c & 0x3f));
        }
        return p;
}

void gpt_entry_label(const GptTable *t, uint32_t index, char ret[GPT_LABEL_MAX]) {
        const uint8_t *name = gpt_entry(t, index) + 56;
        char *p = ret;

        /* BMP characters only (at most 3 bytes each, which GPT_LABEL_MAX is sized for); surrogates and
         * other oddities become '?'. */
        for (int i = 0; i < GPT_NAME_MAX; i++) {
                uint32_t c = (uint32_t) name[2 * i] | (uint32_t) name[2 * i + 1] << 8;
                if (c == 0)
                        break;
                if (c >= 0xd800 && c <= 0xdfff)
                        c = '?';
                p = utf8_put(p, c);
        }
        *p = 0;
}

void gpt_guid_to_string(const uint8_t g[16], char ret[GPT_GUID_STRING_MAX]) {
        snprintf(ret, GPT_GUID_STRING_MAX,
                 "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 le32(g), (unsigned) (g[4] | g[5] << 8), (unsigned) (g[6] | g[7] << 8),
                 g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int gpt_guid_from_string(const char *s, uint8_t ret[16]) {
        uint8_t b[16];
        size_t k = 0;

        if (strlen(s) != 36)
                return -EINVAL;
        for (size_t i = 0; i < 36;) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return -EINVAL;
                        i++;
                        continue;
                }
                int hi = hexval(s[i]), lo = hexval(s[i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                b[k++] = (uint8_t) (hi << 4 | lo);
                i += 2;
        }
        /* Text order is big-endian; the first three fields are stored little-endian. */
        uint8_t g[16] = { b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6] };
        memcpy(g + 8, b + 8, 8);
        memcpy(ret, g, 16);
        return 0;
}
