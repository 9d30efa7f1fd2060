/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "test-helpers.h"

#include "fileio.h"
#include "omaha-client-config.h"

static char root[] = "/tmp/test-omaha-config-XXXXXX";

static void put(const char *rel, const char *text) {
        _cleanup_free_ char *p = path_join_root(root, rel), *dir = NULL;

        assert_non_null(p);
        dir = strndup(p, strrchr(p, '/') - p);
        assert_int_equal(mkdir_p(dir, 0755), 0);
        assert_int_equal(write_string_file_atomic(p, text, 0644), 0);
}

static int setup(void **state) {
        assert_non_null(mkdtemp(root));
        put("/etc/machine-id", "83AB5976451549A1AFEDE31DB82FD215\n");
        put("/proc/sys/kernel/random/boot_id", "a9bb4db3-e555-4fb6-b9ae-6a85417e7d5b\n");
        put("/usr/share/flatcar/release",
            "FLATCAR_RELEASE_VERSION=4459.0.0\nFLATCAR_RELEASE_BOARD=arm64-usr\nGROUP=from-release\n");
        return 0;
}

static int teardown(void **state) {
        assert_int_equal(system(strjoina("rm -rf ", root)), 0);
        return 0;
}

static void test_defaults_and_identity(void **state) {
        _cleanup_(omaha_config_freep) OmahaConfig *c = NULL;

        put("/usr/share/flatcar/update.conf", "");
        put("/etc/flatcar/update.conf", "");
        assert_int_equal(omaha_config_load(root, &c), 0);
        assert_string_equal(c->server, OMAHA_PRODUCTION_SERVER);
        assert_false(c->server_disabled);
        assert_string_equal(c->group, "from-release"); /* the release file is the third in the chain */
        assert_string_equal(c->appid, OMAHA_FLATCAR_APPID);
        assert_string_equal(c->board, "arm64-usr");
        assert_string_equal(c->machine_id, "83ab5976451549a1afede31db82fd215");
        assert_string_equal(c->boot_id, "{a9bb4db3-e555-4fb6-b9ae-6a85417e7d5b}");
        assert_string_equal(c->oem_id, "");
        assert_null(c->download_user);
        assert_int_equal(c->check_interval_sec, 2700);
        assert_int_equal(c->first_check_delay_sec, 420);
        assert_false(c->allow_downgrade);
        assert_int_equal(omaha_config_error_flags(c), 0);
}

static void test_chain(void **state) {
        _cleanup_(omaha_config_freep) OmahaConfig *c = NULL;

        put("/usr/share/flatcar/update.conf", "SERVER=https://usr.example/v1/update/\nGROUP=stable\n");
        /* the first file that has the key wins; outer quotes go; "#GROUP" is a key of its own */
        put("/etc/flatcar/update.conf", "GROUP='beta'\n#GROUP=alpha\nMACHINE_ALIAS=\"a b\"\nDOWNLOAD_USER=u\n");
        put("/usr/share/oem/oem-release", "ID=qemu\nVERSION_ID=1.2\n");
        put("/etc/switchyard/omaha-client.conf", "ALLOW_DOWNGRADE=yes\nCHECK_INTERVAL_SEC=60\n");
        assert_int_equal(omaha_config_load(root, &c), 0);
        assert_string_equal(c->server, "https://usr.example/v1/update/");
        assert_string_equal(c->group, "beta");
        assert_string_equal(c->machine_alias, "a b");
        assert_string_equal(c->download_user, "u");
        assert_string_equal(c->oem_id, "qemu");
        assert_string_equal(c->oem_version, "1.2");
        assert_true(c->allow_downgrade);
        assert_int_equal(c->check_interval_sec, 60);
        assert_int_equal(omaha_config_error_flags(c), 0x10000000u);
}

static void test_disabled_and_bad(void **state) {
        _cleanup_(omaha_config_freep) OmahaConfig *c = NULL;

        put("/etc/flatcar/update.conf", "SERVER=disabled\n");
        put("/etc/switchyard/omaha-client.conf", "");
        assert_int_equal(omaha_config_load(root, &c), 0);
        assert_true(c->server_disabled);
        c = omaha_config_free(c);

        put("/etc/switchyard/omaha-client.conf", "CHECK_INTERVAL_SEC=soon\n");
        assert_true(omaha_config_load(root, &c) < 0);
        put("/etc/switchyard/omaha-client.conf", "ALLOW_DOWNGRADE=maybe\n");
        assert_true(omaha_config_load(root, &c) < 0);
        put("/etc/switchyard/omaha-client.conf", "");
        put("/etc/machine-id", "not an id\n");
        assert_true(omaha_config_load(root, &c) < 0);
        put("/etc/machine-id", "83ab5976451549a1afede31db82fd215\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults_and_identity),
                cmocka_unit_test(test_chain),
                cmocka_unit_test(test_disabled_and_bad),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
