/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The GPT reader/validator on arbitrary disks: the input is the whole disk (512-byte sectors). When a
 * table is accepted, the gptprio/prioritize algorithms run on it, it is written back to a copy, and the
 * copy must read back valid with identical entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slot-manager-attr.h"
#include "slot-manager-gpt.h"

typedef struct Mem {
        uint8_t *data;
        size_t size;
} Mem;

static int mem_read(void *u, uint64_t off, void *buf, size_t size) {
        Mem *m = u;
        if (off > m->size || size > m->size - off)
                return -EIO;
        memcpy(buf, m->data + off, size);
        return 0;
}

static int mem_write(void *u, uint64_t off, const void *buf, size_t size) {
        Mem *m = u;
        if (off > m->size || size > m->size - off)
                return -EIO;
        memcpy(m->data + off, buf, size);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Mem m = { .data = malloc(size ?: 1), .size = size };
        GptIO io = { .read = mem_read, .write = mem_write, .userdata = &m, .sector_size = 512,
                     .n_sectors = size / 512 };
        GptTable *t = NULL, *t2 = NULL;
        char *err = NULL;

        if (!m.data)
                return 0;
        memcpy(m.data, data, size);

        if (gpt_read(&io, &t, &err) < 0) {
                free(err);
                free(m.data);
                return 0;
        }

        size_t n = t->header.n_entries;
        PrioEntry *e = calloc(n, sizeof(PrioEntry));
        if (e) {
                uint8_t usr[16];
                (void) gpt_guid_from_string("5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6", usr);
                for (uint32_t i = 0; i < n; i++) {
                        uint8_t type[16];
                        char label[GPT_LABEL_MAX];
                        gpt_entry_type(t, i, type);
                        gpt_entry_label(t, i, label);
                        e[i].is_usr = memcmp(type, usr, 16) == 0;
                        e[i].attrs = gpt_entry_get_attrs(t, i);
                }
                ssize_t chosen = gptprio_next(e, n);
                if (chosen >= 0)
                        (void) prioritize(e, n, (size_t) chosen, 0);
                for (uint32_t i = 0; i < n; i++)
                        gpt_entry_set_attrs(t, i, e[i].attrs);
                free(e);
        }

        /* Writing back must give a table that reads as valid, with the same entries, in both copies. */
        if (gpt_write(&io, t) == 0) {
                if (gpt_read(&io, &t2, &err) < 0)
                        abort();
                if (!t2->valid[GPT_PRIMARY] || !t2->valid[GPT_BACKUP] || t2->backup_stale)
                        abort();
                if (t2->header.n_entries != t->header.n_entries ||
                    memcmp(t2->entries, t->entries, (size_t) t->header.n_entries * t->header.entry_size) != 0)
                        abort();
                gpt_table_free(t2);
        }
        free(err);
        gpt_table_free(t);
        free(m.data);
        return 0;
}
