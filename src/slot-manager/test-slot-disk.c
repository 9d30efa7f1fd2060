/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "slot-manager-disk.h"

static void check_cmdline(const char *cmdline, const char *kind, const char *value) {
        char *k = NULL, *v = NULL;
        assert_int_equal(cmdline_find_usr(cmdline, &k, &v), 0);
        if (!kind) {
                assert_null(k);
                assert_null(v);
                return;
        }
        assert_string_equal(k, kind);
        assert_string_equal(v, value);
        free(k);
        free(v);
}

static void test_cmdline(void **state) {
        /* Flatcar's verity command line (grub.cfg): mount.usr names the mapper device, verity.usr the slot */
        check_cmdline("BOOT_IMAGE=/flatcar/vmlinuz-a mount.usr=/dev/mapper/usr "
                      "verity.usr=PARTUUID=7130c94a-213a-4e5a-8e26-6cce9662f132 rootflags=rw mount.usrflags=ro\n",
                      "PARTUUID", "7130c94a-213a-4e5a-8e26-6cce9662f132");
        /* without verity */
        check_cmdline("mount.usr=PARTUUID=e03dd35c-7c2d-4a47-b3fe-27f15780a57c root=LABEL=ROOT", "PARTUUID",
                      "e03dd35c-7c2d-4a47-b3fe-27f15780a57c");
        /* the fixed-slot menu entries, and usr= */
        check_cmdline("usr=PARTLABEL=USR-B console=ttyS0", "PARTLABEL", "USR-B");
        /* the last one wins; quotes are removed */
        check_cmdline("usr=PARTLABEL=USR-A \"usr=PARTLABEL=USR-B\"", "PARTLABEL", "USR-B");
        /* look-alikes do not count */
        check_cmdline("xusr=PARTUUID=1 usrx=PARTUUID=2 mount.usrflags=ro usr=/dev/sda3 verity.usrhash=abc", NULL, NULL);
        check_cmdline("", NULL, NULL);
        check_cmdline("   \n", NULL, NULL);
}

static void test_slot_names(void **state) {
        assert_int_equal(slot_from_string("a"), SLOT_A);
        assert_int_equal(slot_from_string("B"), SLOT_B);
        assert_int_equal(slot_from_string("USR-A"), SLOT_A);
        assert_int_equal(slot_from_string("usr-b"), SLOT_B);
        assert_int_equal(slot_from_string("ROOT-B"), SLOT_B);
        assert_int_equal(slot_from_string("c"), _SLOT_INVALID);
        assert_int_equal(slot_from_string("USR-"), _SLOT_INVALID);
        assert_int_equal(slot_from_string("USR-AB"), _SLOT_INVALID);
        assert_int_equal(slot_from_string(""), _SLOT_INVALID);
        assert_int_equal(slot_from_string(NULL), _SLOT_INVALID);
        assert_string_equal(slot_to_string(SLOT_A), "a");
        assert_string_equal(slot_to_string(SLOT_B), "b");
        assert_null(slot_to_string(_SLOT_INVALID));
        assert_int_equal(slot_other(SLOT_A), SLOT_B);
        assert_int_equal(disk_set_usr_type("not-a-guid"), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cmdline),
                cmocka_unit_test(test_slot_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
