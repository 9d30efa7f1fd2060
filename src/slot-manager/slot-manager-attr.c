/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "slot-manager-attr.h"

static int attr_set_field(uint64_t *a, unsigned shift, unsigned max, unsigned value) {
        if (value > max)
                return -ERANGE;
        *a = (*a & ~((uint64_t) 0xf << shift)) | ((uint64_t) value << shift);
        return 0;
}

int attr_set_priority(uint64_t *a, unsigned priority) {
        return attr_set_field(a, GPT_ATTR_PRIORITY_SHIFT, GPT_ATTR_PRIORITY_MAX, priority);
}

int attr_set_tries(uint64_t *a, unsigned tries) {
        return attr_set_field(a, GPT_ATTR_TRIES_SHIFT, GPT_ATTR_TRIES_MAX, tries);
}

void attr_set_successful(uint64_t *a, bool successful) {
        if (successful)
                *a |= (uint64_t) 1 << GPT_ATTR_SUCCESSFUL_SHIFT;
        else
                *a &= ~((uint64_t) 1 << GPT_ATTR_SUCCESSFUL_SHIFT);
}

ssize_t gptprio_choose(const PrioEntry *entries, size_t n) {
        ssize_t best = -ENOENT;
        unsigned best_priority = 0;

        for (size_t i = 0; i < n; i++) {
                uint64_t a = entries[i].attrs;

                if (!entries[i].is_usr)
                        continue;
                if (attr_tries(a) == 0 && !attr_successful(a))
                        continue;
                /* Strictly greater: priority 0 never boots, ties go to the earlier entry. */
                if (attr_priority(a) > best_priority) {
                        best_priority = attr_priority(a);
                        best = (ssize_t) i;
                }
        }
        return best;
}

ssize_t gptprio_next(PrioEntry *entries, size_t n) {
        ssize_t i = gptprio_choose(entries, n);
        if (i < 0)
                return i;
        unsigned tries = attr_tries(entries[i].attrs);
        if (tries > 0)
                (void) attr_set_tries(&entries[i].attrs, tries - 1);
        return i;
}

/* A group key above every 4-bit priority, for the selected entry alone. */
#define PRIORITIZE_TOP_GROUP 99u

int prioritize(PrioEntry *entries, size_t n, size_t selected, unsigned max_priority) {
        unsigned group_keys[17];
        size_t n_groups = 0;

        if (selected >= n || !entries[selected].is_usr || max_priority > GPT_ATTR_PRIORITY_MAX)
                return -EINVAL;

        /* The distinct group keys: at most 16 priorities plus the top group. */
        for (size_t i = 0; i < n; i++) {
                if (!entries[i].is_usr)
                        continue;
                unsigned key = i == selected ? PRIORITIZE_TOP_GROUP : attr_priority(entries[i].attrs);
                bool seen = false;
                for (size_t g = 0; g < n_groups; g++)
                        if (group_keys[g] == key)
                                seen = true;
                if (!seen)
                        group_keys[n_groups++] = key;
        }

        /* Descending order of keys. */
        for (size_t i = 1; i < n_groups; i++)
                for (size_t j = i; j > 0 && group_keys[j - 1] < group_keys[j]; j--) {
                        unsigned t = group_keys[j];
                        group_keys[j] = group_keys[j - 1];
                        group_keys[j - 1] = t;
                }

        /* Nothing is ever lowered to 0, so a trailing group at 0 stays where it is. */
        if (n_groups > 0 && group_keys[n_groups - 1] == 0)
                n_groups--;

        unsigned next = max_priority > 0 ? max_priority : (unsigned) MIN(n_groups, (size_t) GPT_ATTR_PRIORITY_MAX);
        unsigned new_priority[17];
        for (size_t g = 0; g < n_groups; g++) {
                new_priority[g] = next;
                if (next > 1)
                        next--;
        }

        for (size_t i = 0; i < n; i++) {
                if (!entries[i].is_usr)
                        continue;
                unsigned key = i == selected ? PRIORITIZE_TOP_GROUP : attr_priority(entries[i].attrs);
                for (size_t g = 0; g < n_groups; g++)
                        if (group_keys[g] == key) {
                                (void) attr_set_priority(&entries[i].attrs, new_priority[g]);
                                break;
                        }
        }
        return 0;
}
