/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"
#include "varlink-message.h"
#include "time-util.h"
#include "varlink.h"

#define READ_CHUNK (64u * 1024u)

static const char service_idl[] =
        "# Every varlink service offers this interface: it tells who the service is and which\n"
        "# interfaces it offers, and hands out each interface's description.\n"
        "interface org.varlink.service\n"
        "\n"
        "# The service's vendor, product, version and URL, and the names of its interfaces.\n"
        "method GetInfo() -> (\n"
        "  vendor: string,\n"
        "  product: string,\n"
        "  version: string,\n"
        "  url: string,\n"
        "  interfaces: []string\n"
        ")\n"
        "\n"
        "# The IDL text of one of the service's interfaces.\n"
        "method GetInterfaceDescription(interface: string) -> (description: string)\n"
        "\n"
        "# No interface of that name is offered here.\n"
        "error InterfaceNotFound (interface: string)\n"
        "\n"
        "# The interface has no method of that name.\n"
        "error MethodNotFound (method: string)\n"
        "\n"
        "# The interface declares the method, but this service does not implement it.\n"
        "error MethodNotImplemented (method: string)\n"
        "\n"
        "# A parameter is missing, of the wrong type, or has a value that is not accepted.\n"
        "error InvalidParameter (parameter: string)\n"
        "\n"
        "# The caller may not do this.\n"
        "error PermissionDenied ()\n"
        "\n"
        "# The method streams its replies and must be called with \"more\".\n"
        "error ExpectedMore ()\n";

typedef struct ServerInterface {
        const VarlinkInterface *iface;
        char **idl_methods; /* method names declared by the IDL */
} ServerInterface;

typedef struct Listener {
        int fd;
        bool owned; /* bound by us (vs. passed by systemd) */
        sd_event_source *source;
} Listener;

typedef struct Connection Connection;

struct VarlinkServer {
        sd_event *event;
        char *vendor, *product, *version, *url;
        void *userdata;

        ServerInterface *interfaces;
        size_t n_interfaces;

        Listener *listeners;
        size_t n_listeners;
        bool accept_paused;

        Connection *connections;
        size_t n_connections;

        uint64_t idle_usec;
        sd_event_source *idle_source;

        size_t message_max;
};

struct Connection {
        unsigned n_ref;
        VarlinkServer *server; /* NULL once the connection left the server's list */
        Connection *prev, *next;

        int fd;
        sd_event_source *io_source, *defer_source;
        VarlinkInput in;
        VarlinkOutput out;

        VarlinkCall *current; /* the call being answered; later messages wait until it is done */
        bool read_eof, dead;

        struct ucred ucred;
        bool have_ucred;
};

struct VarlinkCall {
        unsigned n_ref;
        Connection *conn;
        char *method;
        json_t *parameters;
        VarlinkCallFlags flags;

        int *fds;
        size_t n_fds;
        int out_fds[VARLINK_FDS_MAX];
        size_t n_out_fds;

        bool done;         /* final reply sent (or dropped, for oneway) */
        bool disconnected; /* the peer left first */
        void (*disconnect_handler)(VarlinkCall *c, void *ud);
        void *disconnect_userdata;
};

static void connection_process(Connection *c, uint32_t revents);
static void connection_disconnect(Connection *c, int error, const char *why);
static int server_service_get_info(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *ud);
static int server_service_get_description(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags,
                                          void *ud);

static const VarlinkMethod service_methods[] = {
        { "GetInfo", server_service_get_info },
        { "GetInterfaceDescription", server_service_get_description },
};

static const VarlinkInterface service_interface = {
        .name = "org.varlink.service",
        .description = service_idl,
        .methods = service_methods,
        .n_methods = ELEMENTSOF(service_methods),
};

/* ---- connections ---- */

static Connection *connection_ref(Connection *c) {
        c->n_ref++;
        return c;
}

static Connection *connection_unref(Connection *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        sd_event_source_disable_unref(c->io_source);
        sd_event_source_disable_unref(c->defer_source);
        safe_close(c->fd);
        varlink_input_done(&c->in);
        varlink_output_done(&c->out);
        return mfree(c);
}

