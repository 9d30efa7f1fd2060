/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "omaha-client-request.h"

static void check_escape(const char *in, const char *want) {
        _cleanup_free_ char *out = NULL;

        assert_int_equal(omaha_xml_escape(in, &out), 0);
        assert_string_equal(out, want);
}

static void test_escape(void **state) {
        check_escape("", "");
        check_escape("plain-1.2_3", "plain-1.2_3");
        check_escape("a<b", "a&lt;b");
        check_escape("a>b&c", "a&gt;b&amp;c");
        check_escape("foo-\xce\xa9", "foo-&#x3A9;");           /* Ω, the update_engine unit test vector */
        check_escape("say \"hi\"", "say &quot;hi&quot;");      /* deliberate deviation from update_engine */
        check_escape("\xf0\x9f\x9a\x82", "&#x1F682;");          /* 4-byte sequence */
        check_escape("bad\xff", "bad&#xFFFD;");                /* not UTF-8 */
        check_escape("\xc0\xaf", "&#xFFFD;&#xFFFD;");          /* overlong '/' */
        check_escape("a\tb\x01", "a&#x9;b&#xFFFD;");
}

static OmahaConfig test_config(void) {
        return (OmahaConfig) {
                .server = (char *) OMAHA_PRODUCTION_SERVER,
                .group = (char *) "alpha",
                .machine_alias = (char *) "",
                .version = (char *) "4459.0.0",
                .board = (char *) "amd64-usr",
                .appid = (char *) OMAHA_FLATCAR_APPID,
                .machine_id = (char *) "83ab5976451549a1afede31db82fd215",
                .boot_id = (char *) "{a9bb4db3-e555-4fb6-b9ae-6a85417e7d5b}",
                .oem_id = (char *) "",
                .oem_version = (char *) "",
                .arch = (char *) "x86_64",
        };
}

#define HEAD                                                                                                   \
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                                         \
        "<request protocol=\"3.0\" version=\"update_engine-0.4.10\" updaterversion=\"update_engine-0.4.10\" "  \
        "installsource=\"scheduler\" ismachine=\"1\">\n"                                                       \
        "    <os version=\"Chateau\" platform=\"CoreOS\" sp=\"4459.0.0_x86_64\"></os>\n"                       \
        "    <app appid=\"{e96281a6-d1af-4bde-9a0a-97b76e56dc57}\" version=\"4459.0.0\" track=\"alpha\" "      \
        "bootid=\"{a9bb4db3-e555-4fb6-b9ae-6a85417e7d5b}\" oem=\"\" oemversion=\"\" alephversion=\"4459.0.0\" " \
        "machineid=\"83ab5976451549a1afede31db82fd215\" machinealias=\"%s\" lang=\"en-US\" board=\"amd64-usr\" " \
        "hardware_class=\"\" delta_okay=\"false\" >\n"
#define TAIL "    </app>\n</request>\n"

static void test_error_event(void **state) {
        OmahaConfig c = test_config();
        _cleanup_free_ char *xml = NULL, *want = NULL;
        OmahaEvent e = omaha_event_error(34, 0);

        assert_int_equal(omaha_request_build(&c, &(OmahaRequest) { .event = &e, .alephversion = "4459.0.0" }, &xml), 0);
        assert_true(asprintf(&want, HEAD "        <event eventtype=\"3\" eventresult=\"0\" errorcode=\"34\"></event>\n" TAIL, "") > 0);
        assert_string_equal(xml, want);

        e = omaha_event_error(40, 0x10000000);
        assert_int_equal(e.result, 9);
        assert_int_equal(e.errorcode, 268435496u);
        e = omaha_event_error(34, 0x10000000);
        assert_int_equal(e.result, 0);
        assert_int_equal(e.errorcode, 268435490u); /* the value seen on self-hosted Nebraska (spec §1.6) */
}

static void test_alias_escaped(void **state) {
        OmahaConfig c = test_config();
        _cleanup_free_ char *xml = NULL, *want = NULL;

        c.machine_alias = (char *) "web \"1\" <&>";
        assert_int_equal(omaha_request_build(&c, &(OmahaRequest) { .ping = true, .alephversion = "4459.0.0" }, &xml), 0);
        assert_true(asprintf(&want, HEAD "        <ping active=\"1\"></ping>\n" TAIL,
                             "web &quot;1&quot; &lt;&amp;&gt;") > 0);
        assert_string_equal(xml, want);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_error_event),
                cmocka_unit_test(test_alias_escaped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
