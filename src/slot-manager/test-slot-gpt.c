/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "slot-manager-attr.h"
#include "slot-manager-gpt.h"

#define SECTOR 512u
#define N_SECTORS 4096u

typedef struct MemDisk {
        uint8_t *data;
        long writes_left; /* < 0: unlimited; 0: further writes are "lost" (power cut) */
        uint64_t lbas[256];
        size_t n_lbas;
} MemDisk;

static int mem_read(void *u, uint64_t off, void *buf, size_t size) {
        MemDisk *m = u;
        if (off + size > (uint64_t) N_SECTORS * SECTOR)
                return -EIO;
        memcpy(buf, m->data + off, size);
        return 0;
}

static int mem_write(void *u, uint64_t off, const void *buf, size_t size) {
        MemDisk *m = u;
        if (off + size > (uint64_t) N_SECTORS * SECTOR)
                return -EIO;
        if (m->writes_left == 0)
                return -EIO;
        if (m->writes_left > 0)
                m->writes_left--;
        if (m->n_lbas < ELEMENTSOF(m->lbas))
                m->lbas[m->n_lbas++] = off / SECTOR;
        memcpy(m->data + off, buf, size);
        return 0;
}

static GptIO mem_io(MemDisk *m) {
        return (GptIO) { .read = mem_read, .write = mem_write, .userdata = m, .sector_size = SECTOR,
                         .n_sectors = N_SECTORS };
}

static void put_guid(uint8_t *p, const char *s) {
        assert_int_equal(gpt_guid_from_string(s, p), 0);
}

/* A Flatcar-like disk: 4 partitions, USR-A (3) and USR-B (4). */
static MemDisk *mem_new(void) {
        MemDisk *m = calloc(1, sizeof(MemDisk));
        assert_non_null(m);
        m->data = calloc(N_SECTORS, SECTOR);
        assert_non_null(m->data);
        m->writes_left = -1;

        /* protective MBR */
        uint8_t *mbr = m->data;
        mbr[446 + 4] = 0xee;
        mbr[510] = 0x55;
        mbr[511] = 0xaa;

        GptTable *t = calloc(1, sizeof(GptTable));
        assert_non_null(t);
        t->sector_size = SECTOR;
        t->n_sectors = N_SECTORS;
        t->source = GPT_PRIMARY;
        t->header = (GptHeader) { .n_entries = 128, .entry_size = 128, .first_usable_lba = 34,
                                  .last_usable_lba = N_SECTORS - 34, .entries_lba = 2 };
        t->header.disk_guid[0] = 1;
        t->entries = calloc(128, 128);
        assert_non_null(t->entries);
        const char *labels[] = { "EFI-SYSTEM", "BIOS-BOOT", "USR-A", "USR-B" };
        for (int i = 0; i < 4; i++) {
                uint8_t *e = t->entries + 128 * i;
                put_guid(e, i < 2 ? "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" : "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6");
                put_guid(e + 16, i == 2 ? "7130c94a-213a-4e5a-8e26-6cce9662f132" : "e03dd35c-7c2d-4a47-b3fe-27f15780a57c");
                e[16] ^= (uint8_t) (i < 2 ? i + 1 : 0);
                uint64_t first = 64 + 512 * (uint64_t) i, last = first + 511;
                for (int k = 0; k < 8; k++) {
                        e[32 + k] = (uint8_t) (first >> (8 * k));
                        e[40 + k] = (uint8_t) (last >> (8 * k));
                }
                for (size_t k = 0; labels[i][k]; k++)
                        e[56 + 2 * k] = (uint8_t) labels[i][k];
        }
        gpt_entry_set_attrs(t, 2, 0x0101000000000000ull);
        GptIO io = mem_io(m);
        assert_int_equal(gpt_write(&io, t), 0);
        gpt_table_free(t);
        m->n_lbas = 0;
        return m;
}

static void mem_free(MemDisk *m) {
        free(m->data);
        free(m);
}

static GptTable *read_ok(MemDisk *m) {
        GptTable *t = NULL;
        char *err = NULL;
        GptIO io = mem_io(m);
        int r = gpt_read(&io, &t, &err);
        if (r < 0)
                fail_msg("gpt_read failed: %s", err);
        free(err);
        return t;
}

static void test_crc32(void **state) {
        assert_true(gpt_crc32("123456789", 9) == 0xcbf43926u);
        assert_true(gpt_crc32("", 0) == 0);
}

