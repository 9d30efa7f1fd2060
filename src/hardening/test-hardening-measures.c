/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "hardening-measures.h"
#include "hardening-parse.h"
#include "log.h"

static int load(const char *text, const char *profile, char **names, Settings *s)
{
        _cleanup_(conf_freep) ConfFile *conf = NULL;
        assert_int_equal(conf_new(&conf), 0);
        assert_int_equal(conf_parse_into(conf, text, strlen(text), CONF_SYNTAX_SWITCHYARD, "test"), 0);
        return settings_load(s, conf, profile, names);
}

static void test_profiles(void **state)
{
        Settings s = {};

        assert_int_equal(load("", NULL, NULL, &s), 0);
        assert_int_equal(s.profile, PROFILE_GUIDE);
        assert_int_equal(strv_length(s.measures), 7);
        assert_true(strv_contains(s.measures, "selinux"));
        assert_false(strv_contains(s.measures, "sysctl"));
        assert_int_equal(strv_length(s.kernel_args), 2);
        assert_string_equal(s.kernel_args[0], "mitigations=auto,nosmt");
        assert_string_equal(s.user, "core");
        settings_done(&s);

        assert_int_equal(load("PROFILE=guide\n", "strict", NULL, &s), 0);
        assert_int_equal(s.profile, PROFILE_STRICT);
        assert_int_equal(strv_length(s.measures), n_measures);
        assert_string_equal(s.kernel_args[2], "tsx=off");
        settings_done(&s);

        assert_int_equal(load("ENABLE=sysctl\nDISABLE=selinux smt\n", NULL, NULL, &s), 0);
        assert_true(strv_contains(s.measures, "sysctl"));
        assert_false(strv_contains(s.measures, "selinux"));
        assert_false(strv_contains(s.measures, "smt"));
        settings_done(&s);

        char *names[] = {(char *)"coredump", (char *)"sshd-socket", NULL};
        assert_int_equal(load("MEASURES=selinux\n", NULL, names, &s), 0);
        /* Table order, command line wins over MEASURES=. */
        assert_int_equal(strv_length(s.measures), 2);
        assert_string_equal(s.measures[0], "sshd-socket");
        assert_string_equal(s.measures[1], "coredump");
        settings_done(&s);
}

static void test_bad_settings(void **state)
{
        Settings s = {};
        static const char *const bad[] = {
            "NOPE=1\n",
            "PROFILE=max\n",
            "MEASURES=bogus\n",
            "SSHD_LISTEN=host:22\n",
            "SSHD_LISTEN=[::1:22\n",
            "SSHD_LISTEN=0\n",
            "KERNEL_ARGUMENTS=a$b\n",
            "MODULES=squashfs\n",
            "MODULES=Bad!\n",
            "SYSCTL_OPT_IN=kernel.sysrq\n",
            "SYSCTL_EXCLUDE=no.such.key\n",
            "USER=Root\n",
            "NOLOGIN_SHELL=nologin\n",
            "GRUB_CFG=/usr/share/oem/../../etc/shadow\n",
            "SELINUX_TYPE=a b\n",
        };

        log_set_target(LOG_TARGET_NULL);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = load(bad[i], NULL, NULL, &s);
                if (r != -EINVAL)
                        fail_msg("accepted: %s", bad[i]);
        }
        assert_int_equal(load("SSHD_LISTEN=22 10.1.2.3:2222 [fe80::1]:22\n", NULL, NULL, &s), 0);
        assert_int_equal(strv_length(s.sshd_listen), 3);
        settings_done(&s);
}

static void test_butane_render(void **state)
{
        Settings s = {};
        ButaneDoc d = {};
        char *yaml = NULL;

        assert_int_equal(load("MEASURES=docker-socket core-nologin smt\n", NULL, NULL, &s), 0);
        for (size_t i = 0; s.measures[i]; i++)
                assert_int_equal(measure_find(s.measures[i])->butane(&s, &d), 0);
        assert_int_equal(butane_doc_render(&d, "1.0.0", &yaml), 0);
        assert_string_equal(yaml, "variant: flatcar\n"
                                  "version: 1.0.0\n"
                                  "kernel_arguments:\n"
                                  "  should_exist:\n"
                                  "    - \"mitigations=auto,nosmt\"\n"
                                  "    - \"tsx=auto\"\n"
                                  "passwd:\n"
                                  "  users:\n"
                                  "    - name: \"core\"\n"
                                  "      shell: \"/sbin/nologin\"\n"
                                  "systemd:\n"
                                  "  units:\n"
                                  "    - name: \"docker.socket\"\n"
                                  "      dropins:\n"
                                  "        - name: \"10-restrict.conf\"\n"
                                  "          contents: |\n"
                                  "            [Socket]\n"
                                  "            SocketGroup=root\n");
        free(yaml);
        assert_int_equal(butane_doc_render(&d, "1.2.0-experimental", &yaml), -EINVAL);
        butane_doc_done(&d);
        settings_done(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_profiles),
            cmocka_unit_test(test_bad_settings),
            cmocka_unit_test(test_butane_render),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
