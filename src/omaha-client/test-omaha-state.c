/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "test-helpers.h"

#include "fileio.h"
#include "omaha-client-state.h"

static void test_version_compare(void **state) {
        assert_true(omaha_version_compare("4459.0.0", "4487.0.0") < 0);
        assert_true(omaha_version_compare("4487.0.0", "4459.0.0") > 0);
        assert_true(omaha_version_compare("4459.2.1", "4459.10.0") < 0);
        assert_int_equal(omaha_version_compare("1.02.3", "1.2.3"), 0);
        assert_true(omaha_version_compare("1.2", "1.2.1") < 0);
        assert_true(omaha_version_compare("", "0.0.1") < 0);
        assert_int_equal(omaha_version_compare("3510.2.0", "3510.2.0"), 0);
}

static void test_roundtrip(void **state) {
        char tmpl[] = "/tmp/test-omaha-state-XXXXXX";
        OmahaConfig c = {};
        _cleanup_(omaha_state_freep) OmahaState *s = NULL, *t = NULL;
        _cleanup_free_ char *v = NULL, *path = NULL;

        assert_non_null(mkdtemp(tmpl));
        c.state_dir = tmpl;
        assert_int_equal(omaha_state_load(&c, &s), 0);
        s->payload_attempts = 3;
        s->backoff_expiry = 12345;
        assert_int_equal(omaha_state_set_string(&s->staged_version, "4487.0.0"), 0);
        assert_int_equal(omaha_state_add_rolled_back(s, "4480.0.0"), 1);
        assert_int_equal(omaha_state_add_rolled_back(s, "4480.0.0"), 0);
        assert_int_equal(omaha_state_save(s), 0);
        assert_int_equal(omaha_pref_set(s, "previous-version", "4459.0.0", 8), 0);

        assert_int_equal(omaha_state_load(&c, &t), 0);
        assert_int_equal(t->payload_attempts, 3);
        assert_int_equal(t->backoff_expiry, 12345);
        assert_string_equal(t->staged_version, "4487.0.0");
        assert_true(omaha_state_is_rolled_back(t, "4480.0.0"));
        assert_false(omaha_state_is_rolled_back(t, "4487.0.0"));
        assert_int_equal(omaha_pref_get(t, "previous-version", &v), 1);
        assert_string_equal(v, "4459.0.0");

        /* A damaged state file is set aside, not fatal. */
        assert_true(asprintf(&path, "%s/state.json", tmpl) > 0);
        assert_int_equal(write_string_file_atomic(path, "{\"payload_attempts\": \"x\"}", 0644), 0);
        t = omaha_state_free(t);
        assert_int_equal(omaha_state_load(&c, &t), 0);
        assert_int_equal(t->payload_attempts, 0);

        assert_int_equal(system(strjoina("rm -rf ", tmpl)), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_version_compare),
                cmocka_unit_test(test_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