static void test_guid(void **state) {
        uint8_t g[16];
        char s[GPT_GUID_STRING_MAX];
        assert_int_equal(gpt_guid_from_string("5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6", g), 0);
        assert_int_equal(g[0], 0xf4);
        assert_int_equal(g[4], 0x48);
        assert_int_equal(g[6], 0xac);
        assert_int_equal(g[8], 0xaa);
        gpt_guid_to_string(g, s);
        assert_string_equal(s, "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6");
        assert_int_equal(gpt_guid_from_string("5dfbf5f4-2848-4bac-aa5e-0d9a20b745a", g), -EINVAL);
        assert_int_equal(gpt_guid_from_string("5dfbf5f4x2848-4bac-aa5e-0d9a20b745a6", g), -EINVAL);
        assert_int_equal(gpt_guid_from_string("5dfbf5f4-2848-4bac-aa5e-0d9a20b745ag", g), -EINVAL);
}

static void test_read(void **state) {
        MemDisk *m = mem_new();
        GptTable *t = read_ok(m);
        char label[GPT_LABEL_MAX];

        assert_true(t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP] && !t->backup_stale);
        assert_int_equal(t->source, GPT_PRIMARY);
        assert_true(gpt_entry_is_used(t, 3) && !gpt_entry_is_used(t, 4));
        gpt_entry_label(t, 2, label);
        assert_string_equal(label, "USR-A");
        assert_true(gpt_entry_get_attrs(t, 2) == 0x0101000000000000ull);
        assert_int_equal(gpt_entry_first_lba(t, 3), 64 + 3 * 512);
        assert_false(gpt_needs_write(t, t->entries));
        gpt_table_free(t);
        mem_free(m);
}

static void test_writes_stay_outside_partitions(void **state) {
        MemDisk *m = mem_new();
        GptTable *t = read_ok(m);
        GptIO io = mem_io(m);

        gpt_entry_set_attrs(t, 3, 0x0012000000000000ull);
        assert_int_equal(gpt_write(&io, t), 0);
        assert_int_equal(m->n_lbas, 66);
        /* backup first: entries then header, then the primary */
        assert_int_equal(m->lbas[0], N_SECTORS - 33);
        assert_int_equal(m->lbas[32], N_SECTORS - 1);
        assert_int_equal(m->lbas[33], 2);
        assert_int_equal(m->lbas[65], 1);
        for (size_t i = 0; i < m->n_lbas; i++)
                assert_true(m->lbas[i] < 34 || m->lbas[i] > N_SECTORS - 34);
        gpt_table_free(t);

        t = read_ok(m);
        assert_true(gpt_entry_get_attrs(t, 3) == 0x0012000000000000ull);
        assert_true(t->valid[GPT_BACKUP] && !t->backup_stale);
        gpt_table_free(t);
        mem_free(m);
}

static void test_torn_writes(void **state) {
        for (long cut = 0; cut <= 66; cut++) {
                MemDisk *m = mem_new();
                GptTable *t = read_ok(m);
                GptIO io = mem_io(m);

                gpt_entry_set_attrs(t, 3, 0x0012000000000000ull);
                m->writes_left = cut;
                int r = gpt_write(&io, t);
                assert_int_equal(r, cut == 66 ? 0 : -EIO);
                gpt_table_free(t);

                t = read_ok(m);
                uint64_t a = gpt_entry_get_attrs(t, 3);
                /* until the primary header lands (write 66) the old table wins, after its entries were
                 * cut the backup (new) wins */
                if (cut <= 33)
                        assert_true(a == 0);
                else
                        assert_true(a == 0x0012000000000000ull);
                assert_true(gpt_entry_get_attrs(t, 2) == 0x0101000000000000ull);

                /* and a repair makes both copies whole again */
                m->writes_left = -1;
                assert_int_equal(gpt_write(&io, t), 0);
                gpt_table_free(t);
                t = read_ok(m);
                assert_true(t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP] && !t->backup_stale);
                gpt_table_free(t);
                mem_free(m);
        }
}

