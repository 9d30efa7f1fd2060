/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "slot-manager-attr.h"

/* Raw attribute words of ../shared/fixtures/omaha/gpt/attribute-states.json. */
#define A_FRESH 0x0101000000000000ull    /* priority 1, successful */
#define B_FRESH 0x0000000000000000ull
#define B_POSTINST 0x0012000000000000ull /* priority 2, tries 1 */
#define B_BOOTED 0x0002000000000000ull   /* priority 2, tries 0 */
#define B_GOOD 0x0102000000000000ull     /* priority 2, successful */

static void test_bits(void **state) {
        uint64_t a = 0;
        assert_int_equal(attr_set_priority(&a, 15), 0);
        assert_int_equal(attr_set_tries(&a, 15), 0);
        attr_set_successful(&a, true);
        assert_true(a == 0x01ff000000000000ull);
        assert_int_equal(attr_priority(a), 15);
        assert_int_equal(attr_tries(a), 15);
        assert_true(attr_successful(a));

        /* Other bits survive, out-of-range values are refused untouched. */
        a = 0x0000000000000005ull | B_POSTINST;
        assert_int_equal(attr_set_priority(&a, 16), -ERANGE);
        assert_int_equal(attr_set_tries(&a, 99), -ERANGE);
        assert_true(a == (0x5ull | B_POSTINST));
        attr_set_successful(&a, true);
        assert_int_equal(attr_set_tries(&a, 0), 0);
        assert_true(a == (0x5ull | 0x0102000000000000ull));
        attr_set_successful(&a, false);
        assert_true(a == (0x5ull | B_BOOTED));
        assert_int_equal(attr_priority(0xfff0ffffffffffffull), 0);
}

/* The partitions of a Flatcar disk: 1 EFI, 2 BIOS, 3 USR-A, 4 USR-B, 6 OEM (index 5 is unused). */
static void flatcar(PrioEntry e[6], uint64_t a, uint64_t b) {
        memset(e, 0, 6 * sizeof(PrioEntry));
        e[0].attrs = 1ull << 2; /* legacy BIOS bootable on the ESP: must not matter */
        e[2] = (PrioEntry) { .is_usr = true, .attrs = a };
        e[3] = (PrioEntry) { .is_usr = true, .attrs = b };
        e[5].attrs = 0x00ff000000000000ull; /* non-USR entries never take part, whatever their bits */
}

static void set_next(PrioEntry *e, size_t n, size_t i) {
        assert_int_equal(attr_set_tries(&e[i].attrs, 1), 0);
        attr_set_successful(&e[i].attrs, false);
        assert_int_equal(prioritize(e, n, i, 0), 0);
}

static void mark_good(PrioEntry *e, size_t n, size_t i) {
        assert_int_equal(attr_set_tries(&e[i].attrs, 0), 0);
        attr_set_successful(&e[i].attrs, true);
        assert_int_equal(prioritize(e, n, i, 0), 0);
}

static void test_fixture_walk(void **state) {
        PrioEntry e[6];

        flatcar(e, A_FRESH, B_FRESH);
        assert_int_equal(gptprio_choose(e, 6), 2);

        /* postinst targeting USR-B: cgpt add -S0 -T1; cgpt prioritize */
        set_next(e, 6, 3);
        assert_true(e[2].attrs == A_FRESH);
        assert_true(e[3].attrs == B_POSTINST);
        assert_true(e[5].attrs == 0x00ff000000000000ull);

        /* GRUB gptprio.next: B chosen, one try spent */
        PrioEntry saved[6];
        memcpy(saved, e, sizeof(e));
        assert_int_equal(gptprio_next(e, 6), 3);
        assert_true(e[2].attrs == A_FRESH);
        assert_true(e[3].attrs == B_BOOTED);

        /* alternative: never marked good → next boot falls back to A, nothing written */
        PrioEntry rollback[6];
        memcpy(rollback, e, sizeof(e));
        assert_int_equal(gptprio_next(rollback, 6), 2);
        assert_memory_equal(rollback, e, sizeof(e));

        /* setgoodroot on B */
        mark_good(e, 6, 3);
        assert_true(e[2].attrs == A_FRESH);
        assert_true(e[3].attrs == B_GOOD);
        assert_int_equal(gptprio_next(e, 6), 3);
        assert_true(e[3].attrs == B_GOOD);

        /* marking good again changes nothing */
        memcpy(saved, e, sizeof(e));
        mark_good(e, 6, 3);
        assert_memory_equal(saved, e, sizeof(e));
}

