/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "fileio.h"
#include "log.h"
#include "varlink-message.h"
#include "varlink.h"

/* ---- framing ---- */

static void feed(VarlinkInput *in, const char *s, size_t n) {
        assert_int_equal(varlink_input_feed(in, s, n, NULL, 0), 0);
}

static void expect_message(VarlinkInput *in, size_t max, const char *key, const char *value) {
        json_t *m = NULL;
        int *fds = NULL;
        size_t n_fds = 99;

        assert_int_equal(varlink_input_next(in, max, &m, &fds, &n_fds, NULL), 1);
        assert_non_null(m);
        assert_string_equal(json_string_value(json_object_get(m, key)), value);
        assert_int_equal(n_fds, 0);
        free(fds);
        json_decref(m);
}

static void test_input_framing(void **state) {
        VarlinkInput in = {};
        json_t *m = NULL;
        int *fds = NULL;
        size_t n_fds = 0;
        static const char part1[] = "{\"method\":\"a.b.C\"", part2[] = "}\0{\"method\":\"a.b.D\"}\0{\"x\"";

        feed(&in, part1, strlen(part1));
        assert_int_equal(varlink_input_next(&in, 1000, &m, &fds, &n_fds, NULL), 0);
        feed(&in, part2, sizeof(part2) - 1);
        expect_message(&in, 1000, "method", "a.b.C");
        expect_message(&in, 1000, "method", "a.b.D");
        assert_int_equal(varlink_input_next(&in, 1000, &m, &fds, &n_fds, NULL), 0);
        assert_int_equal(varlink_input_pending(&in), 4);
        feed(&in, ":\"y\"}", 6);
        expect_message(&in, 1000, "x", "y");
        assert_int_equal(varlink_input_pending(&in), 0);
        varlink_input_done(&in);
}

static void test_input_limit(void **state) {
        VarlinkInput in = {};
        json_t *m = NULL;
        int *fds = NULL;
        size_t n_fds = 0;
        const char *why = NULL;

        /* exactly max bytes before the NUL is fine */
        feed(&in, "{\"k\":\"1234\"}", 13); /* 12 + NUL */
        expect_message(&in, 12, "k", "1234");
        /* max bytes without NUL: wait for more */
        feed(&in, "{\"k\":\"12345", 11);
        feed(&in, "6", 1);
        assert_int_equal(varlink_input_next(&in, 12, &m, &fds, &n_fds, &why), 0);
        /* one more and it can no longer fit */
        feed(&in, "7", 1);
        assert_int_equal(varlink_input_next(&in, 12, &m, &fds, &n_fds, &why), -EMSGSIZE);
        assert_non_null(why);
        varlink_input_done(&in);

        /* a complete message over the limit */
        feed(&in, "{\"k\":\"12345\"}", 14);
        assert_int_equal(varlink_input_next(&in, 12, &m, &fds, &n_fds, NULL), -EMSGSIZE);
        varlink_input_done(&in);
}

static void test_input_malformed(void **state) {
        static const char *const bad[] = { "{", "[]", "\"s\"", "1", "null", "{\"a\":1} x", "", "{\"a\":\"\\u0000\"}" };
        VarlinkInput in = {};
        json_t *m = NULL;
        int *fds = NULL;
        size_t n_fds = 0;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *why = NULL;
                feed(&in, bad[i], strlen(bad[i]) + 1);
                assert_int_equal(varlink_input_next(&in, 1000, &m, &fds, &n_fds, &why), -EBADMSG);
                assert_non_null(why);
        }
        /* the bad messages were consumed: a good one still parses */
        feed(&in, "{\"method\":\"a.b.C\"}", 19);
        expect_message(&in, 1000, "method", "a.b.C");
        varlink_input_done(&in);
}

