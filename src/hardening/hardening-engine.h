/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* audit, apply (optionally dry-run) and revert over a root directory. Each returns a JSON report (the
 * same object the CLI prints with --json and the varlink methods return) and an outcome. */

#include <jansson.h>

#include "hardening-measures.h"

typedef enum Outcome {
        OUTCOME_OK,        /* compliant / applied / reverted completely */
        OUTCOME_ERROR,     /* something could not be read or written */
        OUTCOME_ATTENTION, /* not compliant (audit) or conflicts left something undone (apply, revert) */
} Outcome;

int engine_audit(int rootfd, const Settings *s, json_t **ret, Outcome *ret_outcome);
int engine_apply(int rootfd, const Settings *s, bool dry_run, json_t **ret, Outcome *ret_outcome);
/* only: measure names to revert (NULL or empty = everything in the record). */
int engine_revert(int rootfd, char *const *only, bool dry_run, json_t **ret, Outcome *ret_outcome);
int engine_butane(const Settings *s, const char *version, char **ret);
/* Human-readable rendering of a report. */
void engine_print_report(FILE *f, const char *verb, json_t *report);
