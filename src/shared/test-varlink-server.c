/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A varlink service for the integration tests of the varlink layer (built with the tests, installed
 * nowhere). Serves io.switchyard.Test on sockets passed by systemd or on --listen=PATH. */
#include <getopt.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "fileio.h"
#include "log.h"
#include "varlink.h"

static const char test_idl[] =
        "# Methods that exercise every feature of switchyard's varlink layer.\n"
        "interface io.switchyard.Test\n"
        "\n"
        "# Returns its parameters unchanged.\n"
        "method Echo(text: ?string, data: ?object) -> (text: ?string, data: ?object)\n"
        "\n"
        "# Sends count replies (call with \"more\"); each carries size bytes of padding.\n"
        "method Stream(count: int, size: ?int) -> (index: int, count: int, padding: ?string)\n"
        "\n"
        "# Answers after ms milliseconds from a timer. When the caller leaves first the call is\n"
        "# cancelled, unless ignore_disconnect is set: then the late reply is attempted anyway.\n"
        "method Sleep(ms: int, ignore_disconnect: ?bool) -> (slept: int)\n"
        "\n"
        "# Reads the passed file descriptor to its end.\n"
        "method ReadFd(fd: int) -> (content: string)\n"
        "\n"
        "# Reads several passed file descriptors.\n"
        "method ReadFds(fds: []int) -> (contents: []string)\n"
        "\n"
        "# Returns count memfds holding text.\n"
        "method MakeFd(text: string, count: ?int) -> (fd: int, fds: []int)\n"
        "\n"
        "# Fails with Failure.\n"
        "method Fail(reason: ?string) -> ()\n"
        "\n"
        "# The handler fails with this errno; the layer answers io.switchyard.InternalError.\n"
        "method Errno(errno: int) -> ()\n"
        "\n"
        "# Remembers text (for oneway calls).\n"
        "method Record(text: string) -> ()\n"
        "\n"
        "# Counters kept by the server.\n"
        "method Stats() -> (connections: int, cancelled: int, late_replies: int, recorded: []string)\n"
        "\n"
        "# Declared but not implemented.\n"
        "method NotImplemented() -> ()\n"
        "\n"
        "error Failure (reason: string)\n";

typedef struct SleepCall SleepCall;

typedef struct Server {
        sd_event *event;
        unsigned cancelled, late_replies;
        json_t *recorded;
        SleepCall *sleeping;
} Server;

struct SleepCall {
        SleepCall *prev, *next;
        VarlinkCall *call;
        sd_event_source *timer;
        int64_t ms;
        bool ignore_disconnect;
        Server *server;
};

static int method_echo(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        return varlink_call_reply(call, json_incref(parameters));
}

static int method_stream(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        _cleanup_free_ char *padding = NULL;
        int64_t count = -1, size = 0;
        int r;

        if (!(flags & VARLINK_CALL_MORE))
                return varlink_call_error(call, VARLINK_ERROR_EXPECTED_MORE, NULL);
        if (json_get_int(parameters, "count", &count) < 0 || count < 1 || count > 100000)
                return varlink_call_error_invalid_parameter(call, "count");
        if (json_get_int(parameters, "size", &size) < 0 || size < 0 || size > 1024 * 1024 || count * size > 64 * 1024 * 1024)
                return varlink_call_error_invalid_parameter(call, "size");
        if (size > 0) {
                padding = malloc((size_t) size + 1);
                if (!padding)
                        return -ENOMEM;
                memset(padding, 'x', (size_t) size);
                padding[size] = '\0';
        }
        for (int64_t i = 0; i < count; i++) {
                json_t *p = json_pack("{s:I, s:I}", "index", (json_int_t) i, "count", (json_int_t) count);
                if (p && padding)
                        json_object_set_new(p, "padding", json_string(padding));
                r = i + 1 < count ? varlink_call_notify(call, p) : varlink_call_reply(call, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

static SleepCall *sleep_call_free(SleepCall *s) {
        if (!s)
                return NULL;
        if (s->prev)
                s->prev->next = s->next;
        else
                s->server->sleeping = s->next;
        if (s->next)
                s->next->prev = s->prev;
        sd_event_source_disable_unref(s->timer);
        varlink_call_unref(s->call);
        return mfree(s);
}

static int sleep_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        SleepCall *s = userdata;
        int r;

        r = varlink_call_reply(s->call, json_pack("{s:I}", "slept", (json_int_t) s->ms));
        if (r == -ENOTCONN) {
                log_info("Sleep: caller left before the reply, reply refused with ENOTCONN");
                s->server->late_replies++;
        } else if (r < 0)
                log_error_errno(r, "Sleep: reply failed: %m");
        sleep_call_free(s);
        return 0;
}

static void sleep_disconnected(VarlinkCall *call, void *userdata) {
        SleepCall *s = userdata;

        if (s->ignore_disconnect)
                return;
        log_info("Sleep: caller left, call cancelled");
        s->server->cancelled++;
        sleep_call_free(s);
}

static int method_sleep(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        Server *server = userdata;
        SleepCall *s;
        int64_t ms = -1;
        bool ignore = false;
        int r;

        if (json_get_int(parameters, "ms", &ms) < 0 || ms < 0 || ms > 600000)
                return varlink_call_error_invalid_parameter(call, "ms");
        if (json_get_bool(parameters, "ignore_disconnect", &ignore) < 0)
                return varlink_call_error_invalid_parameter(call, "ignore_disconnect");
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (SleepCall){ .call = varlink_call_ref(call), .ms = ms, .ignore_disconnect = ignore, .server = server,
                          .next = server->sleeping };
        if (s->next)
                s->next->prev = s;
        server->sleeping = s;
        r = sd_event_add_time_relative(server->event, &s->timer, CLOCK_MONOTONIC, (uint64_t) ms * 1000, 0,
                                       sleep_timer, s);
        if (r < 0) {
                sleep_call_free(s);
                return r;
        }
        varlink_call_set_disconnect_handler(call, sleep_disconnected, s);
        return 0;
}

static int read_fd_string(int fd, json_t **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        json_t *s;

        buf = malloc(1024 * 1024);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, 1024 * 1024 - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size == 1024 * 1024)
                        return -EFBIG;
        }
        s = json_stringn(buf, size);
        if (!s)
                return -EILSEQ;
        *ret = s;
        return 0;
}

