/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Calls to the other switchyard services: slot-manager (io.switchyard.Slots), payload-writer
 * (io.switchyard.PayloadWriter) and verity-check (io.switchyard.Verity). */

#include "macro.h"

typedef struct InactiveSlot {
        char *slot, *label, *partuuid;
        uint64_t offset; /* where the slot starts in usr_fd (non-zero for a disk image file) */
        uint64_t size;
        int usr_fd;
        int kernel_fd; /* -EBADF when slot-manager has no ESP */
} InactiveSlot;

void inactive_slot_done(InactiveSlot *s);

/* Errors: a negative errno, and *ret_message says what the peer answered. */
int peer_open_inactive(const char *address, InactiveSlot *ret, char *message, size_t message_size);
int peer_set_next(const char *address, const char *slot, char *message, size_t message_size);

/* Progress callbacks: done/total in the peer's units. */
typedef void (*PeerProgress)(uint64_t done, uint64_t total, void *userdata);

typedef struct ApplyArgs {
        int payload_fd, target_fd, kernel_fd, checkpoint_fd;
        uint64_t target_offset, target_size;
        uint64_t expected_size;
        const char *expected_sha256; /* base64 */
} ApplyArgs;

/* Returns 0, or < 0 with *ret_code the Omaha error code payload-writer gave (or 14 for a transport
 * failure). */
int peer_apply(const char *address, const ApplyArgs *a, PeerProgress progress, void *userdata, int *ret_code,
               char *message, size_t message_size);

/* Verifies the written slot against the root hash embedded in the kernel. */
int peer_verify(const char *address, int data_fd, uint64_t offset, uint64_t size, int kernel_fd,
                PeerProgress progress, void *userdata, char *message, size_t message_size);