static void server_update_idle(VarlinkServer *s) {
        if (!s->idle_source)
                return;
        if (s->idle_usec == 0 || s->n_connections > 0) {
                (void) sd_event_source_set_enabled(s->idle_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time_relative(s->idle_source, s->idle_usec);
        (void) sd_event_source_set_enabled(s->idle_source, SD_EVENT_ONESHOT);
}

static void server_resume_accept(VarlinkServer *s) {
        if (!s->accept_paused)
                return;
        s->accept_paused = false;
        for (size_t i = 0; i < s->n_listeners; i++)
                (void) sd_event_source_set_enabled(s->listeners[i].source, SD_EVENT_ON);
}

/* Removes the connection from the server; safe to call from any event callback of the server. */
static void connection_disconnect(Connection *c, int error, const char *why) {
        VarlinkServer *s = c->server;
        VarlinkCall *call;

        if (c->dead)
                return;
        c->dead = true;
        if (why)
                log_full_errno(error ? LOG_WARNING : LOG_DEBUG, error, "varlink: dropping client (pid %d): %s",
                               c->have_ucred ? (int) c->ucred.pid : -1, why);

        /* Replies to the calls before a protocol violation are worth a last try. */
        if (c->fd >= 0 && !varlink_output_empty(&c->out))
                (void) varlink_output_flush(&c->out, c->fd);

        c->io_source = sd_event_source_disable_unref(c->io_source);
        c->defer_source = sd_event_source_disable_unref(c->defer_source);
        c->fd = safe_close(c->fd);
        varlink_input_done(&c->in);
        varlink_output_done(&c->out);

        if (s) {
                if (c->prev)
                        c->prev->next = c->next;
                else
                        s->connections = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                c->prev = c->next = NULL;
                c->server = NULL;
                s->n_connections--;
                server_resume_accept(s);
                server_update_idle(s);
        }

        call = TAKE_PTR(c->current);
        if (call) {
                call->disconnected = true;
                if (call->disconnect_handler)
                        call->disconnect_handler(call, call->disconnect_userdata);
                varlink_call_unref(call);
        }
        /* The server's reference; calls still held elsewhere keep the struct alive. */
        connection_unref(c);
}

static void connection_schedule(Connection *c) {
        if (c->defer_source)
                (void) sd_event_source_set_enabled(c->defer_source, SD_EVENT_ONESHOT);
}

static bool connection_can_read(Connection *c) {
        return !c->read_eof && varlink_input_pending(&c->in) <= c->server->message_max;
}

static void connection_update_events(Connection *c) {
        uint32_t events = 0;

        if (connection_can_read(c))
                events |= EPOLLIN;
        if (!varlink_output_empty(&c->out))
                events |= EPOLLOUT;
        (void) sd_event_source_set_io_events(c->io_source, events);
}

static VarlinkCall *call_new(Connection *conn, const VarlinkCallMessage *m, int *fds, size_t n_fds) {
        VarlinkCall *call = calloc(1, sizeof(*call));

        if (!call)
                return NULL;
        call->n_ref = 1;
        call->method = strdup(m->method);
        call->parameters = m->parameters ? json_incref(m->parameters) : json_object();
        if (!call->method || !call->parameters) {
                free(call->method);
                json_decref(call->parameters);
                return mfree(call);
        }
        call->conn = connection_ref(conn);
        call->flags = (m->more ? VARLINK_CALL_MORE : 0) | (m->oneway ? VARLINK_CALL_ONEWAY : 0);
        call->fds = fds;
        call->n_fds = n_fds;
        return call;
}

static const ServerInterface *server_find_interface(VarlinkServer *s, const char *name) {
        for (size_t i = 0; i < s->n_interfaces; i++)
                if (streq(s->interfaces[i].iface->name, name))
                        return &s->interfaces[i];
        return NULL;
}

static bool strv_contains(char **l, const char *s) {
        for (char **p = l; p && *p; p++)
                if (streq(*p, s))
                        return true;
        return false;
}

static void call_dispatch(VarlinkServer *s, VarlinkCall *call) {
        _cleanup_free_ char *iface_name = NULL;
        const char *member;
        const ServerInterface *si;
        const VarlinkMethod *method = NULL;
        int r;

        r = varlink_split_method(call->method, &iface_name, &member);
        if (r == -ENOMEM) {
                (void) varlink_call_error_errno(call, r);
                return;
        }
        if (r < 0) {
                (void) varlink_call_error(call, VARLINK_ERROR_METHOD_NOT_FOUND,
                                          json_pack("{s:s}", "method", call->method));
                return;
        }
        si = server_find_interface(s, iface_name);
        if (!si) {
                (void) varlink_call_error(call, VARLINK_ERROR_INTERFACE_NOT_FOUND,
                                          json_pack("{s:s}", "interface", iface_name));
                return;
        }
        if (!strv_contains(si->idl_methods, member)) {
                (void) varlink_call_error(call, VARLINK_ERROR_METHOD_NOT_FOUND,
                                          json_pack("{s:s}", "method", call->method));
                return;
        }
        for (size_t i = 0; i < si->iface->n_methods; i++)
                if (streq(si->iface->methods[i].name, member)) {
                        method = &si->iface->methods[i];
                        break;
                }
        if (!method || !method->handler) {
                (void) varlink_call_error(call, VARLINK_ERROR_METHOD_NOT_IMPLEMENTED,
                                          json_pack("{s:s}", "method", call->method));
                return;
        }

        r = method->handler(call, call->parameters, call->flags, s->userdata);
        if (r < 0 && !call->done && !call->disconnected) {
                log_debug_errno(r, "varlink: %s failed: %m", call->method);
                (void) varlink_call_error_errno(call, r);
        }
}

/* Handles one complete message; the connection is not dead on entry. */
static void connection_handle_message(Connection *c, json_t *m, int *fds, size_t n_fds) {
        VarlinkServer *s = c->server;
        VarlinkCallMessage cm;
        const char *why = NULL;
        VarlinkCall *call;
        int r;

        r = varlink_parse_call(m, &cm, &why);
        if (r >= 0 && cm.upgrade) {
                r = -EBADMSG;
                why = "protocol upgrades are not supported";
        }
        if (r < 0) {
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                free(fds);
                connection_disconnect(c, r, why);
                return;
        }

        call = call_new(c, &cm, fds, n_fds);
        if (!call) {
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                free(fds);
                connection_disconnect(c, ENOMEM, "out of memory");
                return;
        }
        if (!cm.oneway)
                c->current = varlink_call_ref(call);
        call_dispatch(s, call);
        if (cm.oneway)
                call->done = true;
        varlink_call_unref(call);
}

static void connection_process_input(Connection *c) {
        while (!c->dead && !c->current) {
                _cleanup_free_ int *fds = NULL;
                size_t n_fds = 0;
                const char *why = NULL;
                json_t *m = NULL;
                int r;

                r = varlink_input_next(&c->in, c->server->message_max, &m, &fds, &n_fds, &why);
                if (r == 0)
                        return;
                if (r < 0) {
                        connection_disconnect(c, r, why ?: "cannot parse message");
                        return;
                }
                connection_handle_message(c, m, TAKE_PTR(fds), n_fds);
                json_decref(m);
        }
}

static void connection_process(Connection *c, uint32_t revents) {
        connection_ref(c);

        if (!c->dead && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && connection_can_read(c)) {
                ssize_t n = varlink_input_read(&c->in, c->fd, READ_CHUNK);
                if (n == 0)
                        c->read_eof = true;
                else if (n == -EBADMSG)
                        connection_disconnect(c, EBADMSG, "too many file descriptors sent with a message");
                else if (n == -E2BIG)
                        connection_disconnect(c, E2BIG, "too many file descriptors waiting");
                else if (n < 0 && n != -EAGAIN)
                        connection_disconnect(c, (int) n, n == -ECONNRESET ? NULL : "read failed");
        }

        if (!c->dead)
                connection_process_input(c);

        /* A peer that closed both directions cannot receive anything: stop what it asked for. EPOLLHUP
         * stays raised, so this must not wait for reads we will not do. */
        if (!c->dead && (revents & (EPOLLHUP | EPOLLERR)) && (c->read_eof || !connection_can_read(c)))
                connection_disconnect(c, 0, "peer hung up");

        if (!c->dead && !varlink_output_empty(&c->out)) {
                int r = varlink_output_flush(&c->out, c->fd);
                if (r < 0 && r != -EAGAIN)
                        connection_disconnect(c, r, (r == -EPIPE || r == -ECONNRESET) ? NULL : "write failed");
        }

        if (!c->dead && c->out.bytes > c->server->message_max)
                connection_disconnect(c, ENOBUFS, "client does not read its replies, output buffer is over the limit");

        if (!c->dead && c->read_eof && !c->current && varlink_output_empty(&c->out)) {
                if (varlink_input_pending(&c->in) > 0)
                        log_debug("varlink: client closed with an incomplete message");
                connection_disconnect(c, 0, NULL);
        }

        if (!c->dead)
                connection_update_events(c);

        connection_unref(c);
}

static int connection_io_handler(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        connection_process(userdata, revents);
        return 0;
}

static int connection_defer_handler(sd_event_source *source, void *userdata) {
        connection_process(userdata, 0);
        return 0;
}

int varlink_server_add_connection(VarlinkServer *s, int fd) {
        _cleanup_close_ int fd_close = fd;
        Connection *c;
        socklen_t len = sizeof(struct ucred);
        int r;

        if (fd < 0)
                return -EBADF;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->fd = TAKE_FD(fd_close);
        c->server = s;
        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &c->ucred, &len) >= 0)
                c->have_ucred = true;

        r = sd_event_add_io(s->event, &c->io_source, c->fd, EPOLLIN, connection_io_handler, c);
        if (r >= 0)
                r = sd_event_add_defer(s->event, &c->defer_source, connection_defer_handler, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->defer_source, SD_EVENT_OFF);
        if (r < 0) {
                connection_unref(c);
                return r;
        }
        c->next = s->connections;
        if (c->next)
                c->next->prev = c;
        s->connections = c;
        s->n_connections++;
        server_update_idle(s);
        return 0;
}

