/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The last failure of an operation, kept so that the varlink service can send the same one clear
 * message (and a typed error name) that the command line prints. */

#include "log.h"

#define SLOTS_ERROR_DISK "io.switchyard.Slots.DiskError"
#define SLOTS_ERROR_NO_SUCH_SLOT "io.switchyard.Slots.NoSuchSlot"
#define SLOTS_ERROR_SLOT_BOOTED "io.switchyard.Slots.SlotBooted"
#define SLOTS_ERROR_BOOTED_UNKNOWN "io.switchyard.Slots.BootedUnknown"
#define SLOTS_ERROR_ROLLBACK_REFUSED "io.switchyard.Slots.RollbackRefused"
#define SLOTS_ERROR_NOT_BOOTABLE "io.switchyard.Slots.NotBootable"
#define SLOTS_ERROR_INVALID_VALUE "io.switchyard.Slots.InvalidValue"
#define SLOTS_ERROR_NO_ESP "io.switchyard.Slots.NoESP"

void slot_error_record(const char *name, const char *fmt, ...) _printf_(2, 3);
void slot_error_clear(void);
const char *slot_error_name(void);    /* SLOTS_ERROR_DISK unless something more specific was recorded */
const char *slot_error_message(void); /* NULL if nothing was recorded */

/* Logs like log_error_errno() and records the message (%m works) under the given error name. */
#define slot_fail_named(name, error, ...)                                                                    \
        ({                                                                                                   \
                int _se_ = (error);                                                                          \
                errno = ERRNO_VALUE(_se_);                                                                   \
                slot_error_record((name), __VA_ARGS__);                                                      \
                log_error_errno(_se_, __VA_ARGS__);                                                          \
        })
#define slot_fail(error, ...) slot_fail_named(SLOTS_ERROR_DISK, (error), __VA_ARGS__)
