/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "hardening-parse.h"

#define S(x) x, strlen(x)

static const char passwd[] = "root:x:0:0:root:/root:/bin/bash\n"
                             "core:x:500:500:Flatcar Admin:/home/core:/bin/bash\n"
                             "corex:x:501:501::/home/corex:/bin/sh\n";

static void test_passwd(void **state)
{
        char *shell = NULL, *out = NULL;

        assert_int_equal(passwd_get_shell(S(passwd), "core", &shell), 1);
        assert_string_equal(shell, "/bin/bash");
        free(shell);
        assert_int_equal(passwd_get_shell(S(passwd), "nobody", &shell), 0);

        assert_int_equal(passwd_set_shell(S(passwd), "core", "/sbin/nologin", &out), 0);
        assert_string_equal(out, "root:x:0:0:root:/root:/bin/bash\n"
                                 "core:x:500:500:Flatcar Admin:/home/core:/sbin/nologin\n"
                                 "corex:x:501:501::/home/corex:/bin/sh\n");
        free(out);
        /* No trailing newline: kept as it was. */
        assert_int_equal(
            passwd_set_shell(S("core:x:500:500::/home/core:/bin/bash"), "core", "/sbin/nologin", &out), 0);
        assert_string_equal(out, "core:x:500:500::/home/core:/sbin/nologin");
        free(out);
        assert_int_equal(passwd_set_shell(S(passwd), "nobody", "/sbin/nologin", &out), -ENOENT);
        assert_int_equal(passwd_set_shell(S("core:x:500\n"), "core", "/sbin/nologin", &out), -EBADMSG);
        assert_int_equal(passwd_set_shell(S(passwd), "core", "/bin/evil\nroot::0:0::/:/bin/sh", &out),
                         -EINVAL);
        assert_int_equal(passwd_set_shell(S(passwd), "core", "relative", &out), -EINVAL);
}

static void test_group(void **state)
{
        static const char group[] = "wheel:x:10:root,core\ndocker:x:233:core\nsudo:x:27:\n";
        assert_true(group_has_member(S(group), "wheel", "core"));
        assert_true(group_has_member(S(group), "docker", "core"));
        assert_false(group_has_member(S(group), "sudo", "core"));
        assert_false(group_has_member(S(group), "wheel", "cor"));
}

static void test_sudoers_line(void **state)
{
        SudoersLine l = {};

        assert_int_equal(sudoers_line_parse("core ALL=(ALL) NOPASSWD: ALL", &l), 0);
        assert_int_equal(l.type, SUDOERS_LINE_USER_SPEC);
        assert_true(l.nopasswd);
        assert_string_equal(l.users[0], "core");
        sudoers_line_done(&l);

        assert_int_equal(sudoers_line_parse("core\tALL=(ALL) \tALL", &l), 0);
        assert_int_equal(l.type, SUDOERS_LINE_USER_SPEC);
        assert_false(l.nopasswd);
        sudoers_line_done(&l);

        assert_int_equal(sudoers_line_parse("alice, core ALL = (root) SETENV: NOPASSWD: /bin/ls", &l), 0);
        assert_int_equal(strv_length(l.users), 2);
        assert_string_equal(l.users[1], "core");
        assert_true(l.nopasswd);
        sudoers_line_done(&l);

        assert_int_equal(sudoers_line_parse("#includedir /etc/sudoers.d", &l), 0);
        assert_int_equal(l.type, SUDOERS_LINE_INCLUDE);
        assert_int_equal(sudoers_line_parse("# a comment", &l), 0);
        assert_int_equal(l.type, SUDOERS_LINE_EMPTY);
        assert_int_equal(sudoers_line_parse("Defaults env_reset", &l), 0);
        assert_int_equal(l.type, SUDOERS_LINE_DEFAULTS);
        assert_int_equal(sudoers_line_parse("User_Alias ADMINS = core", &l), 0);
        assert_int_equal(l.type, SUDOERS_LINE_ALIAS);
        assert_int_equal(sudoers_line_parse("core ALL", &l), -EBADMSG);
}

static void test_sudoers_last_match(void **state)
{
        static const char base[] =
            "root ALL=(ALL) ALL\n%wheel ALL=(ALL) ALL\n%sudo ALL=(ALL) NOPASSWD: ALL\n"
            "core ALL=(ALL) NOPASSWD: ALL\n#includedir /etc/sudoers.d\n";
        static const char group[] = "wheel:x:10:root,core\nsudo:x:27:\n";

        assert_int_equal(sudoers_last_match(S(base), "core", S(group), false), SUDOERS_MATCH_NOPASSWD);
        assert_int_equal(sudoers_last_match(S(base), "core", S(group), true), SUDOERS_MATCH_NONE);
        assert_int_equal(sudoers_last_match(S("%wheel ALL=(ALL) NOPASSWD: ALL\n"), "core", S(group), false),
                         SUDOERS_MATCH_NOPASSWD);
        assert_int_equal(sudoers_last_match(S("%sudo ALL=(ALL) NOPASSWD: ALL\n"), "core", S(group), false),
                         SUDOERS_MATCH_NONE);
        assert_int_equal(sudoers_last_match(S("core ALL=(ALL) NOPASSWD: ALL\ncore ALL=(ALL) ALL\n"), "core",
                                            S(group), false),
                         SUDOERS_MATCH_PASSWD);
        assert_int_equal(
            sudoers_last_match(S("core ALL=(ALL) \\\n  NOPASSWD: ALL\n"), "core", S(group), false),
            SUDOERS_MATCH_NOPASSWD);
        assert_true(sudoers_dropin_name_is_read("core-passwd"));
        assert_false(sudoers_dropin_name_is_read("core.conf"));
        assert_false(sudoers_dropin_name_is_read("core~"));
}

