/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "log.h"

static const char *program = "switchyard";
static LogTarget target = LOG_TARGET_AUTO;
static int max_level = LOG_INFO;
static int resolved_target = -1;

int log_level_from_string(const char *s) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit", [LOG_ERR] = "err",
                [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
        };
        uint32_t v;

        if (isempty(s))
                return -EINVAL;
        if (streq(s, "error"))
                return LOG_ERR;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int) i;
        if (safe_atou32(s, &v) >= 0 && v <= LOG_DEBUG)
                return (int) v;
        return -EINVAL;
}

void log_setup(const char *program_name) {
        const char *e;

        if (program_name) {
                const char *slash = strrchr(program_name, '/');
                program = slash ? slash + 1 : program_name;
        }
        e = getenv("SWITCHYARD_LOG_LEVEL");
        if (e) {
                int l = log_level_from_string(e);
                if (l >= 0)
                        max_level = l;
        }
        resolved_target = -1;
}

void log_set_target(LogTarget t) {
        target = t;
        resolved_target = -1;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

/* Our stderr is the journal when JOURNAL_STREAM=dev:ino matches fd 2 (see systemd.exec(5)). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static LogTarget effective_target(void) {
        if (target != LOG_TARGET_AUTO)
                return target;
        if (resolved_target < 0)
                resolved_target = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
        return (LogTarget) resolved_target;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;
        LogTarget t = effective_target();

        /* Make %m print the error we were given, not whatever errno happens to be. */
        errno = ERRNO_VALUE(error);
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        if (t == LOG_TARGET_JOURNAL) {
                char cfile[256], cline[32], prio[16];
                (void) snprintf(cfile, sizeof cfile, "CODE_FILE=%s", file);
                (void) snprintf(cline, sizeof cline, "CODE_LINE=%d", line);
                (void) snprintf(prio, sizeof prio, "PRIORITY=%d", LOG_PRI(level));
                if (error != 0)
                        (void) sd_journal_send("MESSAGE=%s", buf, "%s", prio, "%s", cfile, "%s", cline,
                                               "CODE_FUNC=%s", func, "ERRNO=%d", ERRNO_VALUE(error),
                                               "SYSLOG_IDENTIFIER=%s", program, NULL);
                else
                        (void) sd_journal_send("MESSAGE=%s", buf, "%s", prio, "%s", cfile, "%s", cline,
                                               "CODE_FUNC=%s", func, "SYSLOG_IDENTIFIER=%s", program, NULL);
        } else if (t == LOG_TARGET_STDERR) {
                (void) fprintf(stderr, "%s: %s\n", program, buf);
                (void) fflush(stderr);
        }

        errno = saved;
        return -ERRNO_VALUE(error);
}