/* ---- listening ---- */

static int listener_handler(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        VarlinkServer *s = userdata;

        /* Take the whole backlog at once: a burst of clients should not wait for one loop turn each. */
        for (unsigned i = 0; i < 256; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                                return 0;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                log_warning_errno(errno, "varlink: cannot accept more clients now: %m");
                                s->accept_paused = true;
                                for (size_t j = 0; j < s->n_listeners; j++)
                                        (void) sd_event_source_set_enabled(s->listeners[j].source, SD_EVENT_OFF);
                                return 0;
                        }
                        log_error_errno(errno, "varlink: accept failed: %m");
                        return 0;
                }
                int r = varlink_server_add_connection(s, cfd);
                if (r < 0)
                        log_error_errno(r, "varlink: cannot set up client connection: %m");
        }
        return 0;
}

static int server_add_listener(VarlinkServer *s, int fd, bool owned) {
        Listener *l;
        int r;

        l = realloc(s->listeners, (s->n_listeners + 1) * sizeof(Listener));
        if (!l)
                return -ENOMEM;
        s->listeners = l;
        l = &s->listeners[s->n_listeners];
        *l = (Listener){ .fd = fd, .owned = owned };
        r = sd_event_add_io(s->event, &l->source, fd, EPOLLIN, listener_handler, s);
        if (r < 0)
                return r;
        if (s->accept_paused)
                (void) sd_event_source_set_enabled(l->source, SD_EVENT_OFF);
        s->n_listeners++;
        return 0;
}