static void test_unit_file(void **state)
{
        char *v = NULL;
        static const char u[] = "[Unit]\nSocketGroup=nope\n[Socket]\n# SocketGroup=x\nSocketGroup = docker\n"
                                "ListenStream=\nSocketGroup=wheel\n[Install]\n";

        assert_int_equal(unit_file_get(S(u), "Socket", "SocketGroup", &v), 1);
        assert_string_equal(v, "wheel");
        free(v);
        assert_int_equal(unit_file_get(S(u), "Socket", "ListenStream", &v), 1);
        assert_string_equal(v, "");
        free(v);
        assert_int_equal(unit_file_get(S(u), "Socket", "FreeBind", &v), 0);
}

static void test_sysctl(void **state)
{
        char *v = NULL;
        static const char t[] =
            "# c\nkernel.kptr_restrict = 1\n-kernel/kptr_restrict=2\nnet.ipv4.ip_forward=1\n";

        assert_int_equal(sysctl_file_get(S(t), "kernel.kptr_restrict", &v), 1);
        assert_string_equal(v, "2");
        free(v);
        assert_int_equal(sysctl_file_get(S(t), "kernel.sysrq", &v), 0);
}

static void test_grub(void **state)
{
        char **args = NULL, **missing = NULL;
        char *wanted[] = {(char *)"mitigations=auto,nosmt", (char *)"tsx=auto", (char *)"nosmt", NULL};
        static const char cfg[] =
            "set oem_id=\"qemu\"\n"
            "set linux_append=\"$linux_append flatcar.autologin mitigations=auto,nosmt\"\n"
            "set linux_append=\"$linux_append tsx=on\"\n";

        assert_int_equal(grub_linux_append_args(S(cfg), &args), 0);
        assert_int_equal(strv_length(args), 3);
        assert_string_equal(args[0], "flatcar.autologin");
        assert_int_equal(kargs_missing(args, wanted, &missing), 0);
        /* tsx=on comes last and wins; nosmt is absent. */
        assert_int_equal(strv_length(missing), 2);
        assert_string_equal(missing[0], "tsx=auto");
        assert_string_equal(missing[1], "nosmt");
        strv_free(args);
        strv_free(missing);
}

static void test_selinux(void **state)
{
        char *out = NULL, *v = NULL;

        assert_int_equal(
            selinux_config_set(S("# c\nSELINUX=permissive\nSELINUXTYPE=mcs\n"), "enforcing", NULL, &out), 0);
        assert_string_equal(out, "# c\nSELINUX=enforcing\nSELINUXTYPE=mcs\n");
        free(out);
        assert_int_equal(selinux_config_set(S("SELINUXTYPE=mcs"), "enforcing", NULL, &out), 0);
        assert_string_equal(out, "SELINUXTYPE=mcs\nSELINUX=enforcing\n");
        free(out);
        assert_int_equal(selinux_config_set(S(""), "enforcing", "mcs", &out), 0);
        assert_string_equal(out, "SELINUX=enforcing\nSELINUXTYPE=mcs\n");
        free(out);
        assert_int_equal(
            selinux_config_get(S("SELINUX=permissive\nSELINUXTYPE= targeted \n"), "SELINUXTYPE", &v), 1);
        assert_string_equal(v, "targeted");
        free(v);
}

static void test_diff(void **state)
{
        char *d = NULL;

        assert_int_equal(unified_diff(S("a\nb\nc\n"), S("a\nb\nc\n"), "a/x", "b/x", &d), 0);
        assert_string_equal(d, "");
        free(d);
        assert_int_equal(unified_diff(S("a\nb\nc\n"), S("a\nB\nc\n"), "a/x", "b/x", &d), 0);
        assert_string_equal(d, "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        free(d);
        assert_int_equal(unified_diff(S(""), S("new\n"), "/dev/null", "b/x", &d), 0);
        assert_string_equal(d, "--- /dev/null\n+++ b/x\n@@ -0,0 +1,1 @@\n+new\n");
        free(d);
        assert_int_equal(unified_diff(S("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"),
                                      S("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\nlast\n"), "a", "b", &d),
                         0);
        assert_string_equal(d, "--- a\n+++ b\n@@ -10,3 +10,4 @@\n 10\n 11\n 12\n+last\n");
        free(d);
        assert_int_equal(unified_diff(S("x"), S("x\n"), "a", "b", &d), 0);
        assert_string_equal(d, "--- a\n+++ b\n@@ -1,1 +1,1 @@\n-x\n\\ No newline at end of file\n+x\n");
        free(d);
}

static void test_split_words(void **state)
{
        char **l = NULL;
        assert_int_equal(strv_split_words(" a, b\tc ", &l), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[2], "c");
        strv_free(l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_passwd),       cmocka_unit_test(test_group),
            cmocka_unit_test(test_sudoers_line), cmocka_unit_test(test_sudoers_last_match),
            cmocka_unit_test(test_unit_file),    cmocka_unit_test(test_grub),
            cmocka_unit_test(test_sysctl),       cmocka_unit_test(test_selinux),
            cmocka_unit_test(test_diff),         cmocka_unit_test(test_split_words),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
