/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <signal.h>
#include <time.h>

#include "log.h"
#include "omaha-client-daemon.h"
#include "omaha-client-dbus.h"
#include "omaha-client-error.h"
#include "omaha-client-marker.h"
#include "omaha-client-runner.h"
#include "omaha-client-schedule.h"
#include "omaha-client-varlink.h"
#include "varlink-service.h"
#include "varlink.h"

#define WATCHERS_MAX 64

/* The daemon holds the state and serves the APIs; each check runs in a job helper process (see
 * omaha-client-runner.h), so this process neither talks to the network nor parses what comes from it. */
typedef struct Daemon {
        OmahaConfig *config;
        sd_event *event;
        VarlinkServer *server;
        OmahaDBus *dbus;
        sd_event_source *timer;
        OmahaStatus status;
        OmahaRunner *job;          /* the running check, NULL if none */

        uint64_t last_interval;    /* check backoff between checks */
        VarlinkCall *watchers[WATCHERS_MAX];
        size_t n_watchers;
        OmahaStatus last_sent;
} Daemon;

static void daemon_notify_watchers(Daemon *d) {
        if (memcmp(&d->status, &d->last_sent, sizeof d->status) == 0)
                return;
        d->last_sent = d->status;
        omaha_dbus_status_changed(d->dbus, &d->status, false);
        for (size_t i = 0; i < d->n_watchers;) {
                json_t *o = omaha_status_to_json(&d->status);
                int r = o ? varlink_call_notify(d->watchers[i], json_pack("{s:o}", "status", o)) : -ENOMEM;
                if (r < 0) {
                        varlink_call_unref(d->watchers[i]);
                        d->watchers[i] = d->watchers[--d->n_watchers];
                        continue;
                }
                i++;
        }
}

static void daemon_schedule(Daemon *d, uint64_t delay_sec) {
        uint64_t now;
        struct timespec ts;

        (void) sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(d->timer, now + delay_sec * UINT64_C(1000000));
        (void) sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
        clock_gettime(CLOCK_REALTIME, &ts);
        d->status.next_check_usec = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u +
                                    delay_sec * UINT64_C(1000000);
        log_info("Next update check in %" PRIu64 " s.", delay_sec);
}

/* A status line of the job: it owns everything but the daemon's own bookkeeping. */
static void on_job_status(const OmahaStatus *st, void *userdata) {
        Daemon *d = userdata;
        OmahaStatus s = *st;

        s.next_check_usec = d->status.next_check_usec;
        s.jobs_started = d->status.jobs_started;
        s.jobs_finished = d->status.jobs_finished;
        d->status = s;
        daemon_notify_watchers(d);
}

static void daemon_job_failed(Daemon *d, const char *error) {
        /* Where the job would have settled had it failed by itself (see job_fail()). */
        bool staged = omaha_marker_exists(d->config);

        d->status.last_error = OMAHA_ERROR_GENERIC;
        snprintf(d->status.last_error_message, sizeof d->status.last_error_message, "%s", error);
        d->status.code = staged ? OMAHA_STATUS_UPDATED_NEED_REBOOT : OMAHA_STATUS_IDLE;
        d->status.progress = 0;
        d->status.bytes_done = d->status.bytes_total = 0;
        if (!staged) {
                strcpy(d->status.new_version, "0.0.0");
                d->status.new_size = 0;
        }
}

static void on_job_finished(const OmahaJobResult *result, const char *error, void *userdata) {
        Daemon *d = userdata;
        OmahaCheckOutcome o = { .http_status = result->http_status, .poll_interval = result->poll_interval };
        uint64_t interval, fuzz;

        if (error)
                daemon_job_failed(d, error);
        d->job = omaha_runner_free(d->job); /* result and error point into it */
        d->status.jobs_finished++;
        omaha_next_interval(d->config, &o, &d->last_interval, &interval, &fuzz);
        if (d->config->dev_mode)
                log_info("Periodic checks are off on a developer image (/root/.dev_mode).");
        else {
                log_info("Check interval %" PRIu64 " s, fuzz %" PRIu64 " s (last HTTP status %ld).", interval, fuzz,
                         o.http_status);
                daemon_schedule(d, omaha_fuzz(interval, fuzz, omaha_random_u64()));
        }
        daemon_notify_watchers(d);
}

