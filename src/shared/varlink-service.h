/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The start-up every switchyard varlink service shares: an event loop that ends cleanly on SIGTERM and
 * SIGINT, a varlink server with one interface, listening either on --listen=PATH (tests, by hand) or on
 * the sockets systemd passed, exiting when idle, and the event loop itself. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "varlink.h"

typedef struct VarlinkService {
        const VarlinkServerInfo *info;
        const VarlinkInterface *interface;
        void *userdata;            /* handed to the method handlers */
        const char *listen_path;   /* NULL: serve the sockets passed by systemd */
        mode_t mode;               /* of the socket created at listen_path (or default_path) */
        /* With no listen_path and no socket passed by systemd: listen here instead; NULL: that is an
         * error ("No socket passed by systemd; use --listen=PATH to run by hand."). */
        const char *default_path;
        uint64_t idle_usec;        /* exit after this long without a connection; 0: never */
        bool idle_when_listening;  /* also exit when idle with listen_path; else only when socket-activated */
} VarlinkService;

/* Blocks SIGTERM and SIGINT in the calling thread (threads created later inherit that) and makes them end
 * the event loop; returns the thread's default event loop with the server set up and listening. Errors
 * are logged (one line) and returned negative; nothing is returned then. */
int varlink_service_open(const VarlinkService *svc, sd_event **ret_event, VarlinkServer **ret_server);

/* varlink_service_open(), then the event loop until SIGTERM, SIGINT or idle exit; frees both. Returns
 * the loop's exit code (0 when idle or on a signal) or a negative errno, logged. */
int varlink_service_run(const VarlinkService *svc);
