/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Logging: to the journal when running under systemd (JOURNAL_STREAM names our stderr), to stderr
 * otherwise. The log_*_errno() forms take a negative or positive errno, make "%m" print it, and
 * return it negative, so "return log_error_errno(r, "Failed to open %s: %m", path);" is one line. */

#include <syslog.h>

#include "macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,    /* journal if our stderr is connected to it, else stderr */
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_NULL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

/* Sets the program name shown in stderr lines and SYSLOG_IDENTIFIER. Reads SWITCHYARD_LOG_LEVEL. */
void log_setup(const char *program_name);
void log_set_target(LogTarget target);
void log_set_max_level(int level);
int log_get_max_level(void);
/* "debug", "info", "notice", "warning", "err"/"error", "crit" or a number → LOG_*; -EINVAL if unknown. */
int log_level_from_string(const char *s);

/* Returns -ERRNO_VALUE(error) (or 0 when error is 0 and level is not an error). */
int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
        _printf_(6, 7);

#define log_full_errno(level, error, ...)                                                                    \
        ({                                                                                                   \
                int _level_ = (level), _e_ = (error);                                                        \
                (log_get_max_level() >= LOG_PRI(_level_))                                                    \
                        ? log_internal(_level_, _e_, __FILE__, __LINE__, __func__, __VA_ARGS__)                \
                        : -ERRNO_VALUE(_e_);                                                                 \
        })
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)

/* For allocation failures: logs once, returns -ENOMEM. */
#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