static int make_memfd(const char *text) {
        int fd = memfd_create("test", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(loop_write(fd, text, strlen(text)), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

static void test_input_fds(void **state) {
        VarlinkInput in = {};
        json_t *m = NULL;
        int *fds = NULL, fd;
        size_t n_fds = 0;
        char buf[16] = {};
        const char *m1 = "{\"n\":1}", *m2 = "{\"n\":2}";

        /* message 1 without fds, message 2 with one, delivered in one read together */
        feed(&in, m1, strlen(m1) + 1);
        fd = make_memfd("two");
        assert_int_equal(varlink_input_feed(&in, m2, strlen(m2) + 1, &fd, 1), 0);

        assert_int_equal(varlink_input_next(&in, 100, &m, &fds, &n_fds, NULL), 1);
        assert_int_equal(n_fds, 0);
        free(fds);
        json_decref(m);
        assert_int_equal(varlink_input_next(&in, 100, &m, &fds, &n_fds, NULL), 1);
        assert_int_equal(json_integer_value(json_object_get(m, "n")), 2);
        assert_int_equal(n_fds, 1);
        assert_int_equal(read(fds[0], buf, sizeof(buf) - 1), 3);
        assert_string_equal(buf, "two");
        safe_close(fds[0]);
        free(fds);
        json_decref(m);

        /* more fds than may wait are refused (and closed) */
        int many[VARLINK_INPUT_FDS_MAX + 1];
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = make_memfd("x");
        assert_int_equal(varlink_input_feed(&in, "{}", 2, many, ELEMENTSOF(many)), -E2BIG);
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                assert_int_equal(fcntl(many[i], F_GETFD), -1);
        varlink_input_done(&in);
}

static void test_output_over_socket(void **state) {
        VarlinkOutput out = {};
        VarlinkInput in = {};
        int sv[2], fds[2], *got = NULL;
        size_t n_got = 0;
        json_t *m1 = json_pack("{s:i}", "n", 1), *m2 = json_pack("{s:i}", "n", 2), *m = NULL;
        char buf[16] = {};

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        fds[0] = make_memfd("first");
        fds[1] = make_memfd("second");
        assert_int_equal(varlink_output_enqueue(&out, m1, NULL, 0), 0);
        assert_int_equal(varlink_output_enqueue(&out, m2, fds, 2), 0);
        assert_int_equal(out.bytes, 2 * 8);
        assert_int_equal(varlink_output_flush(&out, sv[0]), 0);
        assert_true(varlink_output_empty(&out));

        while (varlink_input_pending(&in) < 16)
                assert_true(varlink_input_read(&in, sv[1], 4096) > 0);
        assert_int_equal(varlink_input_next(&in, 100, &m, &got, &n_got, NULL), 1);
        assert_int_equal(n_got, 0);
        free(got);
        json_decref(m);
        assert_int_equal(varlink_input_next(&in, 100, &m, &got, &n_got, NULL), 1);
        assert_int_equal(json_integer_value(json_object_get(m, "n")), 2);
        assert_int_equal(n_got, 2);
        assert_int_equal(read(got[1], buf, sizeof(buf) - 1), 6);
        assert_string_equal(buf, "second");
        safe_close(got[0]);
        safe_close(got[1]);
        free(got);
        json_decref(m);

        /* EOF */
        safe_close(sv[0]);
        assert_int_equal(varlink_input_read(&in, sv[1], 4096), 0);
        safe_close(sv[1]);
        varlink_input_done(&in);
        json_decref(m1);
        json_decref(m2);
}

/* ---- message shapes ---- */

static int parse_call(const char *text, VarlinkCallMessage *ret) {
        json_t *m = json_loads(text, JSON_DECODE_ANY, NULL);
        const char *why = NULL;
        int r;

        assert_non_null(m);
        r = varlink_parse_call(m, ret, &why);
        if (r < 0)
                assert_non_null(why);
        json_decref(m);
        return r;
}

static void test_parse_call(void **state) {
        VarlinkCallMessage c;
        json_t *m;
        const char *why = NULL;

        m = json_loads("{\"method\":\"a.b.C\",\"parameters\":{\"x\":1},\"more\":true}", 0, NULL);
        assert_int_equal(varlink_parse_call(m, &c, &why), 0);
        assert_string_equal(c.method, "a.b.C");
        assert_true(c.more);
        assert_false(c.oneway);
        assert_int_equal(json_integer_value(json_object_get(c.parameters, "x")), 1);
        json_decref(m);

        assert_int_equal(parse_call("{\"method\":\"a.b.C\"}", &c), 0);
        assert_null(c.parameters);
        assert_int_equal(parse_call("{\"method\":\"a.b.C\",\"parameters\":null,\"oneway\":true}", &c), 0);
        assert_true(c.oneway);
        assert_int_equal(parse_call("{\"method\":\"a.b.C\",\"unknown\":[1]}", &c), 0);

        assert_int_equal(parse_call("[]", &c), -EBADMSG);
        assert_int_equal(parse_call("{}", &c), -EBADMSG);
        assert_int_equal(parse_call("{\"method\":1}", &c), -EBADMSG);
        assert_int_equal(parse_call("{\"method\":\"a.b.C\",\"parameters\":[]}", &c), -EBADMSG);
        assert_int_equal(parse_call("{\"method\":\"a.b.C\",\"more\":1}", &c), -EBADMSG);
        assert_int_equal(parse_call("{\"method\":\"a.b.C\",\"oneway\":\"x\"}", &c), -EBADMSG);
        assert_int_equal(parse_call("{\"method\":\"a.b.C\",\"more\":true,\"oneway\":true}", &c), -EBADMSG);
}

static void test_parse_reply(void **state) {
        static const struct {
                const char *text;
                int r;
        } cases[] = {
                { "{\"parameters\":{}}", 0 },
                { "{}", 0 },
                { "{\"parameters\":{},\"continues\":true}", 0 },
                { "{\"error\":\"a.b.E\",\"parameters\":{\"k\":1}}", 0 },
                { "{\"error\":1}", -EBADMSG },
                { "{\"parameters\":1}", -EBADMSG },
                { "{\"continues\":\"yes\"}", -EBADMSG },
                { "{\"error\":\"a.b.E\",\"continues\":true}", -EBADMSG },
                { "7", -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *m = json_loads(cases[i].text, JSON_DECODE_ANY, NULL);
                VarlinkReplyMessage p;
                const char *why = NULL;
                assert_non_null(m);
                assert_int_equal(varlink_parse_reply(m, &p, &why), cases[i].r);
                json_decref(m);
        }
}

static void test_names(void **state) {
        _cleanup_free_ char *iface = NULL;
        const char *member = NULL;

        assert_true(varlink_interface_name_is_valid("org.varlink.service"));
        assert_true(varlink_interface_name_is_valid("io.switchyard.Test"));
        assert_true(varlink_interface_name_is_valid("a-b.c2"));
        assert_false(varlink_interface_name_is_valid("single"));
        assert_false(varlink_interface_name_is_valid("a..b"));
        assert_false(varlink_interface_name_is_valid(".a.b"));
        assert_false(varlink_interface_name_is_valid("a.b-"));
        assert_false(varlink_interface_name_is_valid("1a.b"));
        assert_false(varlink_interface_name_is_valid("a.b_c"));
        assert_false(varlink_interface_name_is_valid(""));
        assert_true(varlink_member_name_is_valid("GetInfo"));
        assert_false(varlink_member_name_is_valid("getInfo"));
        assert_false(varlink_member_name_is_valid("Get_Info"));
        assert_false(varlink_member_name_is_valid(""));

        assert_int_equal(varlink_split_method("io.switchyard.Test.Echo", &iface, &member), 0);
        assert_string_equal(iface, "io.switchyard.Test");
        assert_string_equal(member, "Echo");
        assert_int_equal(varlink_split_method("Echo", &iface, &member), -EINVAL);
        assert_int_equal(varlink_split_method("io.Echo", &iface, &member), -EINVAL); /* "io" alone is no interface */
        assert_int_equal(varlink_split_method("a.b.echo", &iface, &member), -EINVAL);
        assert_int_equal(varlink_split_method("a.b.", &iface, &member), -EINVAL);
}

static void test_idl_scan(void **state) {
        char *iface = NULL, **methods = NULL;

        assert_int_equal(varlink_idl_scan("# comment with method Fake()\n"
                                          "interface org.example.Foo\n"
                                          "type T (method: string, other: int)\n"
                                          "# method Commented()\n"
                                          "method One(a: int) -> ()\n"
                                          "method Two() -> (method: string)\n"
                                          "error Bad (method: string)\n",
                                          &iface, &methods),
                         0);
        assert_string_equal(iface, "org.example.Foo");
        assert_non_null(methods[0]);
        assert_string_equal(methods[0], "One");
        assert_string_equal(methods[1], "Two");
        assert_null(methods[2]);
        free(iface);
        varlink_strv_free(methods);

        assert_int_equal(varlink_idl_scan("method One() -> ()\n", &iface, &methods), -EBADMSG);
        assert_int_equal(varlink_idl_scan("interface bad\n", &iface, &methods), -EBADMSG);
        assert_int_equal(varlink_idl_scan("interface a.b\nmethod lower() -> ()\n", &iface, &methods), -EBADMSG);
        assert_int_equal(varlink_idl_scan("", &iface, &methods), -EBADMSG);
}

static void test_json_get(void **state) {
        json_t *o = json_loads("{\"s\":\"x\",\"b\":true,\"i\":-3,\"u\":7,\"n\":null,\"f\":1.5}", 0, NULL);
        const char *s = NULL;
        bool b = false;
        int64_t i = 0;
        uint64_t u = 0;

        assert_int_equal(json_get_string(o, "s", &s), 0);
        assert_string_equal(s, "x");
        assert_int_equal(json_get_bool(o, "b", &b), 0);
        assert_true(b);
        assert_int_equal(json_get_int(o, "i", &i), 0);
        assert_int_equal(i, -3);
        assert_int_equal(json_get_uint(o, "u", &u), 0);
        assert_int_equal(u, 7);
        /* absent and null leave the value alone */
        s = "keep";
        assert_int_equal(json_get_string(o, "missing", &s), 0);
        assert_int_equal(json_get_string(o, "n", &s), 0);
        assert_string_equal(s, "keep");
        /* wrong types */
        assert_int_equal(json_get_string(o, "b", &s), -EINVAL);
        assert_int_equal(json_get_bool(o, "s", &b), -EINVAL);
        assert_int_equal(json_get_int(o, "f", &i), -EINVAL);
        assert_int_equal(json_get_uint(o, "i", &u), -EINVAL);
        json_decref(o);
}

/* ---- server and blocking client, in two processes ---- */

static const char demo_idl[] = "interface io.switchyard.Demo\n"
                               "method Echo(text: ?string) -> (text: ?string)\n"
                               "method Count(n: int) -> (i: int)\n"
                               "method Upper(fd: int) -> (fd: int)\n"
                               "method Fail() -> ()\n"
                               "method Errno() -> ()\n"
                               "method Later(ms: int) -> ()\n"
                               "method Missing() -> ()\n"
                               "error Oops (why: string)\n";

static int demo_echo(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        return varlink_call_reply(call, json_incref(p));
}

static int demo_count(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        int64_t n = 0;
        if (json_get_int(p, "n", &n) < 0 || n < 1)
                return varlink_call_error_invalid_parameter(call, "n");
        if (!(flags & VARLINK_CALL_MORE))
                return varlink_call_error(call, VARLINK_ERROR_EXPECTED_MORE, NULL);
        for (int64_t i = 0; i < n - 1; i++)
                assert_int_equal(varlink_call_notify(call, json_pack("{s:I}", "i", (json_int_t) i)), 0);
        return varlink_call_reply(call, json_pack("{s:I}", "i", (json_int_t) (n - 1)));
}

static int demo_upper(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        char buf[64] = {};
        int64_t idx = -1;
        int fd;
        ssize_t n;

        if (json_get_int(p, "fd", &idx) < 0 || idx < 0 || (fd = varlink_call_peek_fd(call, (size_t) idx)) < 0)
                return varlink_call_error_invalid_parameter(call, "fd");
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        for (ssize_t i = 0; i < n; i++)
                buf[i] = (char) toupper((unsigned char) buf[i]);
        return varlink_call_reply(call, json_pack("{s:i}", "fd", varlink_call_push_fd(call, make_memfd(buf))));
}

static int demo_fail(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        return varlink_call_error(call, "io.switchyard.Demo.Oops", json_pack("{s:s}", "why", "asked"));
}

static int demo_errno(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        return -EROFS;
}

static int demo_later_fire(sd_event_source *s, uint64_t usec, void *userdata) {
        VarlinkCall *call = userdata;
        (void) varlink_call_reply(call, NULL);
        varlink_call_unref(call);
        return 0;
}

static int demo_later(VarlinkCall *call, json_t *p, VarlinkCallFlags flags, void *ud) {
        int64_t ms = 0;
        sd_event *e = ud;
        if (json_get_int(p, "ms", &ms) < 0)
                return varlink_call_error_invalid_parameter(call, "ms");
        return sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, (uint64_t) ms * 1000, 0, demo_later_fire,
                                          varlink_call_ref(call));
}

static const VarlinkMethod demo_methods[] = {
        { "Echo", demo_echo }, { "Count", demo_count }, { "Upper", demo_upper },
        { "Fail", demo_fail }, { "Errno", demo_errno }, { "Later", demo_later },
};
static const VarlinkInterface demo_interface = {
        .name = "io.switchyard.Demo",
        .description = demo_idl,
        .methods = demo_methods,
        .n_methods = ELEMENTSOF(demo_methods),
};

static void run_demo_server(const char *path) {
        sd_event *e = NULL;
        VarlinkServer *s = NULL;
        int r;

        r = sd_event_new(&e);
        if (r >= 0)
                r = varlink_server_new(&s, e, NULL, e);
        if (r >= 0)
                r = varlink_server_add_interface(s, &demo_interface);
        if (r >= 0)
                r = varlink_server_listen_address(s, path, 0600);
        if (r >= 0)
                r = varlink_server_set_exit_on_idle(s, 200 * 1000);
        if (r >= 0)
                r = sd_event_loop(e);
        varlink_server_free(s);
        sd_event_unref(e);
        _exit(r < 0 ? 1 : 0);
}

static int count_handler(VarlinkClient *c, json_t *reply, bool continues, void *userdata) {
        int64_t *next = userdata, i = -1;
        assert_int_equal(json_get_int(reply, "i", &i), 0);
        assert_int_equal(i, *next);
        (*next)++;
        assert_true(continues == (i < 4));
        return 0;
}

/* The client borrows parameters: these wrappers drop the temporary. */
static int call_owned(VarlinkClient *c, const char *method, json_t *params, json_t **ret_reply, const char **ret_error) {
        int r = varlink_client_call(c, method, params, ret_reply, ret_error);
        json_decref(params);
        return r;
}

static int call_more_owned(VarlinkClient *c, const char *method, json_t *params, VarlinkReplyHandler handler,
                           void *userdata, const char **ret_error) {
        int r = varlink_client_call_more(c, method, params, handler, userdata, ret_error, NULL);
        json_decref(params);
        return r;
}

static void test_client_server(void **state) {
        char dir[] = "/tmp/test-varlink-XXXXXX";
        _cleanup_free_ char *path = NULL;
        VarlinkClient *c = NULL;
        json_t *reply = NULL;
        const char *error = NULL;
        int status, fd, r;
        pid_t pid;

        assert_non_null(mkdtemp(dir));
        path = path_join_root(dir, "/sock");
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                run_demo_server(path);

        for (int i = 0; i < 500 && access(path, F_OK) < 0; i++)
                usleep(10 * 1000);
        for (int i = 0; i < 100 && (r = varlink_client_connect(&c, path)) < 0; i++)
                usleep(10 * 1000);
        assert_int_equal(r, 0);

        /* plain call */
        assert_int_equal(call_owned(c, "io.switchyard.Demo.Echo", json_pack("{s:s}", "text", "hi"), &reply,
                                             &error),
                         0);
        assert_string_equal(json_string_value(json_object_get(reply, "text")), "hi");
        json_decref(reply);

        /* introspection */
        assert_int_equal(varlink_client_call(c, "org.varlink.service.GetInfo", NULL, &reply, NULL), 0);
        assert_int_equal(json_array_size(json_object_get(reply, "interfaces")), 2);
        json_decref(reply);

        /* streaming */
        int64_t next = 0;
        assert_int_equal(call_more_owned(c, "io.switchyard.Demo.Count", json_pack("{s:i}", "n", 5), count_handler, &next, &error),
                         0);
        assert_int_equal(next, 5);

        /* errors: named, and errno carried by InternalError */
        assert_int_equal(varlink_client_call(c, "io.switchyard.Demo.Fail", NULL, &reply, &error), -EBADE);
        assert_string_equal(error, "io.switchyard.Demo.Oops");
        assert_string_equal(json_string_value(json_object_get(reply, "why")), "asked");
        json_decref(reply);
        assert_int_equal(varlink_client_call(c, "io.switchyard.Demo.Errno", NULL, NULL, &error), -EROFS);
        assert_string_equal(error, VARLINK_ERROR_INTERNAL);
        assert_int_equal(varlink_client_call(c, "io.switchyard.Demo.Missing", NULL, NULL, &error), -EBADE);
        assert_string_equal(error, VARLINK_ERROR_METHOD_NOT_IMPLEMENTED);
        assert_int_equal(call_owned(c, "io.switchyard.Demo.Count", json_pack("{s:i}", "n", 2), NULL, &error),
                         -EBADE);
        assert_string_equal(error, VARLINK_ERROR_EXPECTED_MORE);
        assert_int_equal(varlink_client_call(c, "io.switchyard.Nope.X", NULL, NULL, &error), -EBADE);
        assert_string_equal(error, VARLINK_ERROR_INTERFACE_NOT_FOUND);

        /* fds both ways */
        fd = make_memfd("shout");
        assert_int_equal(varlink_client_push_fd(c, fd), 0);
        safe_close(fd);
        assert_int_equal(call_owned(c, "io.switchyard.Demo.Upper", json_pack("{s:i}", "fd", 0), &reply, NULL), 0);
        assert_int_equal(json_integer_value(json_object_get(reply, "fd")), 0);
        json_decref(reply);
        fd = varlink_client_take_fd(c, 0);
        assert_true(fd >= 0);
        assert_int_equal(varlink_client_take_fd(c, 0), -EBADF);
        assert_int_equal(varlink_client_take_fd(c, 1), -ENXIO);
        {
                char buf[16] = {};
                assert_int_equal(pread(fd, buf, sizeof(buf) - 1, 0), 5);
                assert_string_equal(buf, "SHOUT");
        }
        safe_close(fd);

        /* an answer from a timer arrives */
        assert_int_equal(call_owned(c, "io.switchyard.Demo.Later", json_pack("{s:i}", "ms", 50), NULL, NULL), 0);
        /* timeout */
        varlink_client_set_timeout(c, 100 * 1000);
        assert_int_equal(call_owned(c, "io.switchyard.Demo.Later", json_pack("{s:i}", "ms", 2000), NULL, NULL),
                         -ETIMEDOUT);
        /* the connection is out of step after a timeout and refuses further calls */
        assert_int_equal(varlink_client_call(c, "io.switchyard.Demo.Echo", NULL, NULL, NULL), -ENOTCONN);
        c = varlink_client_free(c);

        /* The server exits when idle (the timer of the abandoned call still runs, but it has no client). */
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        assert_int_equal(varlink_client_connect(&c, path), -ECONNREFUSED);
        unlink(path);
        rmdir(dir);
}

/* A "service" that answers every call with the given bytes, then closes. */
static pid_t fake_service(const char *path, const char *answer, size_t size) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        pid_t pid;

        assert_true(fd >= 0);
        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 4), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char buf[4096];
                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0 || read(c, buf, sizeof(buf)) <= 0)
                        _exit(1);
                if (size > 0 && loop_write(c, answer, size) < 0)
                        _exit(1);
                _exit(0);
        }
        safe_close(fd);
        return pid;
}