static void test_damaged(void **state) {
        MemDisk *m = mem_new();
        GptIO io = mem_io(m);
        GptTable *t;
        char *err = NULL;

        /* primary header damaged: backup used, write repairs */
        m->data[SECTOR + 30] ^= 0xff;
        t = read_ok(m);
        assert_false(t->valid[GPT_PRIMARY]);
        assert_int_equal(t->source, GPT_BACKUP);
        assert_non_null(t->problem[GPT_PRIMARY]);
        assert_true(gpt_needs_write(t, t->entries));
        assert_int_equal(gpt_write(&io, t), 0);
        gpt_table_free(t);
        t = read_ok(m);
        assert_true(t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP]);
        gpt_table_free(t);

        /* backup entries damaged */
        m->data[(N_SECTORS - 33) * SECTOR + 200] ^= 1;
        t = read_ok(m);
        assert_true(t->valid[GPT_PRIMARY]);
        assert_false(t->valid[GPT_BACKUP]);
        gpt_table_free(t);

        /* primary entries damaged too: both gone */
        m->data[2 * SECTOR + 200] ^= 1;
        assert_int_equal(gpt_read(&io, &t, &err), -EBADMSG);
        assert_non_null(strstr(err, "both GPT copies are damaged"));
        free(err);

        /* no protective MBR */
        m->data[510] = 0;
        assert_int_equal(gpt_read(&io, &t, &err), -ENOMSG);
        free(err);
        mem_free(m);

        /* a blank disk */
        m = mem_new();
        memset(m->data + SECTOR, 0, SECTOR);
        memset(m->data + (N_SECTORS - 1) * SECTOR, 0, SECTOR);
        io = mem_io(m);
        assert_int_equal(gpt_read(&io, &t, &err), -ENOMSG);
        assert_non_null(strstr(err, "no GPT found"));
        free(err);
        mem_free(m);
}

static void test_stale_backup(void **state) {
        MemDisk *m = mem_new();
        GptIO io = mem_io(m);
        GptTable *t = read_ok(m);

        /* write only the backup with new attributes: both valid, different, primary wins */
        gpt_entry_set_attrs(t, 3, 0x0012000000000000ull);
        m->writes_left = 33;
        assert_int_equal(gpt_write(&io, t), -EIO);
        gpt_table_free(t);
        t = read_ok(m);
        assert_true(t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP]);
        assert_true(t->backup_stale);
        assert_true(gpt_entry_get_attrs(t, 3) == 0);
        gpt_table_free(t);
        mem_free(m);
}

static void test_overlap_rejected(void **state) {
        MemDisk *m = mem_new();
        GptIO io = mem_io(m);
        GptTable *t = read_ok(m);
        char *err = NULL;

        /* partition 4 starts inside partition 3 */
        uint8_t *e = gpt_entry(t, 3);
        e[32] = (uint8_t) ((64 + 2 * 512 + 100) & 0xff);
        e[33] = (uint8_t) ((64 + 2 * 512 + 100) >> 8);
        assert_int_equal(gpt_write(&io, t), 0);
        gpt_table_free(t);
        assert_int_equal(gpt_read(&io, &t, &err), -EBADMSG);
        assert_non_null(strstr(err, "overlap"));
        free(err);
        mem_free(m);
}

static void header_fix_crc(MemDisk *m, uint64_t lba) {
        uint8_t *h = m->data + lba * SECTOR;
        memset(h + 16, 0, 4);
        uint32_t crc = gpt_crc32(h, 92);
        for (int i = 0; i < 4; i++)
                h[16 + i] = (uint8_t) (crc >> (8 * i));
}

static GptHeader header_of(const GptTable *t) {
        return t->header;
}

static void test_copies_agree(void **state) {
        MemDisk *m = mem_new();
        GptTable *t = read_ok(m);
        GptHeader p = header_of(t), b = p;
        size_t size = 128 * 128;
        uint8_t *pe = malloc(size), *be = malloc(size);
        char *reason = NULL;

        assert_non_null(pe);
        assert_non_null(be);
        memcpy(pe, t->entries, size);
        memcpy(be, t->entries, size);
        b.my_lba = N_SECTORS - 1;
        b.alternate_lba = 1;
        b.entries_lba = N_SECTORS - 33;
        assert_true(gpt_copies_agree(&p, pe, &b, be, SECTOR, &reason));
        assert_null(reason);
        assert_true(gpt_copies_agree(&p, pe, &b, be, SECTOR, NULL));

        static const struct {
                const char *reason;
        } cases[] = { { "names LBA" }, { "backup names LBA" }, { "revision or header size" }, { "usable range" },
                      { "usable range" }, { "disk GUID" }, { "entry count" }, { "not directly below" },
                      { "CRC32" }, { "entry 4 differs" } };
        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                GptHeader p2 = p, b2 = b;
                uint8_t *be2 = malloc(size);
                assert_non_null(be2);
                memcpy(be2, be, size);
                switch (c) {
                case 0: p2.alternate_lba = N_SECTORS - 2; break;
                case 1: b2.alternate_lba = 2; break;
                case 2: b2.header_size = 96; break;
                case 3: b2.first_usable_lba = 40; break;
                case 4: b2.last_usable_lba--; break;
                case 5: b2.disk_guid[3] ^= 1; break;
                case 6: b2.n_entries = 64; break;
                case 7: b2.entries_lba--; break;
                case 8: b2.entries_crc ^= 1; break;
                case 9: be2[3 * 128 + 48] ^= 4; break; /* same CRC field in the header, different bytes */
                }
                assert_false(gpt_copies_agree(&p2, pe, &b2, be2, SECTOR, &reason));
                assert_non_null(reason);
                if (!strstr(reason, cases[c].reason))
                        fail_msg("case %zu: \"%s\" does not mention \"%s\"", c, reason, cases[c].reason);
                reason = mfree(reason);
                /* without a reason wanted */
                assert_false(gpt_copies_agree(&p2, pe, &b2, be2, SECTOR, NULL));
                free(be2);
        }
        free(pe);
        free(be);
        gpt_table_free(t);
        mem_free(m);
}

