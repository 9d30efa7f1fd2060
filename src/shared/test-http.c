/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include <curl/curl.h>

#include "http.h"

static void test_errno_from_curl(void **state) {
        assert_int_equal(http_errno_from_curl(CURLE_OK, 0), 0);
        assert_int_equal(http_errno_from_curl(CURLE_COULDNT_CONNECT, 0), -ECONNREFUSED);
        assert_int_equal(http_errno_from_curl(CURLE_COULDNT_CONNECT, ENETUNREACH), -ENETUNREACH);
        assert_int_equal(http_errno_from_curl(CURLE_COULDNT_CONNECT, 100000), -ECONNREFUSED);
        assert_int_equal(http_errno_from_curl(CURLE_COULDNT_RESOLVE_HOST, 0), -EHOSTUNREACH);
        assert_int_equal(http_errno_from_curl(CURLE_COULDNT_RESOLVE_PROXY, 0), -EHOSTUNREACH);
        assert_int_equal(http_errno_from_curl(CURLE_OPERATION_TIMEDOUT, 0), -ETIMEDOUT);
        assert_int_equal(http_errno_from_curl(CURLE_PARTIAL_FILE, 0), -ECONNRESET);
        assert_int_equal(http_errno_from_curl(CURLE_GOT_NOTHING, 0), -ECONNRESET);
        assert_int_equal(http_errno_from_curl(CURLE_RECV_ERROR, 0), -ECONNRESET);
        assert_int_equal(http_errno_from_curl(CURLE_PEER_FAILED_VERIFICATION, 0), -EPROTO);
        assert_int_equal(http_errno_from_curl(CURLE_SSL_CONNECT_ERROR, 0), -EPROTO);
        assert_int_equal(http_errno_from_curl(CURLE_WEIRD_SERVER_REPLY, 0), -EPROTO);
        assert_int_equal(http_errno_from_curl(CURLE_UNSUPPORTED_PROTOCOL, 0), -EPROTONOSUPPORT);
        assert_int_equal(http_errno_from_curl(CURLE_TOO_MANY_REDIRECTS, 0), -ELOOP);
        assert_int_equal(http_errno_from_curl(CURLE_FILESIZE_EXCEEDED, 0), -EFBIG);
        assert_int_equal(http_errno_from_curl(CURLE_RANGE_ERROR, 0), -ERANGE);
        assert_int_equal(http_errno_from_curl(CURLE_OUT_OF_MEMORY, 0), -ENOMEM);
        assert_int_equal(http_errno_from_curl(CURLE_URL_MALFORMAT, 0), -EINVAL);
        assert_int_equal(http_errno_from_curl(CURLE_SSL_CACERT_BADFILE, 0), -EINVAL);
        assert_int_equal(http_errno_from_curl(CURLE_WRITE_ERROR, 0), -ECANCELED);
        assert_int_equal(http_errno_from_curl(CURLE_LOGIN_DENIED, 0), -EACCES);
        /* Connect errno is only used for connect failures. */
        assert_int_equal(http_errno_from_curl(CURLE_RECV_ERROR, ENETUNREACH), -ECONNRESET);
        /* Anything unlisted is a plain I/O error, never success. */
        assert_int_equal(http_errno_from_curl(CURLE_FTP_WEIRD_PASV_REPLY, 0), -EIO);
        assert_int_equal(http_errno_from_curl(9999, 0), -EIO);
}

static void test_parse_content_range(void **state) {
        uint64_t first, last, total;

        assert_int_equal(http_parse_content_range("bytes 100-199/1000", &first, &last, &total), 0);
        assert_true(first == 100 && last == 199 && total == 1000);
        assert_int_equal(http_parse_content_range("  Bytes 0-0/1 ", &first, &last, &total), 0);
        assert_true(first == 0 && last == 0 && total == 1);
        assert_int_equal(http_parse_content_range("bytes 5-9/*", &first, &last, &total), 0);
        assert_true(first == 5 && last == 9 && total == UINT64_MAX);
        assert_int_equal(
                http_parse_content_range("bytes 4294967296-8589934591/8589934592", &first, &last, &total),
                0);
        assert_true(first == 4294967296ULL && last == 8589934591ULL && total == 8589934592ULL);

        first = last = total = 7;
        assert_int_equal(http_parse_content_range("bytes */1000", &first, &last, &total), -EBADMSG);
        assert_true(first == 7 && last == 7 && total == 7); /* untouched on failure */
        assert_int_equal(http_parse_content_range("bytes 10-5/100", &first, &last, &total), -EBADMSG);
        assert_int_equal(http_parse_content_range("bytes 0-100/100", &first, &last, &total), -EBADMSG);
        assert_int_equal(http_parse_content_range("bytes=0-1/2", &first, &last, &total), -EBADMSG);
        assert_int_equal(http_parse_content_range("items 0-1/2", &first, &last, &total), -EBADMSG);
        assert_int_equal(http_parse_content_range("bytes 0-1/2x", &first, &last, &total), -EBADMSG);
        assert_int_equal(http_parse_content_range("bytes -1-2/3", &first, &last, &total), -EBADMSG);
        assert_int_equal(http_parse_content_range("bytes 0-1", &first, &last, &total), -EBADMSG);
        assert_int_equal(http_parse_content_range("bytes 0-99999999999999999999/*", &first, &last, &total),
                         -EBADMSG);
        assert_int_equal(http_parse_content_range("", &first, &last, &total), -EBADMSG);
        assert_int_equal(http_parse_content_range(NULL, &first, &last, &total), -EBADMSG);
}

