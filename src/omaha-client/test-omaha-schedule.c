/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "omaha-client-schedule.h"

static OmahaConfig defaults(void) {
        return (OmahaConfig) {
                .first_check_delay_sec = 420, .first_check_fuzz_sec = 600,
                .check_interval_sec = 2700, .check_fuzz_sec = 600,
                .min_interval_sec = 2700, .min_interval_fuzz_sec = 600,
                .max_backoff_sec = 4 * 3600, .payload_backoff_unit_sec = 86400,
        };
}

static void test_fuzz(void **state) {
        assert_int_equal(omaha_fuzz(2700, 600, 0), 2400);
        assert_int_equal(omaha_fuzz(2700, 600, 600), 3000);
        assert_int_equal(omaha_fuzz(2700, 600, 601), 2400);
        assert_int_equal(omaha_fuzz(10, 100, 0), 0); /* never below zero */
        for (uint64_t i = 0; i < 2000; i++) {
                uint64_t v = omaha_fuzz(420, 600, i * 7919);
                assert_true(v >= 120 && v <= 720); /* first check window of spec §1.7 */
        }
}

static void test_intervals(void **state) {
        OmahaConfig c = defaults();
        uint64_t last = 0, interval, fuzz;

        omaha_next_interval(&c, &(OmahaCheckOutcome) { .http_status = 200 }, &last, &interval, &fuzz);
        assert_int_equal(interval, 2700);
        assert_int_equal(fuzz, 600);

        /* 5xx doubles, up to 4 h */
        omaha_next_interval(&c, &(OmahaCheckOutcome) { .http_status = 503 }, &last, &interval, &fuzz);
        assert_int_equal(interval, 5400);
        assert_int_equal(fuzz, 5400);
        omaha_next_interval(&c, &(OmahaCheckOutcome) { .http_status = 500 }, &last, &interval, &fuzz);
        assert_int_equal(interval, 10800);
        omaha_next_interval(&c, &(OmahaCheckOutcome) { .http_status = 500 }, &last, &interval, &fuzz);
        assert_int_equal(interval, 14400);
        omaha_next_interval(&c, &(OmahaCheckOutcome) { .http_status = 500 }, &last, &interval, &fuzz);
        assert_int_equal(interval, 14400);

        /* PollInterval overrides, raised to the minimum when short */
        omaha_next_interval(&c, &(OmahaCheckOutcome) { .http_status = 200, .poll_interval = 7200 }, &last, &interval, &fuzz);
        assert_int_equal(interval, 7200);
        assert_int_equal(fuzz, 7200);
        omaha_next_interval(&c, &(OmahaCheckOutcome) { .http_status = 200, .poll_interval = 60 }, &last, &interval, &fuzz);
        assert_int_equal(interval, 2700);
        assert_int_equal(fuzz, 600);
}

static void test_payload_backoff(void **state) {
        OmahaConfig c = defaults();

        assert_int_equal(omaha_payload_backoff_sec(&c, 0, 0), 0);
        assert_int_equal(omaha_payload_backoff_sec(&c, 1, 0), 86400 - 6 * 3600);
        assert_int_equal(omaha_payload_backoff_sec(&c, 1, 12 * 3600), 86400 + 6 * 3600);
        assert_int_equal(omaha_payload_backoff_sec(&c, 3, 0), 4 * 86400 - 6 * 3600);
        assert_int_equal(omaha_payload_backoff_sec(&c, 5, 0), 16 * 86400 - 6 * 3600);
        assert_int_equal(omaha_payload_backoff_sec(&c, 50, 0), 16 * 86400 - 6 * 3600);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fuzz),
                cmocka_unit_test(test_intervals),
                cmocka_unit_test(test_payload_backoff),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