static bool lbas_within(const MemDisk *m, uint64_t first, uint64_t last) {
        for (size_t i = 0; i < m->n_lbas; i++)
                if (m->lbas[i] < first || m->lbas[i] > last)
                        return false;
        return true;
}

static void test_repair(void **state) {
        static const struct {
                const char *what;
                uint64_t offset;
                GptCopy damaged;
        } cases[] = {
                { "primary header", SECTOR + 24, GPT_PRIMARY },
                { "primary header signature", SECTOR, GPT_PRIMARY },
                { "primary entries", 2 * SECTOR + 200, GPT_PRIMARY },
                { "primary entries, last sector", 33 * SECTOR + 7, GPT_PRIMARY },
                { "backup header", (uint64_t) (N_SECTORS - 1) * SECTOR + 24, GPT_BACKUP },
                { "backup entries", (uint64_t) (N_SECTORS - 33) * SECTOR + 200, GPT_BACKUP },
        };

        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                MemDisk *m = mem_new();
                GptIO io = mem_io(m);
                uint8_t *orig = malloc((size_t) N_SECTORS * SECTOR);
                GptRepairResult result;

                assert_non_null(orig);
                memcpy(orig, m->data, (size_t) N_SECTORS * SECTOR);
                m->data[cases[c].offset] ^= 0x5a;

                GptTable *t = read_ok(m);
                assert_false(t->valid[cases[c].damaged]);
                assert_true(t->valid[!cases[c].damaged]);
                assert_int_equal(gpt_repair(&io, t, &result), 0);
                assert_true(result.rewritten[cases[c].damaged]);
                assert_false(result.rewritten[!cases[c].damaged]);
                assert_int_equal(result.sectors_written, 33);
                assert_int_equal(m->n_lbas, 33);
                /* only the damaged copy's sectors: entries first, header last */
                if (cases[c].damaged == GPT_PRIMARY) {
                        assert_true(lbas_within(m, 1, 33));
                        assert_int_equal(m->lbas[32], 1);
                } else {
                        assert_true(lbas_within(m, N_SECTORS - 33, N_SECTORS - 1));
                        assert_int_equal(m->lbas[32], N_SECTORS - 1);
                }
                if (memcmp(orig, m->data, (size_t) N_SECTORS * SECTOR) != 0)
                        fail_msg("%s: repaired disk differs from the original", cases[c].what);
                gpt_table_free(t);

                /* afterwards intact: a second repair writes nothing */
                t = read_ok(m);
                assert_true(t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP] && !t->backup_stale);
                m->n_lbas = 0;
                assert_int_equal(gpt_repair(&io, t, &result), 0);
                assert_int_equal(m->n_lbas, 0);
                assert_int_equal(result.sectors_written, 0);
                assert_false(result.rewritten[GPT_PRIMARY] || result.rewritten[GPT_BACKUP]);
                gpt_table_free(t);
                free(orig);
                mem_free(m);
        }
}