int varlink_server_listen_fds(VarlinkServer *s) {
        int n, r, count = 0;

        n = sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "varlink: cannot get sockets from systemd: %m");
        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
                r = sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1);
                if (r < 0)
                        return log_error_errno(r, "varlink: cannot check passed fd %d: %m", fd);
                if (r == 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                               "varlink: passed fd %d is not a listening AF_UNIX stream socket", fd);
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
                    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                        return log_error_errno(errno, "varlink: cannot set up passed fd %d: %m", fd);
                r = server_add_listener(s, fd, false);
                if (r < 0)
                        return log_error_errno(r, "varlink: cannot watch passed fd %d: %m", fd);
                count++;
        }
        return count;
}

int varlink_server_listen_address(VarlinkServer *s, const char *path, mode_t mode) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        char tmp[sizeof(sa.sun_path)];
        const char *p = path, *bind_path;
        struct stat st;
        int r;

        if (startswith(p, "unix:"))
                p += strlen("unix:");
        if (isempty(p) || strlen(p) >= sizeof(sa.sun_path))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "varlink: socket path \"%s\" is empty or too long",
                                       path);
        if (lstat(p, &st) >= 0 && !S_ISSOCK(st.st_mode))
                return log_error_errno(SYNTHETIC_ERRNO(EEXIST), "varlink: %s exists and is not a socket", p);

        /* Bind and listen under a temporary name, then rename: a client that sees the path can connect. */
        r = snprintf(tmp, sizeof(tmp), "%s.%d~", p, (int) getpid());
        bind_path = r > 0 && (size_t) r < sizeof(tmp) ? tmp : p;
        memcpy(sa.sun_path, bind_path, strlen(bind_path));

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "varlink: cannot create socket: %m");
        if (unlink(bind_path) < 0 && errno != ENOENT)
                return log_error_errno(errno, "varlink: cannot remove old socket %s: %m", bind_path);
        {
                /* Bind with the final mode so that no client can slip in while it is wider. */
                mode_t old = umask(~mode & 0777);
                r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
                umask(old);
        }
        if (r < 0)
                return log_error_errno(errno, "varlink: cannot bind %s: %m", bind_path);
        if (listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                (void) unlink(bind_path);
                return log_error_errno(r, "varlink: cannot listen on %s: %m", p);
        }
        if (bind_path != p && rename(bind_path, p) < 0) {
                r = -errno;
                (void) unlink(bind_path);
                return log_error_errno(r, "varlink: cannot move socket to %s: %m", p);
        }
        r = server_add_listener(s, fd, true);
        if (r < 0)
                return log_error_errno(r, "varlink: cannot watch %s: %m", p);
        TAKE_FD(fd);
        return 0;
}

static int idle_handler(sd_event_source *source, uint64_t usec, void *userdata) {
        VarlinkServer *s = userdata;

        if (s->n_connections > 0)
                return 0;
        /* A client waiting in a backlog is not idleness: serve it first. */
        for (size_t i = 0; i < s->n_listeners; i++) {
                struct pollfd pfd = { .fd = s->listeners[i].fd, .events = POLLIN };
                if (poll(&pfd, 1, 0) > 0) {
                        server_update_idle(s);
                        return 0;
                }
        }
        log_debug("varlink: idle, exiting");
        return sd_event_exit(s->event, 0);
}

int varlink_server_set_exit_on_idle(VarlinkServer *s, uint64_t usec) {
        int r;

        s->idle_usec = usec;
        if (!s->idle_source) {
                if (usec == 0)
                        return 0;
                r = sd_event_add_time_relative(s->event, &s->idle_source, CLOCK_MONOTONIC, usec, 0, idle_handler, s);
                if (r < 0)
                        return r;
        }
        server_update_idle(s);
        return 0;
}

void varlink_server_set_message_max(VarlinkServer *s, size_t max) {
        s->message_max = max > 0 ? max : VARLINK_MESSAGE_MAX;
}