static int method_read_fd(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        json_t *content = NULL;
        int64_t idx = -1;
        int fd, r;

        if (json_get_int(parameters, "fd", &idx) < 0 || idx < 0)
                return varlink_call_error_invalid_parameter(call, "fd");
        fd = varlink_call_peek_fd(call, (size_t) idx);
        if (fd < 0)
                return varlink_call_error_invalid_parameter(call, "fd");
        r = read_fd_string(fd, &content);
        if (r < 0)
                return varlink_call_error(call, "io.switchyard.Test.Failure",
                                          json_pack("{s:s}", "reason", strerror(-r)));
        return varlink_call_reply(call, json_pack("{s:o}", "content", content));
}

static int method_read_fds(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        json_t *list = json_object_get(parameters, "fds"), *v, *out;
        size_t i;
        int r;

        if (!json_is_array(list))
                return varlink_call_error_invalid_parameter(call, "fds");
        out = json_array();
        if (!out)
                return -ENOMEM;
        json_array_foreach(list, i, v) {
                json_t *content = NULL;
                int fd = json_is_integer(v) && json_integer_value(v) >= 0
                                 ? varlink_call_peek_fd(call, (size_t) json_integer_value(v))
                                 : -EINVAL;
                if (fd < 0) {
                        json_decref(out);
                        return varlink_call_error_invalid_parameter(call, "fds");
                }
                r = read_fd_string(fd, &content);
                if (r < 0) {
                        json_decref(out);
                        return r;
                }
                json_array_append_new(out, content);
        }
        return varlink_call_reply(call, json_pack("{s:o}", "contents", out));
}

static int method_make_fd(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        const char *text = NULL;
        int64_t count = 1;
        json_t *list;
        int first = -1;

        if (json_get_string(parameters, "text", &text) < 0 || !text)
                return varlink_call_error_invalid_parameter(call, "text");
        if (json_get_int(parameters, "count", &count) < 0 || count < 1 || count > VARLINK_FDS_MAX)
                return varlink_call_error_invalid_parameter(call, "count");
        list = json_array();
        if (!list)
                return -ENOMEM;
        for (int64_t i = 0; i < count; i++) {
                int fd = memfd_create("test-varlink", MFD_CLOEXEC), idx;
                if (fd < 0 || loop_write(fd, text, strlen(text)) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
                        int e = errno;
                        safe_close(fd);
                        json_decref(list);
                        return -e;
                }
                idx = varlink_call_push_fd(call, fd);
                if (idx < 0) {
                        json_decref(list);
                        return idx;
                }
                if (first < 0)
                        first = idx;
                json_array_append_new(list, json_integer(idx));
        }
        return varlink_call_reply(call, json_pack("{s:i, s:o}", "fd", first, "fds", list));
}

static int method_fail(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        const char *reason = "requested failure";

        if (json_get_string(parameters, "reason", &reason) < 0)
                return varlink_call_error_invalid_parameter(call, "reason");
        return varlink_call_error(call, "io.switchyard.Test.Failure", json_pack("{s:s}", "reason", reason));
}

static int method_errno(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        int64_t e = 0;

        if (json_get_int(parameters, "errno", &e) < 0 || e <= 0 || e >= 4096)
                return varlink_call_error_invalid_parameter(call, "errno");
        return -(int) e;
}

