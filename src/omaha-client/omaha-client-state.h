/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What must survive a restart, in the state directory (default /var/lib/switchyard/omaha-client):
 *   state.json        backoff, payload attempts, resume point, staged and rolled-back versions
 *   prefs/<name>      update_engine's pref files with its names and format (raw value, no newline):
 *                     previous-version, aleph-version, full-response
 *   checkpoint        payload-writer's checkpoint of the download being written
 * Every file is replaced atomically. On first use, update_engine's own prefs
 * (/var/lib/update_engine/prefs/) are imported, so a machine moving from update_engine keeps its
 * aleph version and rollback detection. */

#include <jansson.h>

#define OMAHA_STATE_FULL_RESPONSE_MAX (1024u * 1024u)

#include "omaha-client-config.h"

typedef struct OmahaState {
        char *dir;

        uint64_t last_interval_sec;    /* check backoff carried between checks */
        unsigned payload_attempts;     /* download attempts of the current payload */
        uint64_t backoff_expiry;       /* CLOCK_REALTIME seconds before which no download starts */
        char *response_signature;      /* of the payload the attempts/resume point belong to */
        char *resume_sha256;           /* payload the checkpoint belongs to (base64 sha256) */
        char *resume_version;
        char *staged_version;          /* written and set-next, not booted yet */
        char *staged_slot;
        char **rolled_back;            /* versions that rolled back on this machine */
        size_t n_rolled_back;
} OmahaState;

int omaha_state_load(const OmahaConfig *c, OmahaState **ret);
OmahaState *omaha_state_free(OmahaState *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(OmahaState *, omaha_state_free);
int omaha_state_save(const OmahaState *s);

/* Flatcar pref files. Get returns NULL in *ret (and 0) when the pref does not exist. */
int omaha_pref_get(const OmahaState *s, const char *name, char **ret);
int omaha_pref_set(const OmahaState *s, const char *name, const char *value, size_t size);

bool omaha_state_is_rolled_back(const OmahaState *s, const char *version);
int omaha_state_add_rolled_back(OmahaState *s, const char *version);
int omaha_state_set_string(char **field, const char *value);

/* Path of the payload-writer checkpoint file. */
char *omaha_state_checkpoint_path(const OmahaState *s);

json_t *omaha_state_to_json(const OmahaState *s);

/* Version order: dot-separated numeric fields compared numerically, anything else as text.
 * Returns <0, 0, >0. */
int omaha_version_compare(const char *a, const char *b);
