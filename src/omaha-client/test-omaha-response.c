/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "omaha-client-response.h"

#define NEB_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response protocol=\"3.0\" server=\"nebraska\"><daystart elapsed_seconds=\"0\"></daystart><app appid=\"x\" status=\"ok\">"
#define NEB_TAIL "<event status=\"ok\"></event></app></response>"
#define UC_OK "<updatecheck status=\"ok\">"
#define URLS "<urls><url codebase=\"http://a/b\"></url><url codebase=\"https://c/d/\"></url></urls>"
#define PKG "<packages><package name=\"p.gz\" hash=\"x\" size=\"1234\" required=\"true\"></package><package name=\"second\" size=\"9\"></package></packages>"
#define ACT "<actions><action event=\"preinstall\" sha256=\"wrong\"></action><action event=\"postinstall\" sha256=\"stLG3U/o4Ar8TMHFwT/RWB0iNkaWOO6QtLrq6+AHBbA=\" DisablePayloadBackoff=\"true\" MaxFailureCountPerUrl=\"3\"></action></actions>"

static int parse(const char *s, OmahaResponse **ret, int *code) {
        _cleanup_free_ char *reason = NULL;
        *code = 0;
        return omaha_response_parse(s, strlen(s), ret, code, &reason);
}

static void expect_error(const char *doc, int want) {
        OmahaResponse *r = NULL;
        int code;

        assert_true(parse(doc, &r, &code) < 0);
        assert_null(r);
        assert_int_equal(code, want);
}

static void test_ok(void **state) {
        _cleanup_(omaha_response_freep) OmahaResponse *r = NULL;
        int code;

        assert_int_equal(parse(NEB_HEAD UC_OK URLS "<manifest version=\"4500.1.0\">" PKG ACT "</manifest></updatecheck>" NEB_TAIL, &r, &code), 0);
        assert_true(r->update);
        assert_string_equal(r->version, "4500.1.0");
        assert_int_equal(r->n_urls, 2);
        assert_string_equal(r->urls[0], "http://a/b/p.gz");
        assert_string_equal(r->urls[1], "https://c/d/p.gz");
        assert_int_equal(r->size, 1234);
        assert_string_equal(r->sha256, "stLG3U/o4Ar8TMHFwT/RWB0iNkaWOO6QtLrq6+AHBbA=");
        assert_true(r->disable_payload_backoff);
        assert_false(r->is_delta);
        assert_int_equal(r->max_failure_count_per_url, 3);
        assert_int_equal(r->poll_interval, 0);
}

static void test_noupdate(void **state) {
        _cleanup_(omaha_response_freep) OmahaResponse *r = NULL;
        int code;

        assert_int_equal(parse(NEB_HEAD "<updatecheck status=\"noupdate\" PollInterval=\"120\"></updatecheck>" NEB_TAIL, &r, &code), 0);
        assert_false(r->update);
        assert_int_equal(r->poll_interval, 120);
}

static void test_errors(void **state) {
        expect_error("", 30);
        expect_error("<?xml version=\"1.0\"?>\n", 31);
        expect_error("<response><app>", 31);
        expect_error("<!DOCTYPE r [<!ENTITY a \"aaaa\">]><response/>", 31);
        expect_error(NEB_HEAD NEB_TAIL, 34);                                         /* no updatecheck */
        expect_error(NEB_HEAD "<updatecheck></updatecheck>" NEB_TAIL, 34);           /* no status */
        expect_error(NEB_HEAD "<updatecheck status=\"error-internal\"></updatecheck>" NEB_TAIL, 34);
        expect_error(NEB_HEAD UC_OK URLS "</updatecheck>" NEB_TAIL, 34);             /* no manifest */
        expect_error(NEB_HEAD UC_OK "<manifest version=\"1\">" PKG ACT "</manifest></updatecheck>" NEB_TAIL, 34);
        expect_error(NEB_HEAD UC_OK "<urls><url codebase=\"\"></url></urls><manifest version=\"1\">" PKG ACT "</manifest></updatecheck>" NEB_TAIL, 34);
        expect_error(NEB_HEAD UC_OK URLS "<manifest version=\"1\">" ACT "</manifest></updatecheck>" NEB_TAIL, 34);
        expect_error(NEB_HEAD UC_OK URLS "<manifest version=\"1\"><packages><package name=\"p\" size=\"0\"></package></packages>" ACT "</manifest></updatecheck>" NEB_TAIL, 34);
        expect_error(NEB_HEAD UC_OK URLS "<manifest version=\"1\"><packages><package name=\"p\" size=\"12x\"></package></packages>" ACT "</manifest></updatecheck>" NEB_TAIL, 34);
        expect_error(NEB_HEAD UC_OK URLS "<manifest version=\"1\"><packages><package size=\"12\"></package></packages>" ACT "</manifest></updatecheck>" NEB_TAIL, 34);
        expect_error(NEB_HEAD UC_OK URLS "<manifest version=\"1\">" PKG "</manifest></updatecheck>" NEB_TAIL, 34);
        expect_error(NEB_HEAD UC_OK URLS "<manifest version=\"1\">" PKG "<actions><action event=\"postinstall\"></action></actions></manifest></updatecheck>" NEB_TAIL, 34);
        expect_error("<other><app><updatecheck status=\"noupdate\"/></app></other>", 34);
}

static void test_tolerant(void **state) {
        _cleanup_(omaha_response_freep) OmahaResponse *r = NULL;
        int code;

        /* Extra elements and attributes everywhere, self-closing tags, indentation, no XML declaration. */
        assert_int_equal(parse("<response protocol=\"3.0\" x=\"1\">\n <extra><app/></extra>\n"
                               " <app status=\"whatever\" appid=\"y\"><foo/>\n"
                               "  <updatecheck status=\"ok\" PollInterval=\"junk\" other=\"1\"><urls><url codebase=\"http://h\"/><bogus/></urls>"
                               "<manifest version=\"9.9.9\" is_target=\"true\"><packages><package size=\"5\" name=\"n\"/></packages>"
                               "<actions><action event=\"postinstall\" sha256=\"s\" IsDeltaPayload=\"True\"/></actions></manifest>"
                               "</updatecheck></app></response>", &r, &code), 0);
        assert_string_equal(r->urls[0], "http://h/n");
        assert_int_equal(r->size, 5);
        assert_false(r->is_delta); /* only exactly "true" counts */
        assert_int_equal(r->poll_interval, 0);
        assert_int_equal(r->max_failure_count_per_url, 10);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ok),
                cmocka_unit_test(test_noupdate),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_tolerant),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
