/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <unistd.h>

#include "test-helpers.h"

#include "omaha-client-report.h"

static OmahaStatus sample(void) {
        OmahaStatus s;

        omaha_status_init(&s);
        s.code = OMAHA_STATUS_DOWNLOADING;
        s.last_checked_time = 1700000000;
        s.progress = 0.25;
        strcpy(s.new_version, "4500.0.0");
        s.new_size = 4096;
        s.bytes_done = 1024;
        s.bytes_total = 4096;
        s.last_error = 2503;
        strcpy(s.last_error_message, "a \"quoted\" message\nwith a newline");
        s.next_check_usec = 123;
        s.jobs_started = 3;
        s.jobs_finished = 2;
        return s;
}

static void test_status_round_trip(void **state) {
        OmahaStatus s = sample(), back;
        char error[256] = "";
        json_t *o = omaha_status_to_json(&s);

        assert_non_null(o);
        memset(&back, 0xff, sizeof back);
        assert_int_equal(omaha_status_from_json(o, &back, error, sizeof error), 0);
        json_decref(o);
        assert_int_equal(back.code, s.code);
        assert_int_equal(back.last_checked_time, s.last_checked_time);
        assert_true(back.progress == s.progress);
        assert_string_equal(back.new_version, s.new_version);
        assert_int_equal(back.new_size, s.new_size);
        assert_int_equal(back.bytes_done, s.bytes_done);
        assert_int_equal(back.bytes_total, s.bytes_total);
        assert_int_equal(back.last_error, s.last_error);
        assert_string_equal(back.last_error_message, s.last_error_message);
        assert_int_equal(back.next_check_usec, s.next_check_usec);
        assert_int_equal(back.jobs_started, s.jobs_started);
        assert_int_equal(back.jobs_finished, s.jobs_finished);
}

/* One field of a good status changed to value (NULL: removed); the error must name the field. */
static void expect_bad_field(const char *field, json_t *value, const char *expected) {
        OmahaStatus s = sample(), out = sample();
        json_t *o = omaha_status_to_json(&s);
        char error[256] = "";

        if (value)
                json_object_set_new(o, field, value);
        else
                json_object_del(o, field);
        assert_int_equal(omaha_status_from_json(o, &out, error, sizeof error), -EBADMSG);
        json_decref(o);
        if (!strstr(error, expected))
                fail_msg("error \"%s\" does not contain \"%s\"", error, expected);
        assert_int_equal(out.jobs_started, 3); /* unchanged */
}

static void test_status_strict(void **state) {
        char long_version[80];

        memset(long_version, 'x', sizeof long_version - 1);
        long_version[sizeof long_version - 1] = '\0';
        expect_bad_field("current_operation", json_string("UPDATE_STATUS_EXPLODING"), "\"current_operation\"");
        expect_bad_field("current_operation", NULL, "\"current_operation\"");
        expect_bad_field("progress", json_real(1.5), "\"progress\"");
        expect_bad_field("progress", json_string("0.5"), "\"progress\"");
        expect_bad_field("new_version", json_string(long_version), "\"new_version\" is longer than 63 bytes");
        expect_bad_field("new_version", json_integer(4), "\"new_version\" is not a string");
        expect_bad_field("new_size", json_integer(-1), "\"new_size\" is not a non-negative integer");
        expect_bad_field("bytes", json_real(1.0), "\"bytes\"");
        expect_bad_field("last_error", json_integer(-5), "\"last_error\"");
        expect_bad_field("last_error_message", json_null(), "\"last_error_message\"");
        expect_bad_field("jobs_finished", NULL, "\"jobs_finished\"");
        expect_bad_field("surprise", json_true(), "unknown status field \"surprise\"");
}

static int parse(const char *line, OmahaStatus *st, OmahaJobResult *res, char *error) {
        return omaha_report_parse_line(line, strlen(line), st, res, error, 256);
}

static void test_report_lines(void **state) {
        OmahaStatus s = sample(), st;
        OmahaJobResult res = { .http_status = 200, .poll_interval = 1800 }, got = {};
        char error[256], buf[OMAHA_REPORT_LINE_MAX * 2];
        int pipefd[2];
        ssize_t n;
        char *nl;

        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        assert_int_equal(omaha_report_write_status(pipefd[1], &s), 0);
        assert_int_equal(omaha_report_write_result(pipefd[1], &res), 0);
        close(pipefd[1]);
        n = read(pipefd[0], buf, sizeof buf - 1);
        close(pipefd[0]);
        assert_true(n > 0);
        buf[n] = '\0';

        /* Two lines, each one object. */
        nl = strchr(buf, '\n');
        assert_non_null(nl);
        assert_int_equal(omaha_report_parse_line(buf, (size_t) (nl - buf), &st, &got, error, sizeof error),
                         OMAHA_REPORT_STATUS);
        assert_string_equal(st.last_error_message, s.last_error_message);
        assert_int_equal(st.bytes_done, 1024);
        assert_int_equal(strlen(nl + 1), (size_t) (strchr(nl + 1, '\n') - (nl + 1)) + 1);
        assert_int_equal(omaha_report_parse_line(nl + 1, strlen(nl + 1) - 1, &st, &got, error, sizeof error),
                         OMAHA_REPORT_RESULT);
        assert_int_equal(got.http_status, 200);
        assert_int_equal(got.poll_interval, 1800);
}

static void expect_bad_line(const char *line, const char *expected) {
        OmahaStatus st;
        OmahaJobResult res;
        char error[256] = "";

        assert_int_equal(parse(line, &st, &res, error), -EBADMSG);
        if (!strstr(error, expected))
                fail_msg("line %s: error \"%s\" does not contain \"%s\"", line, error, expected);
}

static void test_report_garbage(void **state) {
        expect_bad_line("garbage", "not JSON");
        expect_bad_line("", "not JSON");
        expect_bad_line("{\"result\": {\"http_status\": 200, \"poll_interval\": 0}} trailing", "not JSON");
        expect_bad_line("[1, 2]", "exactly one of");
        expect_bad_line("{}", "exactly one of");
        expect_bad_line("{\"result\": {\"http_status\": 200, \"poll_interval\": 0}, \"status\": {}}", "exactly one of");
        expect_bad_line("{\"hello\": 1}", "unknown message \"hello\"");
        expect_bad_line("{\"result\": {\"http_status\": \"200\", \"poll_interval\": 0}}", "result is not");
        expect_bad_line("{\"result\": {\"http_status\": 200}}", "result is not");
        expect_bad_line("{\"result\": {\"http_status\": 1000, \"poll_interval\": 0}}", "outside 0..999");
        expect_bad_line("{\"result\": {\"http_status\": 200, \"poll_interval\": -1}}", "negative poll interval");
        expect_bad_line("{\"status\": {\"current_operation\": \"UPDATE_STATUS_IDLE\"}}", "status field");
        expect_bad_line("{\"status\": 7}", "status is not a JSON object");
        expect_bad_line("{\"result\": 1, \"result\": 2}", "not JSON");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_round_trip),
                cmocka_unit_test(test_status_strict),
                cmocka_unit_test(test_report_lines),
                cmocka_unit_test(test_report_garbage),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