static const OmahaRunnerOps job_ops = {
        .status = on_job_status,
        .finished = on_job_finished,
};

static int daemon_start_job(Daemon *d, bool interactive) {
        int r;

        if (d->job)
                return 0;
        d->status.jobs_started++;
        d->status.last_error = 0;
        d->status.last_error_message[0] = '\0';
        d->status.next_check_usec = 0;
        (void) sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
        r = omaha_runner_start(d->event, d->config, interactive, &d->status, &job_ops, d, &d->job);
        if (r < 0) {
                char msg[128];
                snprintf(msg, sizeof msg, "cannot start the update job: %s", strerror(-r));
                on_job_finished(&(OmahaJobResult) {}, msg, d);
                return r;
        }
        daemon_notify_watchers(d);
        return 1;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        (void) daemon_start_job(d, false);
        return 0;
}

/* ---- varlink methods ---- */

static json_t *status_reply(Daemon *d) {
        return json_pack("{s:o}", "status", omaha_status_to_json(&d->status));
}

static int method_get_status(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Daemon *d = varlink_call_get_userdata(call);
        return varlink_call_reply(call, status_reply(d));
}

static void watcher_gone(VarlinkCall *call, void *userdata) {
        Daemon *d = userdata;

        for (size_t i = 0; i < d->n_watchers; i++)
                if (d->watchers[i] == call) {
                        varlink_call_unref(call);
                        d->watchers[i] = d->watchers[--d->n_watchers];
                        return;
                }
}

static int method_watch_status(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Daemon *d = varlink_call_get_userdata(call);

        if (!(flags & VARLINK_CALL_MORE))
                return varlink_call_error(call, VARLINK_ERROR_EXPECTED_MORE, NULL);
        if (d->n_watchers >= WATCHERS_MAX)
                return varlink_call_error(call, "io.switchyard.Omaha.Busy",
                                          json_pack("{s:s}", "current_operation", "too many watchers"));
        varlink_call_notify(call, status_reply(d));
        d->watchers[d->n_watchers++] = varlink_call_ref(call);
        varlink_call_set_disconnect_handler(call, watcher_gone, d);
        return 0;
}

static int method_check(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Daemon *d = varlink_call_get_userdata(call);
        int r;

        r = daemon_start_job(d, true);
        if (r < 0)
                return varlink_call_error_errno(call, r);
        return varlink_call_reply(call, json_pack("{s:b, s:I}", "started", r > 0, "job",
                                                  (json_int_t) d->status.jobs_started));
}

static int method_reset_status(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Daemon *d = varlink_call_get_userdata(call);
        OmahaStatusCode code = d->status.code;
        int r;

        if (d->job || (code != OMAHA_STATUS_IDLE && code != OMAHA_STATUS_UPDATED_NEED_REBOOT))
                return varlink_call_error(call, "io.switchyard.Omaha.Busy",
                                          json_pack("{s:s}", "current_operation", omaha_status_to_string(code)));
        r = omaha_marker_reset(d->config, &d->status);
        daemon_notify_watchers(d);
        if (r < 0)
                return varlink_call_error_errno(call, r);
        return varlink_call_reply(call, NULL);
}

static void dbus_attempt_update(void *userdata) {
        Daemon *d = userdata;

        /* update_engine: only from IDLE, silently ignored otherwise. */
        if (d->status.code == OMAHA_STATUS_IDLE)
                (void) daemon_start_job(d, true);
}

static int dbus_reset_status(void *userdata) {
        Daemon *d = userdata;
        int r;

        if (d->job || (d->status.code != OMAHA_STATUS_IDLE && d->status.code != OMAHA_STATUS_UPDATED_NEED_REBOOT))
                return -EBUSY;
        r = omaha_marker_reset(d->config, &d->status);
        daemon_notify_watchers(d);
        return r;
}

