/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* When to check next and when a payload may be downloaded again (spec §1.7). Pure functions: the
 * random value and the clock come from the caller, so tests can pin them. */

#include "omaha-client-config.h"

/* update_engine's FuzzInt: a value in [v - range/2, v + range - range/2], picked by rnd. */
uint64_t omaha_fuzz(uint64_t value, uint64_t range, uint64_t rnd);

typedef struct OmahaCheckOutcome {
        long http_status;       /* of the last update check, 0 if none/no response */
        int64_t poll_interval;  /* PollInterval of the last response, 0 if none */
} OmahaCheckOutcome;

/* Computes the next interval (seconds, before fuzz) and its fuzz range. *last_interval carries the
 * backoff from one check to the next (0 = none yet) and is updated. */
void omaha_next_interval(const OmahaConfig *c, const OmahaCheckOutcome *o, uint64_t *last_interval,
                         uint64_t *ret_interval, uint64_t *ret_fuzz);

/* Seconds until the first check after start. */
uint64_t omaha_first_check_delay(const OmahaConfig *c, uint64_t rnd);

/* How long downloads of a payload wait after attempt number n (>= 1): min(2^(n-1), 16) units
 * ± a quarter unit. */
uint64_t omaha_payload_backoff_sec(const OmahaConfig *c, unsigned attempts, uint64_t rnd);

/* Uniform random 64-bit value from getrandom(). */
uint64_t omaha_random_u64(void);