static void test_repair_stale_and_torn(void **state) {
        /* a set-attributes write cut after every sector, then repaired: both copies equal, and they hold the
         * table cgpt would keep (the primary when both are valid) */
        for (long cut = 0; cut <= 66; cut++) {
                MemDisk *m = mem_new();
                GptIO io = mem_io(m);
                GptTable *t = read_ok(m);
                GptRepairResult result;

                gpt_entry_set_attrs(t, 3, 0x0012000000000000ull);
                m->writes_left = cut;
                (void) gpt_write(&io, t);
                gpt_table_free(t);
                m->writes_left = -1;
                m->n_lbas = 0;

                t = read_ok(m);
                uint64_t before = gpt_entry_get_attrs(t, 3);
                bool intact = t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP] && !t->backup_stale;
                if (cut == 33)
                        /* backup whole and new, primary whole and old: the primary wins */
                        assert_true(t->backup_stale && before == 0);
                assert_int_equal(gpt_repair(&io, t, &result), 0);
                assert_int_equal(result.sectors_written, intact ? 0 : 33);
                assert_true(intact || lbas_within(m, 1, 33) || lbas_within(m, N_SECTORS - 33, N_SECTORS - 1));
                gpt_table_free(t);

                t = read_ok(m);
                assert_true(t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP] && !t->backup_stale);
                assert_true(gpt_entry_get_attrs(t, 3) == before);
                gpt_table_free(t);

                /* the repair itself cut at every sector: never both copies lost, never the other value */
                for (long rcut = 0; rcut < 33 && !intact; rcut++) {
                        MemDisk *m2 = mem_new();
                        GptIO io2 = mem_io(m2);
                        GptTable *t2 = read_ok(m2);
                        gpt_entry_set_attrs(t2, 3, 0x0012000000000000ull);
                        m2->writes_left = cut;
                        (void) gpt_write(&io2, t2);
                        gpt_table_free(t2);
                        m2->writes_left = -1;
                        t2 = read_ok(m2);
                        m2->writes_left = rcut;
                        assert_int_equal(gpt_repair(&io2, t2, NULL), -EIO);
                        gpt_table_free(t2);
                        t2 = read_ok(m2);
                        assert_true(gpt_entry_get_attrs(t2, 3) == before);
                        gpt_table_free(t2);
                        mem_free(m2);
                }
                mem_free(m);
        }
}

static void test_repair_corrects_source_header(void **state) {
        /* a valid primary whose alternate LBA does not name the backup (as after a disk grew and a tool
         * kept the old value): the backup is rewritten, then the primary's header corrected */
        MemDisk *m = mem_new();
        GptIO io = mem_io(m);
        GptRepairResult result;
        uint8_t *h = m->data + SECTOR;

        h[32] ^= 1; /* alternate LBA: N_SECTORS - 2 */
        header_fix_crc(m, 1);
        GptTable *t = read_ok(m);
        assert_true(t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP] && t->backup_stale);
        assert_non_null(strstr(t->problem[GPT_BACKUP], "alternate"));
        assert_int_equal(gpt_repair(&io, t, &result), 0);
        assert_true(result.rewritten[GPT_BACKUP] && result.rewritten[GPT_PRIMARY]);
        assert_int_equal(result.sectors_written, 66);
        assert_int_equal(m->lbas[32], N_SECTORS - 1); /* the backup first */
        assert_int_equal(m->lbas[65], 1);
        gpt_table_free(t);
        t = read_ok(m);
        assert_true(t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP] && !t->backup_stale);
        assert_true(t->header.alternate_lba == N_SECTORS - 1);
        gpt_table_free(t);
        mem_free(m);
}

static void test_write_with_damaged_primary_writes_primary_first(void **state) {
        /* the only valid copy is the backup: a state change must not overwrite it before the primary holds
         * the new table */
        MemDisk *m = mem_new();
        GptIO io = mem_io(m);

        m->data[SECTOR + 24] ^= 1;
        GptTable *t = read_ok(m);
        assert_int_equal(t->source, GPT_BACKUP);
        gpt_entry_set_attrs(t, 3, 0x0012000000000000ull);
        assert_int_equal(gpt_write(&io, t), 0);
        assert_int_equal(m->n_lbas, 66);
        assert_int_equal(m->lbas[0], 2);
        assert_int_equal(m->lbas[32], 1);
        assert_int_equal(m->lbas[33], N_SECTORS - 33);
        assert_int_equal(m->lbas[65], N_SECTORS - 1);
        gpt_table_free(t);
        t = read_ok(m);
        assert_true(t->valid[GPT_PRIMARY] && t->valid[GPT_BACKUP] && !t->backup_stale);
        assert_true(gpt_entry_get_attrs(t, 3) == 0x0012000000000000ull);
        gpt_table_free(t);
        mem_free(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crc32),
                cmocka_unit_test(test_guid),
                cmocka_unit_test(test_read),
                cmocka_unit_test(test_writes_stay_outside_partitions),
                cmocka_unit_test(test_torn_writes),
                cmocka_unit_test(test_damaged),
                cmocka_unit_test(test_stale_backup),
                cmocka_unit_test(test_overlap_rejected),
                cmocka_unit_test(test_copies_agree),
                cmocka_unit_test(test_repair),
                cmocka_unit_test(test_repair_stale_and_torn),
                cmocka_unit_test(test_repair_corrects_source_header),
                cmocka_unit_test(test_write_with_damaged_primary_writes_primary_first),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
