/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/random.h>

#include "omaha-client-schedule.h"

uint64_t omaha_fuzz(uint64_t value, uint64_t range, uint64_t rnd) {
        uint64_t lo = range / 2 > value ? 0 : value - range / 2;
        uint64_t hi = value + (range - range / 2);

        return lo + rnd % (hi - lo + 1);
}

void omaha_next_interval(const OmahaConfig *c, const OmahaCheckOutcome *o, uint64_t *last_interval,
                         uint64_t *ret_interval, uint64_t *ret_fuzz) {
        uint64_t interval, fuzz;

        if (o->http_status == 500 || o->http_status == 503) {
                interval = *last_interval > 0 ? *last_interval * 2 : c->check_interval_sec;
                interval = MIN(interval, c->max_backoff_sec);
                fuzz = interval;
        } else if (o->poll_interval > 0) {
                interval = (uint64_t) o->poll_interval;
                fuzz = interval;
        } else {
                interval = c->check_interval_sec;
                fuzz = c->check_fuzz_sec;
        }
        if (interval < c->min_interval_sec) {
                interval = c->min_interval_sec;
                fuzz = c->min_interval_fuzz_sec;
        }
        *last_interval = interval;
        *ret_interval = interval;
        *ret_fuzz = fuzz;
}

uint64_t omaha_first_check_delay(const OmahaConfig *c, uint64_t rnd) {
        return omaha_fuzz(c->first_check_delay_sec, c->first_check_fuzz_sec, rnd);
}

uint64_t omaha_payload_backoff_sec(const OmahaConfig *c, unsigned attempts, uint64_t rnd) {
        uint64_t units = 1;

        if (attempts == 0)
                return 0;
        for (unsigned i = 1; i < attempts && units < 16; i++)
                units *= 2;
        /* ±6 h for a day, i.e. a quarter unit on each side. */
        return omaha_fuzz(units * c->payload_backoff_unit_sec, c->payload_backoff_unit_sec / 2, rnd);
}

uint64_t omaha_random_u64(void) {
        uint64_t v = 0;

        if (getrandom(&v, sizeof v, 0) != (ssize_t) sizeof v)
                v = (uint64_t) random() << 32 | (uint64_t) random();
        return v;
}
