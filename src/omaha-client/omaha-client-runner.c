/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "omaha-client-runner.h"

#define HELPER_NAME "omaha-client-job"
#define STATUS_FD 3 /* as in "--status-fd=3" below */

extern char **environ;

struct OmahaRunner {
        const OmahaRunnerOps *ops;
        void *userdata;
        pid_t pid;
        int fd; /* read end of the status pipe */
        sd_event_source *io, *child;
        bool exited;

        char line[OMAHA_REPORT_LINE_MAX];
        size_t n;
        bool have_result;
        OmahaJobResult result;
        char error[384]; /* the first thing wrong with the helper's output, "" if none */
};

int omaha_job_helper_path(char **ret) {
        const char *e = secure_getenv("SWITCHYARD_OMAHA_JOB");
        char self[PATH_MAX];
        ssize_t n;
        char *p;

        if (!isempty(e)) {
                p = strdup(e);
                goto done;
        }
        /* Run from a build tree: the helper is built beside the daemon. */
        n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
                self[n] = '\0';
                if (asprintf(&p, "%s/" HELPER_NAME, dirname(self)) < 0)
                        return -ENOMEM;
                if (access(p, X_OK) == 0)
                        goto done;
                free(p);
        }
        p = strdup(OMAHA_JOB_HELPER);
done:
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

pid_t omaha_runner_pid(const OmahaRunner *r) {
        return r->pid;
}