size_t varlink_server_connections(VarlinkServer *s) {
        return s->n_connections;
}

/* ---- server object ---- */

int varlink_server_new(VarlinkServer **ret, sd_event *event, const VarlinkServerInfo *info, void *userdata) {
        _cleanup_(varlink_server_freep) VarlinkServer *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->message_max = VARLINK_MESSAGE_MAX;
        s->userdata = userdata;
        if (event)
                s->event = sd_event_ref(event);
        else {
                r = sd_event_default(&s->event);
                if (r < 0)
                        return r;
        }
        s->vendor = strdup(info && info->vendor ? info->vendor : "switchyard");
        s->product = strdup(info && info->product ? info->product : "switchyard");
        s->version = strdup(info && info->version ? info->version : SWITCHYARD_VERSION);
        s->url = strdup(info && info->url ? info->url : "https://github.com/switchyard");
        if (!s->vendor || !s->product || !s->version || !s->url)
                return -ENOMEM;
        r = varlink_server_add_interface(s, &service_interface);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

VarlinkServer *varlink_server_free(VarlinkServer *s) {
        if (!s)
                return NULL;
        while (s->connections)
                connection_disconnect(s->connections, 0, NULL);
        for (size_t i = 0; i < s->n_listeners; i++) {
                sd_event_source_disable_unref(s->listeners[i].source);
                if (s->listeners[i].owned)
                        safe_close(s->listeners[i].fd);
        }
        free(s->listeners);
        for (size_t i = 0; i < s->n_interfaces; i++)
                varlink_strv_free(s->interfaces[i].idl_methods);
        free(s->interfaces);
        sd_event_source_disable_unref(s->idle_source);
        sd_event_unref(s->event);
        free(s->vendor);
        free(s->product);
        free(s->version);
        free(s->url);
        return mfree(s);
}

int varlink_server_add_interface(VarlinkServer *s, const VarlinkInterface *iface) {
        _cleanup_free_ char *name = NULL;
        char **methods = NULL;
        ServerInterface *l;
        int r;

        if (!iface || !iface->name || !iface->description)
                return -EINVAL;
        r = varlink_idl_scan(iface->description, &name, &methods);
        if (r < 0)
                return log_error_errno(r, "varlink: the IDL of %s does not start with a valid \"interface\" line",
                                       iface->name);
        if (!streq(name, iface->name)) {
                varlink_strv_free(methods);
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "varlink: the IDL given for %s declares %s",
                                       iface->name, name);
        }
        for (size_t i = 0; i < iface->n_methods; i++)
                if (!strv_contains(methods, iface->methods[i].name)) {
                        varlink_strv_free(methods);
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                               "varlink: method %s.%s is implemented but not declared in the IDL",
                                               iface->name, iface->methods[i].name);
                }
        if (server_find_interface(s, iface->name)) {
                varlink_strv_free(methods);
                return log_error_errno(SYNTHETIC_ERRNO(EEXIST), "varlink: interface %s added twice", iface->name);
        }
        l = realloc(s->interfaces, (s->n_interfaces + 1) * sizeof(ServerInterface));
        if (!l) {
                varlink_strv_free(methods);
                return -ENOMEM;
        }
        s->interfaces = l;
        s->interfaces[s->n_interfaces++] = (ServerInterface){ .iface = iface, .idl_methods = methods };
        return 0;
}

static int server_service_get_info(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *ud) {
        VarlinkServer *s = varlink_call_get_server(call);
        json_t *list, *reply;

        if (json_object_size(parameters) > 0)
                return varlink_call_error_invalid_parameter(call, json_object_iter_key(json_object_iter(parameters)));
        list = json_array();
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_interfaces; i++)
                if (json_array_append_new(list, json_string(s->interfaces[i].iface->name)) < 0) {
                        json_decref(list);
                        return -ENOMEM;
                }
        reply = json_pack("{s:s, s:s, s:s, s:s, s:o}", "vendor", s->vendor, "product", s->product, "version",
                          s->version, "url", s->url, "interfaces", list);
        if (!reply)
                return -ENOMEM;
        return varlink_call_reply(call, reply);
}

static int server_service_get_description(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags,
                                          void *ud) {
        VarlinkServer *s = varlink_call_get_server(call);
        const ServerInterface *si;
        const char *name = NULL;
        const char *key;
        json_t *v;

        json_object_foreach(parameters, key, v)
                if (!streq(key, "interface"))
                        return varlink_call_error_invalid_parameter(call, key);
        if (json_get_string(parameters, "interface", &name) < 0 || !name)
                return varlink_call_error_invalid_parameter(call, "interface");
        si = server_find_interface(s, name);
        if (!si)
                return varlink_call_error(call, VARLINK_ERROR_INTERFACE_NOT_FOUND,
                                          json_pack("{s:s}", "interface", name));
        return varlink_call_reply(call, json_pack("{s:s}", "description", si->iface->description));
}

