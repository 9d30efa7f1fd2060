/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "log.h"
#include "varlink-service.h"

static int service_listen(const VarlinkService *svc, VarlinkServer *server) {
        const char *path = svc->listen_path;
        bool activated = false;
        int r;

        if (!path) {
                r = varlink_server_listen_fds(server);
                if (r < 0)
                        return log_error_errno(r, "Failed to take the sockets passed by systemd: %m");
                activated = r > 0;
                if (!activated && !svc->default_path)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADF),
                                               "No socket passed by systemd; use --listen=PATH to run by hand.");
                path = activated ? NULL : svc->default_path;
        }
        if (path) {
                r = varlink_server_listen_address(server, path, svc->mode);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on %s: %m", path);
        }
        if (svc->idle_usec > 0 && (activated || svc->idle_when_listening)) {
                r = varlink_server_set_exit_on_idle(server, svc->idle_usec);
                if (r < 0)
                        return log_error_errno(r, "Failed to set the idle timeout: %m");
        }
        return 0;
}

int varlink_service_open(const VarlinkService *svc, sd_event **ret_event, VarlinkServer **ret_server) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(varlink_server_freep) VarlinkServer *server = NULL;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        r = pthread_sigmask(SIG_BLOCK, &mask, NULL);
        if (r != 0)
                return log_error_errno(r, "Failed to block SIGTERM/SIGINT: %m");
        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate an event loop: %m");
        r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGTERM/SIGINT: %m");
        r = varlink_server_new(&server, event, svc->info, svc->userdata);
        if (r < 0)
                return log_error_errno(r, "Failed to create the varlink server: %m");
        r = varlink_server_add_interface(server, svc->interface);
        if (r < 0)
                return log_error_errno(r, "Failed to add %s: %m", svc->interface->name);
        r = service_listen(svc, server);
        if (r < 0)
                return r;
        *ret_event = TAKE_PTR(event);
        *ret_server = TAKE_PTR(server);
        return 0;
}

int varlink_service_run(const VarlinkService *svc) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(varlink_server_freep) VarlinkServer *server = NULL;
        int r;

        r = varlink_service_open(svc, &event, &server);
        if (r < 0)
                return r;
        r = sd_event_loop(event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
