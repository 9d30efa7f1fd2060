/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <jansson.h>

#include "log.h"
#include "omaha-client-ctl.h"
#include "omaha-client-status.h"
#include "varlink.h"

/* A single request (GetStatus, Check, ResetStatus) is answered at once by a healthy daemon. A
 * daemon that fails to start leaves the connection on its socket unanswered: give up then, like
 * update_engine_client's D-Bus call does, instead of hanging. Watching has no timeout. */
#define CTL_CALL_TIMEOUT_USEC (30ULL * 1000 * 1000)

static int connect_daemon(const char *address, VarlinkClient **ret) {
        int r = varlink_client_connect(ret, address);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to omaha-client at %s: %m", address);
        return 0;
}

static int call(const char *address, const char *method, json_t *params, json_t **ret_reply) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        const char *error = NULL;
        json_t *reply = NULL;
        int r;

        r = connect_daemon(address, &c);
        if (r < 0) {
                json_decref(params);
                return r;
        }
        varlink_client_set_timeout(c, CTL_CALL_TIMEOUT_USEC);
        r = varlink_client_call(c, method, params, &reply, &error);
        json_decref(params);
        if (r < 0) {
                json_decref(reply);
                if (r == -ETIMEDOUT)
                        return log_error_errno(r, "%s: omaha-client at %s did not answer within %llu s "
                                               "(is omaha-client.service failing? see journalctl -u omaha-client)",
                                               method, address, CTL_CALL_TIMEOUT_USEC / 1000000);
                if (error)
                        return log_error_errno(r, "%s failed: %s", method, error);
                return log_error_errno(r, "%s failed: %m", method);
        }
        if (ret_reply)
                *ret_reply = reply;
        else
                json_decref(reply);
        return 0;
}

static void print_status(json_t *st, bool json) {
        if (json) {
                json_dumpf(st, stdout, JSON_COMPACT | JSON_SORT_KEYS);
                putchar('\n');
                fflush(stdout);
                return;
        }
        /* update_engine_client -status format, then our additions. */
        printf("LAST_CHECKED_TIME=%" JSON_INTEGER_FORMAT "\nPROGRESS=%f\nCURRENT_OP=%s\nNEW_VERSION=%s\nNEW_SIZE=%" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(st, "last_checked_time")),
               json_real_value(json_object_get(st, "progress")),
               json_string_value(json_object_get(st, "current_operation")) ?: "",
               json_string_value(json_object_get(st, "new_version")) ?: "",
               json_integer_value(json_object_get(st, "new_size")));
        if (json_integer_value(json_object_get(st, "last_error")) != 0)
                printf("LAST_ERROR=%" JSON_INTEGER_FORMAT "\nLAST_ERROR_MESSAGE=%s\n",
                       json_integer_value(json_object_get(st, "last_error")),
                       json_string_value(json_object_get(st, "last_error_message")) ?: "");
        fflush(stdout);
}

int ctl_status(const char *address, bool json) {
        json_t *reply = NULL;
        int r;

        r = call(address, "io.switchyard.Omaha.GetStatus", json_object(), &reply);
        if (r < 0)
                return r;
        print_status(json_object_get(reply, "status"), json);
        json_decref(reply);
        return 0;
}

int ctl_reset_status(const char *address) {
        return call(address, "io.switchyard.Omaha.ResetStatus", json_object(), NULL);
}

typedef struct WatchState {
        bool json;
        bool tty;
        bool stop_when_settled; /* for check --wait: stop at IDLE or UPDATED_NEED_REBOOT after a change */
        json_int_t job;         /* check --wait: the job to wait for */
        char last_op[64];
        json_t *last;
} WatchState;

static bool op_settled(const char *op) {
        return streq(op, "UPDATE_STATUS_IDLE") || streq(op, "UPDATE_STATUS_UPDATED_NEED_REBOOT");
}

static void draw_bar(const char *op, double progress) {
        const int width = 40;
        int filled = (int) (progress * width + 0.5);

        filled = MAX(0, MIN(width, filled));
        fprintf(stdout, "\r%-36s [", op);
        for (int i = 0; i < width; i++)
                fputc(i < filled ? '#' : '.', stdout);
        fprintf(stdout, "] %5.1f%%", progress * 100.0);
        fflush(stdout);
}

static int on_watch_reply(VarlinkClient *c, json_t *reply, bool continues, void *userdata) {
        WatchState *w = userdata;
        json_t *st = json_object_get(reply, "status");
        const char *op;
        bool changed;

        if (!st)
                return 0;
        op = json_string_value(json_object_get(st, "current_operation")) ?: "";
        changed = !streq(op, w->last_op);
        snprintf(w->last_op, sizeof w->last_op, "%s", op);
        json_decref(w->last);
        w->last = json_incref(st);

        if (w->json)
                print_status(st, true);
        else if (w->tty) {
                if (changed)
                        fputc('\n', stdout);
                draw_bar(op, json_real_value(json_object_get(st, "progress")));
        } else if (changed)
                printf("%s\n", op);

        if (w->stop_when_settled && op_settled(op) &&
            json_integer_value(json_object_get(st, "jobs_finished")) >= w->job)
                return -ECANCELED; /* stops the loop; not an error */
        return 0;
}

static int watch(const char *address, WatchState *w) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        const char *error = NULL;
        int r;

        r = connect_daemon(address, &c);
        if (r < 0)
                return r;
        json_t *params = json_object();
        r = varlink_client_call_more(c, "io.switchyard.Omaha.WatchStatus", params, on_watch_reply, w, &error, NULL);
        json_decref(params);
        if (r == -ECANCELED)
                r = 0;
        if (w->tty && !w->json)
                fputc('\n', stdout);
        if (r < 0 && error)
                return log_error_errno(r, "WatchStatus failed: %s", error);
        if (r < 0)
                return log_error_errno(r, "WatchStatus failed: %m");
        return 0;
}

int ctl_watch(const char *address, bool json) {
        WatchState w = { .json = json, .tty = isatty(STDOUT_FILENO) };
        int r = watch(address, &w);
        json_decref(w.last);
        return r;
}

int ctl_check(const char *address, bool wait, bool json) {
        json_t *reply = NULL;
        json_int_t job;
        bool started;
        int r;

        r = call(address, "io.switchyard.Omaha.Check", json_object(), &reply);
        if (r < 0)
                return r;
        started = json_is_true(json_object_get(reply, "started"));
        job = json_integer_value(json_object_get(reply, "job"));
        json_decref(reply);
        if (!started)
                log_info("A check or an update is already running.");
        if (!wait)
                return 0;

        WatchState w = { .json = json, .tty = isatty(STDOUT_FILENO), .stop_when_settled = true, .job = job };
        r = watch(address, &w);
        if (r >= 0 && w.last && !streq(w.last_op, "UPDATE_STATUS_UPDATED_NEED_REBOOT")) {
                json_int_t code = json_integer_value(json_object_get(w.last, "last_error"));
                const char *msg = json_string_value(json_object_get(w.last, "last_error_message")) ?: "";

                /* Refusing or deferring an offer by policy (35, 36, 40) is a decision, not a failure. */
                if (code == 35 || code == 36 || code == 40)
                        log_notice("Not updating (error %" JSON_INTEGER_FORMAT "): %s", code, msg);
                else if (code != 0) {
                        log_error("Update failed: error %" JSON_INTEGER_FORMAT ": %s", code, msg);
                        r = -EIO;
                }
        }
        json_decref(w.last);
        return r;
}
