/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "omaha-client-daemon.h"
#include "omaha-client-dbus.h"
#include "omaha-client-job.h"
#include "omaha-client-schedule.h"
#include "omaha-client-varlink.h"
#include "varlink-service.h"
#include "varlink.h"

#define WATCHERS_MAX 64

typedef struct Daemon {
        OmahaConfig *config;
        sd_event *event;
        VarlinkServer *server;
        OmahaDBus *dbus;
        sd_event_source *wake_source, *timer;
        StatusBox box;

        pthread_t worker;
        bool worker_running;
        bool worker_done;          /* set by the worker (under box.lock) when it returns */
        bool worker_interactive;
        OmahaJobResult result;

        uint64_t last_interval;    /* check backoff between checks */
        VarlinkCall *watchers[WATCHERS_MAX];
        size_t n_watchers;
        OmahaStatus last_sent;
} Daemon;

static void *worker_main(void *userdata) {
        Daemon *d = userdata;
        OmahaJobResult result;

        omaha_job_run(d->config, &d->box, d->worker_interactive, &result);
        pthread_mutex_lock(&d->box.lock);
        d->result = result;
        d->worker_done = true;
        d->box.status.jobs_finished++;
        pthread_mutex_unlock(&d->box.lock);
        status_box_wake(&d->box);
        return NULL;
}

static int daemon_start_job(Daemon *d, bool interactive) {
        int r;

        if (d->worker_running)
                return 0;
        d->worker_interactive = interactive;
        d->worker_done = false;
        pthread_mutex_lock(&d->box.lock);
        d->box.status.jobs_started++;
        d->box.status.last_error = 0;
        d->box.status.last_error_message[0] = '\0';
        d->box.status.next_check_usec = 0;
        pthread_mutex_unlock(&d->box.lock);
        r = pthread_create(&d->worker, NULL, worker_main, d);
        if (r != 0) {
                pthread_mutex_lock(&d->box.lock);
                d->box.status.jobs_finished++;
                pthread_mutex_unlock(&d->box.lock);
                return log_error_errno(r, "Failed to start the update worker: %m");
        }
        d->worker_running = true;
        (void) sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
        status_box_wake(&d->box);
        return 1;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        (void) daemon_start_job(d, false);
        return 0;
}

static void daemon_schedule(Daemon *d, uint64_t delay_sec) {
        uint64_t now;
        struct timespec ts;

        (void) sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(d->timer, now + delay_sec * UINT64_C(1000000));
        (void) sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
        clock_gettime(CLOCK_REALTIME, &ts);
        pthread_mutex_lock(&d->box.lock);
        d->box.status.next_check_usec = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u +
                                        delay_sec * UINT64_C(1000000);
        pthread_mutex_unlock(&d->box.lock);
        log_info("Next update check in %" PRIu64 " s.", delay_sec);
        status_box_wake(&d->box);
}

static void daemon_job_finished(Daemon *d) {
        OmahaCheckOutcome o;
        uint64_t interval, fuzz;

        (void) pthread_join(d->worker, NULL);
        d->worker_running = false;
        o = (OmahaCheckOutcome) { .http_status = d->result.http_status, .poll_interval = d->result.poll_interval };
        omaha_next_interval(d->config, &o, &d->last_interval, &interval, &fuzz);
        if (d->config->dev_mode)
                log_info("Periodic checks are off on a developer image (/root/.dev_mode).");
        else {
                log_info("Check interval %" PRIu64 " s, fuzz %" PRIu64 " s (last HTTP status %ld).", interval, fuzz,
                         d->result.http_status);
                daemon_schedule(d, omaha_fuzz(interval, fuzz, omaha_random_u64()));
        }
}

static void daemon_notify_watchers(Daemon *d) {
        OmahaStatus st;

        status_box_snapshot(&d->box, &st);
        if (memcmp(&st, &d->last_sent, sizeof st) == 0)
                return;
        d->last_sent = st;
        omaha_dbus_status_changed(d->dbus, &st, false);
        for (size_t i = 0; i < d->n_watchers;) {
                json_t *o = omaha_status_to_json(&st);
                int r = o ? varlink_call_notify(d->watchers[i], json_pack("{s:o}", "status", o)) : -ENOMEM;
                if (r < 0) {
                        varlink_call_unref(d->watchers[i]);
                        d->watchers[i] = d->watchers[--d->n_watchers];
                        continue;
                }
                i++;
        }
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Daemon *d = userdata;
        uint64_t v;
        bool done;

        (void) !read(fd, &v, sizeof v);
        pthread_mutex_lock(&d->box.lock);
        done = d->worker_running && d->worker_done;
        pthread_mutex_unlock(&d->box.lock);
        if (done)
                daemon_job_finished(d);
        daemon_notify_watchers(d);
        return 0;
}

/* ---- varlink methods ---- */