static void test_parse_status_line(void **state) {
        long s = 0;

        assert_int_equal(http_parse_status_line("HTTP/1.1 206 Partial Content", &s), 0);
        assert_int_equal(s, 206);
        assert_int_equal(http_parse_status_line("HTTP/2 200", &s), 0);
        assert_int_equal(s, 200);
        assert_int_equal(http_parse_status_line("HTTP/1.0 404 Not Found\r\n", &s), 0);
        assert_int_equal(s, 404);

        s = 1;
        assert_int_equal(http_parse_status_line("HTTP/1.1 20 OK", &s), -EBADMSG);
        assert_int_equal(http_parse_status_line("HTTP/1.1 2000 OK", &s), -EBADMSG);
        assert_int_equal(http_parse_status_line("HTTP/1.1 099 Huh", &s), -EBADMSG);
        assert_int_equal(http_parse_status_line("ICY 200 OK", &s), -EBADMSG);
        assert_int_equal(http_parse_status_line("HTTP/1.1", &s), -EBADMSG);
        assert_int_equal(s, 1);
}

static void test_request_validation(void **state) {
        HttpResponse resp;
        HttpHeader bad_name = {"X Bad", "v"}, bad_value = {"X-Ok", "a\r\nInjected: 1"};

        /* All of these are refused before any network traffic. */
        assert_int_equal(http_perform(&(HttpRequest){.url = "ftp://example.invalid/x"}, NULL, NULL, &resp),
                         -EPROTONOSUPPORT);
        assert_non_null(strstr(resp.error, "scheme"));
        http_response_done(&resp);

        assert_int_equal(http_perform(&(HttpRequest){.url = "http://127.0.0.1:9/", .https_only = true}, NULL,
                                      NULL, &resp),
                         -EPROTONOSUPPORT);
        assert_int_equal(resp.status, 0);
        http_response_done(&resp);

        assert_int_equal(
                http_perform(&(HttpRequest){.url = "http://127.0.0.1:9/", .username = "u", .password = "p"},
                             NULL, NULL, &resp),
                -EPERM);
        assert_non_null(strstr(resp.error, "credentials"));
        http_response_done(&resp);

        assert_int_equal(
                http_perform(
                        &(HttpRequest){.url = "http://127.0.0.1:9/", .headers = &bad_name, .n_headers = 1},
                        NULL, NULL, &resp),
                -EINVAL);
        http_response_done(&resp);
        assert_int_equal(
                http_perform(
                        &(HttpRequest){.url = "http://127.0.0.1:9/", .headers = &bad_value, .n_headers = 1},
                        NULL, NULL, &resp),
                -EINVAL);
        http_response_done(&resp);
        assert_int_equal(http_perform(&(HttpRequest){.url = "http://127.0.0.1:9/",
                                                     .method = "GET",
                                                     .body = "x",
                                                     .body_size = 1},
                                      NULL, NULL, &resp),
                         -EINVAL);
        http_response_done(&resp);
        assert_int_equal(http_perform(&(HttpRequest){.url = "http://127.0.0.1:9/", .method = "GET /x"}, NULL,
                                      NULL, &resp),
                         -EINVAL);
        http_response_done(&resp);
        assert_int_equal(
                http_perform(&(HttpRequest){.url = "https://127.0.0.1:9/", .ca_file = "/nonexistent/ca.pem"},
                             NULL, NULL, &resp),
                -ENOENT);
        assert_non_null(strstr(resp.error, "/nonexistent/ca.pem"));
        http_response_done(&resp);
        assert_int_equal(http_perform(&(HttpRequest){.url = NULL}, NULL, NULL, &resp), -EINVAL);
        http_response_done(&resp);

        /* http_fetch() insists on a cap. */
        char *body = NULL;
        assert_int_equal(http_fetch(&(HttpRequest){.url = "http://127.0.0.1:9/"}, &body, NULL, &resp),
                         -EINVAL);
        assert_null(body);
        http_response_done(&resp);
}

static void test_many_empty(void **state) {
        assert_int_equal(http_perform_many(NULL, 0, NULL, NULL, NULL, NULL), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_errno_from_curl),   cmocka_unit_test(test_parse_content_range),
                cmocka_unit_test(test_parse_status_line), cmocka_unit_test(test_request_validation),
                cmocka_unit_test(test_many_empty),
        };
        assert_int_equal(http_global_init(), 0);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