/* ---- calls ---- */

VarlinkCall *varlink_call_ref(VarlinkCall *c) {
        if (c)
                c->n_ref++;
        return c;
}

VarlinkCall *varlink_call_unref(VarlinkCall *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        for (size_t i = 0; i < c->n_fds; i++)
                safe_close(c->fds[i]);
        free(c->fds);
        for (size_t i = 0; i < c->n_out_fds; i++)
                safe_close(c->out_fds[i]);
        json_decref(c->parameters);
        free(c->method);
        connection_unref(c->conn);
        return mfree(c);
}

static void call_drop_out_fds(VarlinkCall *c) {
        for (size_t i = 0; i < c->n_out_fds; i++)
                c->out_fds[i] = safe_close(c->out_fds[i]);
        c->n_out_fds = 0;
}

/* Sends one message for the call; steals m. */
static int call_send(VarlinkCall *c, json_t *m, bool final) {
        Connection *conn = c->conn;
        int r;

        if (!m) {
                call_drop_out_fds(c);
                return -ENOMEM;
        }
        if (c->done && !(c->flags & VARLINK_CALL_ONEWAY)) {
                json_decref(m);
                return c->disconnected || conn->dead ? -ENOTCONN : -EALREADY;
        }
        if (c->disconnected || conn->dead) {
                json_decref(m);
                call_drop_out_fds(c);
                c->done = c->done || final;
                return -ENOTCONN;
        }
        if (c->flags & VARLINK_CALL_ONEWAY) {
                /* The caller asked for no answer. */
                json_decref(m);
                call_drop_out_fds(c);
                c->done = c->done || final;
                return 0;
        }

        r = varlink_output_enqueue(&conn->out, m, c->out_fds, c->n_out_fds);
        c->n_out_fds = 0;
        json_decref(m);
        if (final) {
                c->done = true;
                if (conn->current == c) {
                        conn->current = NULL;
                        varlink_call_unref(c);
                }
        }
        if (r < 0) {
                /* A lost reply would leave the client waiting forever: better drop it. */
                connection_disconnect(conn, r, "cannot queue reply");
                return -ENOTCONN;
        }
        /* Writing (and taking up waiting messages) happens from the event loop, never inside a handler. */
        connection_schedule(conn);
        return 0;
}

int varlink_call_reply(VarlinkCall *c, json_t *parameters) {
        json_t *m;

        if (!parameters)
                parameters = json_object();
        m = parameters ? json_pack("{s:o}", "parameters", parameters) : NULL;
        return call_send(c, m, true);
}

int varlink_call_notify(VarlinkCall *c, json_t *parameters) {
        json_t *m;

        if (!(c->flags & VARLINK_CALL_MORE)) {
                json_decref(parameters);
                return -EPROTO;
        }
        if (!parameters)
                parameters = json_object();
        m = parameters ? json_pack("{s:o, s:b}", "parameters", parameters, "continues", 1) : NULL;
        return call_send(c, m, false);
}

int varlink_call_error(VarlinkCall *c, const char *error, json_t *parameters) {
        json_t *m;

        if (!parameters)
                parameters = json_object();
        m = parameters ? json_pack("{s:s, s:o}", "error", error, "parameters", parameters) : NULL;
        return call_send(c, m, true);
}

int varlink_call_error_invalid_parameter(VarlinkCall *c, const char *name) {
        log_debug("varlink: %s: invalid parameter \"%s\"", c->method, name ?: "");
        return varlink_call_error(c, VARLINK_ERROR_INVALID_PARAMETER, json_pack("{s:s}", "parameter", name ?: ""));
}

int varlink_call_error_errno(VarlinkCall *c, int r) {
        int e = ERRNO_VALUE(r);

        (void) varlink_call_error(c, VARLINK_ERROR_INTERNAL, json_pack("{s:i, s:s}", "errno", e, "message", strerror(e)));
        return -e;
}

int varlink_call_peek_fd(VarlinkCall *c, size_t index) {
        if (index >= c->n_fds)
                return -ENXIO;
        if (c->fds[index] < 0)
                return -EBADF;
        return c->fds[index];
}

int varlink_call_take_fd(VarlinkCall *c, size_t index) {
        int fd = varlink_call_peek_fd(c, index);

        if (fd >= 0)
                c->fds[index] = -EBADF;
        return fd;
}

int varlink_call_push_fd(VarlinkCall *c, int fd) {
        if (fd < 0)
                return -EBADF;
        if (c->n_out_fds >= VARLINK_FDS_MAX) {
                safe_close(fd);
                return -E2BIG;
        }
        c->out_fds[c->n_out_fds] = fd;
        return (int) c->n_out_fds++;
}

int varlink_call_get_peer_ucred(VarlinkCall *c, uid_t *ret_uid, gid_t *ret_gid, pid_t *ret_pid) {
        if (!c->conn->have_ucred)
                return -ENODATA;
        if (ret_uid)
                *ret_uid = c->conn->ucred.uid;
        if (ret_gid)
                *ret_gid = c->conn->ucred.gid;
        if (ret_pid)
                *ret_pid = c->conn->ucred.pid;
        return 0;
}

