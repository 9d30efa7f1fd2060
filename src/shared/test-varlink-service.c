/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-helpers.h"
#include "varlink-service.h"

static const VarlinkServerInfo info = {
        .vendor = "switchyard", .product = "test", .version = "0", .url = "https://example.invalid"};
static const VarlinkMethod methods[] = {{"Ping", NULL}};
static const VarlinkInterface interface = {
        .name = "io.switchyard.Test",
        .description = "interface io.switchyard.Test\nmethod Ping() -> ()\n",
        .methods = methods,
        .n_methods = 1,
};

static char dir[] = "/tmp/test-varlink-service-XXXXXX";

static void socket_path(char *buf, size_t size, const char *name) {
        snprintf(buf, size, "%s/%s", dir, name);
}

static void test_listen_path_and_idle_exit(void **state) {
        char path[256];
        struct stat st;
        (void) state;

        socket_path(path, sizeof path, "idle");
        VarlinkService svc = {.info = &info, .interface = &interface, .listen_path = path, .mode = 0640,
                              .idle_usec = 50000, .idle_when_listening = true};
        assert_int_equal(varlink_service_run(&svc), 0); /* returns once idle */
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0640);
}

static void test_no_socket_is_an_error(void **state) {
        (void) state;
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        VarlinkService svc = {.info = &info, .interface = &interface, .idle_usec = 50000};
        assert_int_equal(varlink_service_run(&svc), -EBADF);
}

static void test_default_path_and_signal(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(varlink_server_freep) VarlinkServer *server = NULL;
        char path[256];
        struct stat st;
        (void) state;

        unsetenv("LISTEN_FDS");
        socket_path(path, sizeof path, "default");
        /* idle_usec without idle_when_listening: only a socket-activated service exits when idle, so
         * only the signal ends this loop. */
        VarlinkService svc = {.info = &info, .interface = &interface, .default_path = path, .mode = 0600,
                              .idle_usec = 1};
        assert_int_equal(varlink_service_open(&svc, &event, &server), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(raise(SIGTERM), 0); /* blocked: stays pending until the loop takes it */
        assert_int_equal(sd_event_loop(event), 0);
}

static void test_bad_interface(void **state) {
        char path[256];
        (void) state;
        static const VarlinkInterface bad = {
                .name = "io.switchyard.Other",
                .description = "interface io.switchyard.Test\nmethod Ping() -> ()\n",
                .methods = methods,
                .n_methods = 1,
        };
        socket_path(path, sizeof path, "bad");
        VarlinkService svc = {.info = &info, .interface = &bad, .listen_path = path, .mode = 0600};
        assert_true(varlink_service_run(&svc) < 0);
        assert_int_equal(access(path, F_OK), -1);
}

static int setup(void **state) {
        (void) state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        char path[256];
        (void) state;
        const char *names[] = {"idle", "default", "bad"};
        for (size_t i = 0; i < 3; i++) {
                socket_path(path, sizeof path, names[i]);
                (void) unlink(path);
        }
        return rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_listen_path_and_idle_exit),
                cmocka_unit_test(test_no_socket_is_an_error),
                cmocka_unit_test(test_default_path_and_signal),
                cmocka_unit_test(test_bad_interface),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