static int method_record(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        Server *server = userdata;
        const char *text = NULL;

        if (json_get_string(parameters, "text", &text) < 0 || !text)
                return varlink_call_error_invalid_parameter(call, "text");
        if (json_array_size(server->recorded) >= 1000)
                json_array_remove(server->recorded, 0);
        json_array_append_new(server->recorded, json_string(text));
        return varlink_call_reply(call, NULL);
}

static int method_stats(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        Server *server = userdata;

        return varlink_call_reply(call, json_pack("{s:I, s:I, s:I, s:O}", "connections",
                                                  (json_int_t) varlink_server_connections(varlink_call_get_server(call)),
                                                  "cancelled", (json_int_t) server->cancelled, "late_replies",
                                                  (json_int_t) server->late_replies, "recorded", server->recorded));
}

static const VarlinkMethod test_methods[] = {
        { "Echo", method_echo },       { "Stream", method_stream }, { "Sleep", method_sleep },
        { "ReadFd", method_read_fd },  { "ReadFds", method_read_fds }, { "MakeFd", method_make_fd },
        { "Fail", method_fail },       { "Errno", method_errno },   { "Record", method_record },
        { "Stats", method_stats },
};

static const VarlinkInterface test_interface = {
        .name = "io.switchyard.Test",
        .description = test_idl,
        .methods = test_methods,
        .n_methods = ELEMENTSOF(test_methods),
};

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "Serves io.switchyard.Test for the varlink layer's tests, on sockets passed by systemd or\n"
               "on --listen=PATH.\n\n"
               "  -h --help               Show this help\n"
               "     --version            Show the version\n"
               "     --listen=PATH        Listen on this AF_UNIX path\n"
               "     --exit-on-idle=MSEC  Exit after MSEC without clients (default: never)\n"
               "     --message-max=BYTES  Message and output buffer limit (default 16M)\n",
               program_invocation_short_name);
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_LISTEN, ARG_EXIT_ON_IDLE, ARG_MESSAGE_MAX };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "exit-on-idle", required_argument, NULL, ARG_EXIT_ON_IDLE },
                { "message-max", required_argument, NULL, ARG_MESSAGE_MAX },
                {},
        };
        _cleanup_(varlink_server_freep) VarlinkServer *vs = NULL;
        Server server = {};
        const char *listen_path = NULL;
        uint64_t idle_ms = 0, message_max = 0;
        struct rlimit rl;
        int c, r, n = 0;

        log_setup(argv[0]);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("%s\n", SWITCHYARD_VERSION);
                        return 0;
                case ARG_LISTEN:
                        listen_path = optarg;
                        break;
                case ARG_EXIT_ON_IDLE:
                        if (safe_atou64(optarg, &idle_ms) < 0) {
                                log_error("Invalid --exit-on-idle value: %s", optarg);
                                return 1;
                        }
                        break;
                case ARG_MESSAGE_MAX:
                        if (parse_size(optarg, &message_max) < 0 || message_max == 0) {
                                log_error("Invalid --message-max value: %s", optarg);
                                return 1;
                        }
                        break;
                default:
                        return 1;
                }
        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return 1;
        }

        /* Many concurrent clients need many fds. */
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = MIN(rl.rlim_max, (rlim_t) 65536);
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }

        server.recorded = json_array();
        if (!server.recorded)
                return log_oom(), 1;
        r = sd_event_default(&server.event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m"), 1;
        r = varlink_server_new(&vs, server.event,
                               &(VarlinkServerInfo){ .vendor = "switchyard", .product = "test-varlink-server",
                                                     .version = SWITCHYARD_VERSION,
                                                     .url = "https://github.com/switchyard" },
                               &server);
        if (r >= 0)
                r = varlink_server_add_interface(vs, &test_interface);
        if (r < 0)
                return log_error_errno(r, "Failed to set up varlink server: %m"), 1;
        if (message_max > 0)
                varlink_server_set_message_max(vs, (size_t) message_max);

        if (listen_path) {
                r = varlink_server_listen_address(vs, listen_path, 0600);
                if (r < 0)
                        return 1;
                n++;
        }
        r = varlink_server_listen_fds(vs);
        if (r < 0)
                return 1;
        n += r;
        if (n == 0) {
                log_error("No socket to serve: pass one with socket activation or --listen=PATH.");
                return 1;
        }
        if (idle_ms > 0) {
                r = varlink_server_set_exit_on_idle(vs, idle_ms * 1000);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up idle timer: %m"), 1;
        }
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(server.event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(server.event, NULL, SIGINT, NULL, NULL);

        r = sd_event_loop(server.event);
        vs = varlink_server_free(vs);
        while (server.sleeping)
                sleep_call_free(server.sleeping);
        sd_event_unref(server.event);
        json_decref(server.recorded);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), 1;
        log_info("Exiting.");
        return 0;
}