VarlinkServer *varlink_call_get_server(VarlinkCall *c) {
        return c->conn->server;
}

void *varlink_call_get_userdata(VarlinkCall *c) {
        return c->conn->server ? c->conn->server->userdata : NULL;
}

const char *varlink_call_get_method(VarlinkCall *c) {
        return c->method;
}

void varlink_call_set_disconnect_handler(VarlinkCall *c, void (*handler)(VarlinkCall *c, void *ud), void *ud) {
        c->disconnect_handler = handler;
        c->disconnect_userdata = ud;
}

/* ---- blocking client ---- */

struct VarlinkClient {
        int fd;
        uint64_t timeout_usec;
        VarlinkInput in;
        VarlinkOutput out;
        int push_fds[VARLINK_FDS_MAX];
        size_t n_push_fds;
        int *reply_fds;
        size_t n_reply_fds;
        char *error;
        bool broken; /* a call was interrupted half-way: the stream is out of step */
};

int varlink_client_connect(VarlinkClient **ret, const char *address) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        const char *p = address;

        if (!address)
                return -EINVAL;
        if (startswith(p, "unix:"))
                p += strlen("unix:");
        if (isempty(p) || strlen(p) >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, p, strlen(p));

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        /* A blocking connect waits while the server's backlog is full, bounded by the send timeout. */
        struct timeval tv = { .tv_sec = 30 };
        (void) setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return errno == EAGAIN ? -ETIMEDOUT : -errno;
        tv = (struct timeval){};
        (void) setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        int flags = fcntl(c->fd, F_GETFL);
        if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        *ret = TAKE_PTR(c);
        return 0;
}

static void client_drop_reply_fds(VarlinkClient *c) {
        for (size_t i = 0; i < c->n_reply_fds; i++)
                safe_close(c->reply_fds[i]);
        c->reply_fds = mfree(c->reply_fds);
        c->n_reply_fds = 0;
}

VarlinkClient *varlink_client_free(VarlinkClient *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        varlink_input_done(&c->in);
        varlink_output_done(&c->out);
        for (size_t i = 0; i < c->n_push_fds; i++)
                safe_close(c->push_fds[i]);
        client_drop_reply_fds(c);
        free(c->error);
        return mfree(c);
}

void varlink_client_set_timeout(VarlinkClient *c, uint64_t usec) {
        c->timeout_usec = usec;
}

int varlink_client_push_fd(VarlinkClient *c, int fd) {
        int copy;

        if (fd < 0)
                return -EBADF;
        if (c->n_push_fds >= VARLINK_FDS_MAX)
                return -E2BIG;
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return -errno;
        c->push_fds[c->n_push_fds] = copy;
        return (int) c->n_push_fds++;
}

int varlink_client_take_fd(VarlinkClient *c, size_t index) {
        int fd;

        if (index >= c->n_reply_fds)
                return -ENXIO;
        fd = c->reply_fds[index];
        if (fd < 0)
                return -EBADF;
        c->reply_fds[index] = -EBADF;
        return fd;
}

/* Waits for events on the socket until deadline (UINT64_MAX: forever). */
static int client_wait(VarlinkClient *c, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd pfd = { .fd = c->fd, .events = events };
                int timeout = -1;
                if (deadline != UINT64_MAX) {
                        uint64_t n = now_monotonic_usec();
                        if (n >= deadline)
                                return -ETIMEDOUT;
                        timeout = (int) MIN(DIV_ROUND_UP(deadline - n, 1000u), (uint64_t) INT32_MAX);
                }
                int r = poll(&pfd, 1, timeout);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;
                return 0;
        }
}

static uint64_t client_deadline(VarlinkClient *c) {
        return c->timeout_usec == 0 ? UINT64_MAX : now_monotonic_usec() + c->timeout_usec;
}

static int client_send(VarlinkClient *c, const char *method, json_t *parameters, bool more) {
        json_t *m;
        uint64_t deadline = client_deadline(c);
        int r;

        if (c->broken)
                return -ENOTCONN;
        json_t *params = parameters ? json_incref(parameters) : json_object();
        m = params ? json_pack("{s:s, s:o}", "method", method, "parameters", params) : NULL;
        if (!m)
                return -ENOMEM;
        if (more && json_object_set_new(m, "more", json_true()) < 0) {
                json_decref(m);
                return -ENOMEM;
        }
        r = varlink_output_enqueue(&c->out, m, c->push_fds, c->n_push_fds);
        c->n_push_fds = 0;
        json_decref(m);
        if (r < 0)
                return r;
        for (;;) {
                r = varlink_output_flush(&c->out, c->fd);
                if (r != -EAGAIN)
                        break;
                r = client_wait(c, POLLOUT, deadline);
                if (r < 0)
                        break;
        }
        if (r < 0)
                c->broken = true;
        return r;
}