static void expect_client_failure(const char *answer, size_t size, int expected) {
        char dir[] = "/tmp/test-varlink-XXXXXX";
        _cleanup_free_ char *path = NULL;
        VarlinkClient *c = NULL;
        int status;
        pid_t pid;

        assert_non_null(mkdtemp(dir));
        path = path_join_root(dir, "/sock");
        pid = fake_service(path, answer, size);
        assert_int_equal(varlink_client_connect(&c, path), 0);
        varlink_client_set_timeout(c, 5 * 1000 * 1000);
        assert_int_equal(varlink_client_call(c, "a.b.C", NULL, NULL, NULL), expected);
        /* once out of step, the client refuses to go on */
        assert_int_equal(varlink_client_call(c, "a.b.C", NULL, NULL, NULL), -ENOTCONN);
        varlink_client_free(c);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        unlink(path);
        rmdir(dir);
}

static void test_client_bad_service(void **state) {
        static const char not_json[] = "not json", array[] = "[1]", cont[] = "{\"continues\":true}",
                          bad_error[] = "{\"error\":5}", partial[] = "{\"parameters\":{";

        expect_client_failure(not_json, sizeof(not_json), -EBADMSG);
        expect_client_failure(array, sizeof(array), -EBADMSG);
        expect_client_failure(cont, sizeof(cont), -EBADMSG); /* "continues" to a call without "more" */
        expect_client_failure(bad_error, sizeof(bad_error), -EBADMSG);
        expect_client_failure(partial, sizeof(partial) - 1, -ECONNRESET); /* closed mid-message */
        expect_client_failure(NULL, 0, -ECONNRESET);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_input_framing),  cmocka_unit_test(test_input_limit),
                cmocka_unit_test(test_input_malformed), cmocka_unit_test(test_input_fds),
                cmocka_unit_test(test_output_over_socket), cmocka_unit_test(test_parse_call),
                cmocka_unit_test(test_parse_reply),    cmocka_unit_test(test_names),
                cmocka_unit_test(test_idl_scan),       cmocka_unit_test(test_json_get),
                cmocka_unit_test(test_client_server),  cmocka_unit_test(test_client_bad_service),
        };
        log_setup("test-varlink");
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
