/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The ChromeOS/Flatcar A/B attribute bits of a GPT entry (spec §6.2) and the two selection
 * algorithms that work on them: GRUB's gptprio.next (§6.3) and cgpt prioritize (§6.4). Pure functions
 * on arrays of attribute words, so that they can be tested without a disk. */

#include "macro.h"

#define GPT_ATTR_PRIORITY_SHIFT 48
#define GPT_ATTR_TRIES_SHIFT 52
#define GPT_ATTR_SUCCESSFUL_SHIFT 56
#define GPT_ATTR_PRIORITY_MAX 15u
#define GPT_ATTR_TRIES_MAX 15u

static inline unsigned attr_priority(uint64_t a) {
        return (unsigned) ((a >> GPT_ATTR_PRIORITY_SHIFT) & 0xfu);
}
static inline unsigned attr_tries(uint64_t a) {
        return (unsigned) ((a >> GPT_ATTR_TRIES_SHIFT) & 0xfu);
}
static inline bool attr_successful(uint64_t a) {
        return (a >> GPT_ATTR_SUCCESSFUL_SHIFT) & 1u;
}

/* Setters keep every other bit; values above the field's range are -ERANGE, *a untouched. */
int attr_set_priority(uint64_t *a, unsigned priority);
int attr_set_tries(uint64_t *a, unsigned tries);
void attr_set_successful(uint64_t *a, bool successful);

/* An entry takes part in gptprio/prioritize when is_usr is set (the Flatcar USR type). */
typedef struct PrioEntry {
        bool is_usr;
        uint64_t attrs;
} PrioEntry;

/* gptprio.next's choice: in table order, a USR entry with tries > 0 or successful, and priority
 * strictly above the best so far (starting at 0). Returns the index, or -ENOENT if none qualifies. */
ssize_t gptprio_choose(const PrioEntry *entries, size_t n);

/* gptprio.next as a whole: choose, and when the chosen entry has tries left, decrement them.
 * Returns the chosen index (entries possibly changed) or -ENOENT (entries unchanged). */
ssize_t gptprio_next(PrioEntry *entries, size_t n);

/* cgpt prioritize: the selected entry goes alone into a top group, the other USR entries keep their
 * grouping by priority, groups are renumbered from min(#groups, 15) (or max_priority if non-zero)
 * down to 1, a trailing priority-0 group stays 0. -EINVAL if selected is not a USR entry or
 * max_priority > 15. */
int prioritize(PrioEntry *entries, size_t n, size_t selected, unsigned max_priority);