/* Reads one reply. Returns 0 with the parsed message in *ret (caller decrefs). */
static int client_receive(VarlinkClient *c, json_t **ret) {
        uint64_t deadline = client_deadline(c);

        for (;;) {
                _cleanup_free_ int *fds = NULL;
                size_t n_fds = 0;
                const char *why = NULL;
                json_t *m = NULL;
                int r;

                r = varlink_input_next(&c->in, VARLINK_MESSAGE_MAX, &m, &fds, &n_fds, &why);
                if (r < 0) {
                        c->broken = true;
                        return log_debug_errno(r, "varlink: bad reply from service: %s", why ?: "?");
                }
                if (r > 0) {
                        client_drop_reply_fds(c);
                        c->reply_fds = TAKE_PTR(fds);
                        c->n_reply_fds = n_fds;
                        *ret = m;
                        return 0;
                }
                ssize_t n = varlink_input_read(&c->in, c->fd, READ_CHUNK);
                if (n == 0) {
                        c->broken = true;
                        return -ECONNRESET;
                }
                if (n == -EAGAIN) {
                        r = client_wait(c, POLLIN, deadline);
                        if (r < 0) {
                                c->broken = true;
                                return r;
                        }
                        continue;
                }
                if (n < 0) {
                        c->broken = true;
                        return (int) n;
                }
        }
}

static int client_reply_error(VarlinkClient *c, const VarlinkReplyMessage *p) {
        int64_t e = 0;

        free(c->error);
        c->error = strdup(p->error);
        if (!c->error)
                return -ENOMEM;
        if (streq(p->error, VARLINK_ERROR_INTERNAL) && p->parameters &&
            json_get_int(p->parameters, "errno", &e) >= 0 && e > 0 && e < 4096)
                return -(int) e;
        return -EBADE;
}

int varlink_client_call(VarlinkClient *c, const char *method, json_t *parameters, json_t **ret_reply,
                        const char **ret_error) {
        VarlinkReplyMessage p;
        const char *why = NULL;
        json_t *m = NULL;
        int r;

        r = client_send(c, method, parameters, false);
        if (r < 0)
                return r;
        r = client_receive(c, &m);
        if (r < 0)
                return r;
        r = varlink_parse_reply(m, &p, &why);
        if (r >= 0 && p.continues) {
                why = "\"continues\" in reply to a call without \"more\"";
                r = -EBADMSG;
        }
        if (r < 0) {
                c->broken = true;
                json_decref(m);
                return log_debug_errno(r, "varlink: bad reply to %s: %s", method, why);
        }
        if (p.error) {
                r = client_reply_error(c, &p);
                if (ret_error)
                        *ret_error = c->error;
        }
        if (ret_reply)
                *ret_reply = p.parameters ? json_incref(p.parameters) : json_object();
        json_decref(m);
        return r < 0 ? r : 0;
}

int varlink_client_call_more(VarlinkClient *c, const char *method, json_t *parameters,
                             VarlinkReplyHandler handler, void *userdata, const char **ret_error,
                             json_t **ret_error_parameters) {
        int r;

        r = client_send(c, method, parameters, true);
        if (r < 0)
                return r;
        for (;;) {
                VarlinkReplyMessage p;
                const char *why = NULL;
                json_t *m = NULL;

                r = client_receive(c, &m);
                if (r < 0)
                        return r;
                r = varlink_parse_reply(m, &p, &why);
                if (r < 0) {
                        c->broken = true;
                        json_decref(m);
                        return log_debug_errno(r, "varlink: bad reply to %s: %s", method, why);
                }
                if (p.error) {
                        r = client_reply_error(c, &p);
                        if (ret_error)
                                *ret_error = c->error;
                        if (ret_error_parameters)
                                *ret_error_parameters = p.parameters ? json_incref(p.parameters) : json_object();
                        json_decref(m);
                        return r;
                }
                json_t *params = p.parameters ? json_incref(p.parameters) : json_object();
                bool continues = p.continues;
                json_decref(m);
                if (!params)
                        return -ENOMEM;
                r = handler(c, params, continues, userdata);
                json_decref(params);
                if (r < 0) {
                        /* Replies may still be on their way: this connection cannot be reused. */
                        if (continues)
                                c->broken = true;
                        return r;
                }
                if (!continues)
                        return 0;
        }
}

/* ---- parameter helpers ---- */

int json_get_string(json_t *obj, const char *key, const char **ret) {
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                return -EINVAL;
        *ret = json_string_value(v);
        return 0;
}

int json_get_bool(json_t *obj, const char *key, bool *ret) {
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_boolean(v))
                return -EINVAL;
        *ret = json_is_true(v);
        return 0;
}

int json_get_int(json_t *obj, const char *key, int64_t *ret) {
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v))
                return -EINVAL;
        *ret = (int64_t) json_integer_value(v);
        return 0;
}

int json_get_uint(json_t *obj, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EINVAL;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}