static void test_gptprio_rules(void **state) {
        PrioEntry e[6];

        /* priority 0 never boots, even successful */
        flatcar(e, 0x0100000000000000ull, 0x0010000000000000ull);
        assert_int_equal(gptprio_choose(e, 6), -ENOENT);
        assert_int_equal(gptprio_next(e, 6), -ENOENT);

        /* equal priority: the lower-numbered partition wins */
        flatcar(e, 0x0101000000000000ull, 0x0101000000000000ull);
        assert_int_equal(gptprio_choose(e, 6), 2);

        /* no tries and not successful: skipped even at higher priority */
        flatcar(e, 0x0101000000000000ull, 0x000f000000000000ull);
        assert_int_equal(gptprio_choose(e, 6), 2);

        /* tries without successful qualify; tries decremented once per boot until 0 */
        flatcar(e, 0x0101000000000000ull, 0x0032000000000000ull);
        assert_int_equal(gptprio_next(e, 6), 3);
        assert_int_equal(attr_tries(e[3].attrs), 2);
        assert_int_equal(gptprio_next(e, 6), 3);
        assert_int_equal(gptprio_next(e, 6), 3);
        assert_int_equal(attr_tries(e[3].attrs), 0);
        assert_int_equal(gptprio_next(e, 6), 2);
        /* a successful entry with tries keeps them counted down too */
        flatcar(e, 0x0121000000000000ull, 0);
        assert_int_equal(gptprio_next(e, 6), 2);
        assert_true(e[2].attrs == 0x0111000000000000ull);
}

static void test_prioritize(void **state) {
        PrioEntry e[6];

        /* spec §6.4 example: A=1, B=0, prioritize B → B=2, A=1 */
        flatcar(e, 1ull << 48, 0);
        assert_int_equal(prioritize(e, 6, 3, 0), 0);
        assert_int_equal(attr_priority(e[3].attrs), 2);
        assert_int_equal(attr_priority(e[2].attrs), 1);

        /* prioritizing the top one: unchanged */
        assert_int_equal(prioritize(e, 6, 3, 0), 0);
        assert_int_equal(attr_priority(e[3].attrs), 2);
        assert_int_equal(attr_priority(e[2].attrs), 1);

        /* both 0: selected becomes 1, the other stays 0 */
        flatcar(e, 0, 0);
        assert_int_equal(prioritize(e, 6, 2, 0), 0);
        assert_int_equal(attr_priority(e[2].attrs), 1);
        assert_int_equal(attr_priority(e[3].attrs), 0);

        /* large gaps are compacted: A=15, B=3 → prioritize B: B=2, A=1 */
        flatcar(e, 15ull << 48, 3ull << 48);
        assert_int_equal(prioritize(e, 6, 3, 0), 0);
        assert_int_equal(attr_priority(e[3].attrs), 2);
        assert_int_equal(attr_priority(e[2].attrs), 1);

        /* equal priorities: selected alone on top, other keeps its group */
        flatcar(e, 5ull << 48, 5ull << 48);
        assert_int_equal(prioritize(e, 6, 2, 0), 0);
        assert_int_equal(attr_priority(e[2].attrs), 2);
        assert_int_equal(attr_priority(e[3].attrs), 1);

        /* explicit top (cgpt -P) */
        flatcar(e, 1ull << 48, 0);
        assert_int_equal(prioritize(e, 6, 3, 9), 0);
        assert_int_equal(attr_priority(e[3].attrs), 9);
        assert_int_equal(attr_priority(e[2].attrs), 8);

        /* refusals */
        assert_int_equal(prioritize(e, 6, 0, 0), -EINVAL);
        assert_int_equal(prioritize(e, 6, 6, 0), -EINVAL);
        assert_int_equal(prioritize(e, 6, 2, 16), -EINVAL);
}

static void test_prioritize_many(void **state) {
        /* 17 USR entries with priorities 0..15 and one more: groups beyond 15 saturate at 1. */
        PrioEntry e[18] = {};
        for (size_t i = 0; i < 16; i++)
                e[i] = (PrioEntry) { .is_usr = true, .attrs = (uint64_t) i << 48 };
        e[16] = (PrioEntry) { .is_usr = true, .attrs = 7ull << 48 };
        e[17] = (PrioEntry) { .is_usr = true, .attrs = 0 };
        assert_int_equal(prioritize(e, 18, 17, 0), 0);
        /* groups: 99(17), 15..1, then 0 dropped → 16 groups, start at 15 */
        assert_int_equal(attr_priority(e[17].attrs), 15);
        assert_int_equal(attr_priority(e[15].attrs), 14);
        assert_int_equal(attr_priority(e[2].attrs), 1);
        assert_int_equal(attr_priority(e[1].attrs), 1);
        assert_int_equal(attr_priority(e[0].attrs), 0);
        assert_int_equal(attr_priority(e[16].attrs), attr_priority(e[7].attrs));
        assert_int_equal(attr_priority(e[7].attrs), 6);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bits),
                cmocka_unit_test(test_fixture_walk),
                cmocka_unit_test(test_gptprio_rules),
                cmocka_unit_test(test_prioritize),
                cmocka_unit_test(test_prioritize_many),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