OmahaRunner *omaha_runner_free(OmahaRunner *r) {
        if (!r)
                return NULL;
        r->child = sd_event_source_disable_unref(r->child);
        r->io = sd_event_source_disable_unref(r->io);
        if (r->pid > 0 && !r->exited) {
                /* payload-writer sees the payload end early and keeps its checkpoint: the next check
                 * resumes from there. */
                log_info("Stopping the update job (pid %d).", (int) r->pid);
                (void) kill(r->pid, SIGTERM);
                while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        safe_close(r->fd);
        free(r);
        return NULL;
}

_printf_(2, 3) static void runner_bad_output(OmahaRunner *r, const char *fmt, ...) {
        va_list ap;

        if (r->error[0])
                return; /* the first one is the one to name */
        va_start(ap, fmt);
        vsnprintf(r->error, sizeof r->error, fmt, ap);
        va_end(ap);
        log_error("The update job (pid %d) %s; stopping it.", (int) r->pid, r->error);
        if (!r->exited)
                (void) kill(r->pid, SIGKILL);
        (void) sd_event_source_set_enabled(r->io, SD_EVENT_OFF);
}

static void runner_line(OmahaRunner *r, const char *line, size_t size) {
        char why[256] = "";
        OmahaStatus st;
        OmahaJobResult res;
        int k;

        if (r->have_result)
                return runner_bad_output(r, "wrote after its result");
        k = omaha_report_parse_line(line, size, &st, &res, why, sizeof why);
        if (k < 0)
                return runner_bad_output(r, "wrote a bad status line: %s", why);
        if (k == OMAHA_REPORT_RESULT) {
                r->have_result = true;
                r->result = res;
        } else
                r->ops->status(&st, r->userdata);
}

/* Reads what is there and handles every complete line. Returns 0 at EOF, -EAGAIN when more may come. */
static int runner_read(OmahaRunner *r) {
        for (;;) {
                ssize_t k;
                char *nl;

                if (r->error[0])
                        return 0;
                k = read(r->fd, r->line + r->n, sizeof r->line - r->n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return -EAGAIN;
                        runner_bad_output(r, "could not be read from: %s", strerror(errno));
                        return 0;
                }
                if (k == 0) {
                        if (r->n > 0)
                                runner_bad_output(r, "ended with an incomplete line");
                        return 0;
                }
                r->n += (size_t) k;
                while (!r->error[0] && (nl = memchr(r->line, '\n', r->n))) {
                        size_t len = (size_t) (nl - r->line);
                        runner_line(r, r->line, len);
                        memmove(r->line, nl + 1, r->n - len - 1);
                        r->n -= len + 1;
                }
                if (r->n == sizeof r->line)
                        runner_bad_output(r, "wrote a line longer than %d bytes", OMAHA_REPORT_LINE_MAX);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        OmahaRunner *r = userdata;

        if (runner_read(r) == 0)
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        OmahaRunner *r = userdata;
        char why[sizeof r->error + 64];

        r->exited = true;
        (void) sd_event_source_set_enabled(r->io, SD_EVENT_OFF);
        (void) runner_read(r); /* the rest; the write end is closed now */

        if (r->error[0])
                snprintf(why, sizeof why, "the update job %s", r->error);
        else if (si->si_code == CLD_EXITED && si->si_status != 0)
                snprintf(why, sizeof why, "the update job failed (exit status %d)", si->si_status);
        else if (si->si_code != CLD_EXITED)
                snprintf(why, sizeof why, "the update job was killed by signal %d (%s)", si->si_status,
                         strsignal(si->si_status));
        else if (!r->have_result)
                snprintf(why, sizeof why, "the update job ended without a result");
        else
                why[0] = '\0';
        if (why[0])
                log_error("Update job (pid %d): %s.", (int) r->pid, why);
        r->ops->finished(&r->result, why[0] ? why : NULL, r->userdata);
        return 0;
}

static int spawn_helper(OmahaRunner *r, const OmahaConfig *c, bool interactive, const OmahaStatus *initial,
                        int status_fd) {
        _cleanup_free_ char *helper = NULL, *root = NULL, *slots = NULL, *pw = NULL, *verity = NULL,
                            *status = NULL, *status_json = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, defaults;
        const char *argv[16];
        size_t n = 0;
        json_t *o;
        int k;

        k = omaha_job_helper_path(&helper);
        if (k < 0)
                return k;
        o = omaha_status_to_json(initial);
        status_json = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!status_json || asprintf(&status, "--status=%s", status_json) < 0 ||
            asprintf(&slots, "--slots=%s", c->slots_address) < 0 ||
            asprintf(&pw, "--payload-writer=%s", c->payload_writer_address) < 0 ||
            asprintf(&verity, "--verity=%s", c->verity_address) < 0 ||
            (c->root && asprintf(&root, "--root=%s", c->root) < 0))
                return -ENOMEM;

        argv[n++] = HELPER_NAME;
        if (root)
                argv[n++] = root;
        argv[n++] = slots;
        argv[n++] = pw;
        argv[n++] = verity;
        if (interactive)
                argv[n++] = "--interactive";
        argv[n++] = status;
        argv[n++] = "--status-fd=3";
        argv[n++] = "check";
        argv[n] = NULL;

        /* The daemon blocks signals for sd-event and ignores SIGPIPE; the helper starts clean. */
        sigemptyset(&none);
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGPIPE);
        sigaddset(&defaults, SIGTERM);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGCHLD);
        if (posix_spawnattr_init(&attr) != 0)
                return -ENOMEM;
        if (posix_spawn_file_actions_init(&fa) != 0) {
                posix_spawnattr_destroy(&attr);
                return -ENOMEM;
        }
        k = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (k == 0)
                k = posix_spawnattr_setsigmask(&attr, &none);
        if (k == 0)
                k = posix_spawnattr_setsigdefault(&attr, &defaults);
        if (k == 0)
                k = posix_spawn_file_actions_adddup2(&fa, status_fd, STATUS_FD);
        if (k == 0)
                k = posix_spawn(&r->pid, helper, &fa, &attr, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (k != 0) {
                r->pid = 0;
                return log_error_errno(k, "Failed to start the update job %s: %m", helper);
        }
        log_debug("Started the update job %s (pid %d).", helper, (int) r->pid);
        return 0;
}

int omaha_runner_start(sd_event *e, const OmahaConfig *c, bool interactive, const OmahaStatus *initial,
                       const OmahaRunnerOps *ops, void *userdata, OmahaRunner **ret) {
        _cleanup_(omaha_runner_freep) OmahaRunner *r = NULL;
        _cleanup_close_ int write_fd = -EBADF;
        int pipefd[2], k;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->ops = ops;
        r->userdata = userdata;
        r->fd = -EBADF;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return log_error_errno(errno, "pipe2() failed: %m");
        r->fd = pipefd[0];
        write_fd = pipefd[1];
        if (fcntl(r->fd, F_SETFL, O_NONBLOCK) < 0)
                return log_error_errno(errno, "fcntl() failed: %m");

        k = spawn_helper(r, c, interactive, initial, write_fd);
        if (k < 0)
                return k;
        write_fd = safe_close(write_fd); /* EOF once the helper is gone */

        k = sd_event_add_io(e, &r->io, r->fd, EPOLLIN, on_io, r);
        if (k >= 0)
                k = sd_event_add_child(e, &r->child, r->pid, WEXITED, on_child, r);
        if (k < 0)
                return log_error_errno(k, "Failed to watch the update job: %m");
        *ret = TAKE_PTR(r);
        return 0;
}