static void dbus_get_status(void *userdata, OmahaStatus *ret) {
        Daemon *d = userdata;
        *ret = d->status;
}

static const OmahaDBusOps dbus_ops = {
        .attempt_update = dbus_attempt_update,
        .reset_status = dbus_reset_status,
        .get_status = dbus_get_status,
};

static const VarlinkMethod omaha_methods[] = {
        { "GetStatus", method_get_status },
        { "WatchStatus", method_watch_status },
        { "Check", method_check },
        { "ResetStatus", method_reset_status },
};

static const VarlinkInterface omaha_interface = {
        .name = "io.switchyard.Omaha",
        .description = omaha_varlink_idl,
        .methods = omaha_methods,
        .n_methods = ELEMENTSOF(omaha_methods),
};

static void daemon_done(Daemon *d) {
        /* A running check is stopped; the next check resumes from payload-writer's checkpoint. */
        d->job = omaha_runner_free(d->job);
        for (size_t i = 0; i < d->n_watchers; i++)
                varlink_call_unref(d->watchers[i]);
        d->dbus = omaha_dbus_free(d->dbus);
        d->server = varlink_server_free(d->server);
        d->timer = sd_event_source_unref(d->timer);
        d->event = sd_event_unref(d->event);
}

int daemon_run(OmahaConfig *c, const char *listen_path, const char *dbus_address) {
        Daemon d = { .config = c };
        static const VarlinkServerInfo info = {
                .vendor = "switchyard",
                .product = "omaha-client",
                .version = SWITCHYARD_VERSION,
                .url = "https://github.com/switchyard",
        };
        const VarlinkService svc = {
                .info = &info,
                .interface = &omaha_interface,
                .userdata = &d,
                .listen_path = listen_path,
                .mode = 0660,
                .default_path = OMAHA_DEFAULT_ADDRESS, /* started by hand without --listen */
        };
        sigset_t chld;
        int r;

        (void) signal(SIGPIPE, SIG_IGN);
        /* sd_event_add_child() wants SIGCHLD blocked; the job helper gets a clean mask. */
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        (void) sigprocmask(SIG_BLOCK, &chld, NULL);
        omaha_status_init(&d.status);

        r = varlink_service_open(&svc, &d.event, &d.server);
        if (r < 0) {
                daemon_done(&d);
                return r;
        }

        r = sd_event_add_time(d.event, &d.timer, CLOCK_MONOTONIC, UINT64_MAX, 100000, on_timer, &d);
        if (r < 0)
                goto finish;

        if (dbus_address && !streq(dbus_address, "no")) {
                r = omaha_dbus_new(&d.dbus, d.event, dbus_address, &dbus_ops, &d);
                if (r < 0)
                        log_warning("Serving without the com.coreos.update1 D-Bus API.");
                else
                        omaha_dbus_status_changed(d.dbus, &d.status, true); /* once at start, as update_engine */
        }

        r = omaha_marker_restore(c, &d.status);
        if (r < 0)
                log_warning_errno(r, "Could not read the saved state: %m");
        if (c->server_disabled)
                /* Checks stay scheduled: update.conf is read again at each one. */
                log_info("SERVER=%s: update checks are disabled.", c->server);
        if (c->dev_mode)
                log_info("Developer image (/root/.dev_mode): no periodic checks.");
        else
                daemon_schedule(&d, omaha_first_check_delay(c, omaha_random_u64()));

        daemon_notify_watchers(&d);

        log_info("omaha-client %s running %s (%s, group %s, server %s).", SWITCHYARD_VERSION, c->version, c->board,
                 c->group, c->server);
        r = sd_event_loop(d.event);
finish:
        if (r < 0)
                log_error_errno(r, "omaha-client daemon failed: %m");
        daemon_done(&d);
        return r;
}