static json_t *status_reply(Daemon *d) {
        OmahaStatus st;
        status_box_snapshot(&d->box, &st);
        return json_pack("{s:o}", "status", omaha_status_to_json(&st));
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
        OmahaStatus st;
        int r;

        r = daemon_start_job(d, true);
        if (r < 0)
                return varlink_call_error_errno(call, r);
        status_box_snapshot(&d->box, &st);
        return varlink_call_reply(call, json_pack("{s:b, s:I}", "started", r > 0, "job", (json_int_t) st.jobs_started));
}

static int method_reset_status(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Daemon *d = varlink_call_get_userdata(call);
        OmahaStatus st;
        int r;

        status_box_snapshot(&d->box, &st);
        if (d->worker_running || (st.code != OMAHA_STATUS_IDLE && st.code != OMAHA_STATUS_UPDATED_NEED_REBOOT))
                return varlink_call_error(call, "io.switchyard.Omaha.Busy",
                                          json_pack("{s:s}", "current_operation", omaha_status_to_string(st.code)));
        r = omaha_job_reset(d->config, &d->box);
        if (r < 0)
                return varlink_call_error_errno(call, r);
        return varlink_call_reply(call, NULL);
}

static void dbus_attempt_update(void *userdata) {
        Daemon *d = userdata;
        OmahaStatus st;

        /* update_engine: only from IDLE, silently ignored otherwise. */
        status_box_snapshot(&d->box, &st);
        if (st.code == OMAHA_STATUS_IDLE)
                (void) daemon_start_job(d, true);
}

static int dbus_reset_status(void *userdata) {
        Daemon *d = userdata;
        OmahaStatus st;

        status_box_snapshot(&d->box, &st);
        if (d->worker_running || (st.code != OMAHA_STATUS_IDLE && st.code != OMAHA_STATUS_UPDATED_NEED_REBOOT))
                return -EBUSY;
        return omaha_job_reset(d->config, &d->box);
}

static void dbus_get_status(void *userdata, OmahaStatus *ret) {
        Daemon *d = userdata;
        status_box_snapshot(&d->box, ret);
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
        if (d->worker_running) {
                /* The worker cannot be interrupted safely mid-write; a restart resumes from the checkpoint. */
                log_info("Waiting for the running check to end.");
                (void) pthread_join(d->worker, NULL);
        }
        for (size_t i = 0; i < d->n_watchers; i++)
                varlink_call_unref(d->watchers[i]);
        d->dbus = omaha_dbus_free(d->dbus);
        d->server = varlink_server_free(d->server);
        d->wake_source = sd_event_source_unref(d->wake_source);
        d->timer = sd_event_source_unref(d->timer);
        d->event = sd_event_unref(d->event);
        d->box.wake_fd = safe_close(d->box.wake_fd);
        pthread_mutex_destroy(&d->box.lock);
}

int daemon_run(OmahaConfig *c, const char *listen_path, const char *dbus_address) {
        Daemon d = { .config = c, .box.wake_fd = -EBADF };
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
        int r;

        http_global_init();
        (void) signal(SIGPIPE, SIG_IGN);
        pthread_mutex_init(&d.box.lock, NULL);
        omaha_status_init(&d.box.status);

        r = varlink_service_open(&svc, &d.event, &d.server);
        if (r < 0) {
                daemon_done(&d);
                return r;
        }

        d.box.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d.box.wake_fd < 0) {
                r = log_error_errno(errno, "eventfd() failed: %m");
                goto finish;
        }
        r = sd_event_add_io(d.event, &d.wake_source, d.box.wake_fd, EPOLLIN, on_wake, &d);
        if (r < 0)
                goto finish;
        r = sd_event_add_time(d.event, &d.timer, CLOCK_MONOTONIC, UINT64_MAX, 100000, on_timer, &d);
        if (r < 0)
                goto finish;

        if (dbus_address && !streq(dbus_address, "no")) {
                r = omaha_dbus_new(&d.dbus, d.event, dbus_address, &dbus_ops, &d);
                if (r < 0)
                        log_warning("Serving without the com.coreos.update1 D-Bus API.");
                else {
                        OmahaStatus st;
                        status_box_snapshot(&d.box, &st);
                        omaha_dbus_status_changed(d.dbus, &st, true); /* once at start, as update_engine */
                }
        }

        r = omaha_job_restore(c, &d.box);
        if (r < 0)
                log_warning_errno(r, "Could not read the saved state: %m");
        if (c->server_disabled)
                /* Checks stay scheduled: update.conf is read again at each one. */
                log_info("SERVER=%s: update checks are disabled.", c->server);
        if (c->dev_mode)
                log_info("Developer image (/root/.dev_mode): no periodic checks.");
        else
                daemon_schedule(&d, omaha_first_check_delay(c, omaha_random_u64()));

        log_info("omaha-client %s running %s (%s, group %s, server %s).", SWITCHYARD_VERSION, c->version, c->board,
                 c->group, c->server);
        r = sd_event_loop(d.event);
finish:
        if (r < 0)
                log_error_errno(r, "omaha-client daemon failed: %m");
        daemon_done(&d);
        return r;
}
