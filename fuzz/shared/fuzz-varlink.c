/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Feeds bytes to a varlink server connection through a socketpair, as a client would send them, and runs
 * the server's event loop until it has answered or dropped the peer. The same bytes also go through the
 * reply parser (what the blocking client does with a service's answers) and the IDL scanner. */
#include <fcntl.h>
#include <sys/socket.h>

#include "log.h"
#include "varlink-message.h"
#include "varlink.h"

static const char fuzz_idl[] = "interface io.switchyard.Fuzz\n"
                               "method Echo(text: ?string) -> (text: ?string)\n"
                               "method Stream(count: int) -> (index: int)\n"
                               "method Later() -> ()\n"
                               "method Fd(fd: int) -> (fd: int)\n"
                               "method Fail() -> ()\n"
                               "method Unimplemented() -> ()\n";

static int fuzz_echo(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        return varlink_call_reply(call, json_incref(p));
}

static int fuzz_stream(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        int64_t n = 0;
        int r;

        if (json_get_int(p, "count", &n) < 0 || n < 1 || n > 64)
                return varlink_call_error_invalid_parameter(call, "count");
        if (!(flags & VARLINK_CALL_MORE))
                return varlink_call_error(call, VARLINK_ERROR_EXPECTED_MORE, NULL);
        for (int64_t i = 0; i < n - 1; i++) {
                r = varlink_call_notify(call, json_pack("{s:I}", "index", (json_int_t) i));
                if (r < 0)
                        return r;
        }
        return varlink_call_reply(call, json_pack("{s:I}", "index", (json_int_t) (n - 1)));
}

static int later_fire(sd_event_source *s, void *userdata) {
        VarlinkCall *call = userdata;

        (void) varlink_call_reply(call, NULL);
        varlink_call_unref(call);
        sd_event_source_disable_unref(s);
        return 0;
}

static int fuzz_later(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        sd_event *e = ud;
        sd_event_source *s = NULL;
        int r;

        r = sd_event_add_defer(e, &s, later_fire, varlink_call_ref(call));
        if (r < 0)
                varlink_call_unref(call);
        return r;
}

static int fuzz_fd(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        int64_t idx = -1;
        int fd;

        if (json_get_int(p, "fd", &idx) < 0 || idx < 0 || (fd = varlink_call_peek_fd(call, (size_t) idx)) < 0)
                return varlink_call_error_invalid_parameter(call, "fd");
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        return varlink_call_reply(call, json_pack("{s:i}", "fd", varlink_call_push_fd(call, fd)));
}

static int fuzz_fail(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        return -EIO;
}

static const VarlinkMethod fuzz_methods[] = {
        { "Echo", fuzz_echo }, { "Stream", fuzz_stream }, { "Later", fuzz_later },
        { "Fd", fuzz_fd },     { "Fail", fuzz_fail },
};
static const VarlinkInterface fuzz_interface = {
        .name = "io.switchyard.Fuzz",
        .description = fuzz_idl,
        .methods = fuzz_methods,
        .n_methods = ELEMENTSOF(fuzz_methods),
};

static void drain(int fd) {
        char buf[65536];
        for (;;) {
                union {
                        struct cmsghdr h;
                        uint8_t buf[CMSG_SPACE(sizeof(int) * VARLINK_FDS_MAX)];
                } control;
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                     .msg_controllen = sizeof(control) };
                ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n <= 0)
                        return;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                for (size_t i = 0; i < k; i++) {
                                        int v;
                                        memcpy(&v, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                        safe_close(v);
                                }
                        }
        }
}

/* The parsers alone, on each NUL-terminated piece. */
static void fuzz_parsers(const uint8_t *data, size_t size) {
        VarlinkInput in = {};
        char *text;

        if (varlink_input_feed(&in, data, size, NULL, 0) < 0)
                return;
        for (;;) {
                json_t *m = NULL;
                int *fds = NULL;
                size_t n_fds = 0;
                VarlinkCallMessage call;
                VarlinkReplyMessage reply;
                const char *why = NULL;
                char *iface = NULL;
                const char *member;
                int r = varlink_input_next(&in, 4096, &m, &fds, &n_fds, &why);
                if (r == -EBADMSG)
                        continue;
                if (r <= 0)
                        break;
                free(fds);
                if (varlink_parse_call(m, &call, &why) >= 0 && varlink_split_method(call.method, &iface, &member) >= 0)
                        free(iface);
                (void) varlink_parse_reply(m, &reply, &why);
                json_decref(m);
        }
        varlink_input_done(&in);

        text = strndup((const char *) data, size);
        if (text) {
                char *name = NULL, **methods = NULL;
                if (varlink_idl_scan(text, &name, &methods) >= 0) {
                        free(name);
                        varlink_strv_free(methods);
                }
                free(text);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static sd_event *e = NULL;
        _cleanup_(varlink_server_freep) VarlinkServer *s = NULL;
        int sv[2], r;
        size_t done = 0;

        if (size > 256 * 1024)
                return 0;
        if (!e) {
                log_set_target(LOG_TARGET_NULL);
                if (sd_event_new(&e) < 0)
                        abort();
        }
        fuzz_parsers(data, size);

        if (varlink_server_new(&s, e, NULL, e) < 0 || varlink_server_add_interface(s, &fuzz_interface) < 0)
                abort();
        varlink_server_set_message_max(s, 4096);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        if (varlink_server_add_connection(s, sv[0]) < 0)
                abort();

        /* Send everything (a byte '\x01' right after a NUL also sends an fd with the next message, so the
         * fd paths get exercised), answering the server's output as a client that reads would. */
        for (unsigned iter = 0; iter < 100000 && varlink_server_connections(s) > 0; iter++) {
                if (done < size) {
                        size_t end = done;
                        while (end < size && data[end] != 0)
                                end++;
                        if (end < size)
                                end++; /* include the NUL */
                        ssize_t n;
                        if (data[done] == 1) {
                                int pfd = fcntl(sv[1], F_DUPFD_CLOEXEC, 3);
                                union {
                                        struct cmsghdr h;
                                        uint8_t buf[CMSG_SPACE(sizeof(int))];
                                } control = {};
                                struct iovec iov = { .iov_base = (void *) (data + done), .iov_len = end - done };
                                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                                     .msg_controllen = sizeof(control) };
                                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                                c->cmsg_level = SOL_SOCKET;
                                c->cmsg_type = SCM_RIGHTS;
                                c->cmsg_len = CMSG_LEN(sizeof(int));
                                memcpy(CMSG_DATA(c), &pfd, sizeof(int));
                                n = sendmsg(sv[1], &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
                                safe_close(pfd);
                        } else
                                n = send(sv[1], data + done, end - done, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n > 0)
                                done += (size_t) n;
                        else if (n < 0 && errno != EAGAIN)
                                done = size; /* dropped by the server */
                        if (done == size)
                                (void) shutdown(sv[1], SHUT_WR);
                }
                drain(sv[1]);
                r = sd_event_run(e, 0);
                if (r < 0)
                        abort();
        }
        safe_close(sv[1]);
        /* Let the server see the hangup and finish deferred replies. */
        for (unsigned i = 0; i < 16; i++)
                (void) sd_event_run(e, 0);
        return 0;
}
