/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "config.h"
#include "fileio.h"
#include "log.h"

static void parse(ConfFile *f, const char *text, ConfSyntax syntax, int expect) {
        assert_int_equal(conf_parse_into(f, text, strlen(text), syntax, "test"), expect);
}

static void test_flatcar_rules(void **state) {
        _cleanup_(conf_freep) ConfFile *f = NULL;
        assert_int_equal(conf_new(&f), 0);
        parse(f,
              "GROUP=beta\n"
              "#GROUP=x\n"
              " SERVER=y\n"
              "noequals\n"
              "A=\"quoted\"\n"
              "B='single'\n"
              "C=\"mismatched'\n"
              "D=\"\n"
              "E=a=b\n"
              "GROUP=\"alpha\"\n"
              "F=\"\"",
              CONF_SYNTAX_FLATCAR, 0);
        assert_string_equal(conf_get(f, "GROUP"), "alpha"); /* later duplicate wins */
        assert_string_equal(conf_get(f, "#GROUP"), "x");    /* no comment handling */
        assert_string_equal(conf_get(f, " SERVER"), "y");   /* no trimming */
        assert_null(conf_get(f, "SERVER"));
        assert_null(conf_get(f, "noequals"));
        assert_string_equal(conf_get(f, "A"), "quoted");
        assert_string_equal(conf_get(f, "B"), "single");
        assert_string_equal(conf_get(f, "C"), "\"mismatched'");
        assert_string_equal(conf_get(f, "D"), "\""); /* one char: no stripping */
        assert_string_equal(conf_get(f, "E"), "a=b");
        assert_string_equal(conf_get(f, "F"), "");
        assert_int_equal(conf_size(f), 9);
        assert_string_equal(conf_key_at(f, 0), "GROUP");
}

static void test_switchyard_rules(void **state) {
        _cleanup_(conf_freep) ConfFile *f = NULL;
        assert_int_equal(conf_new(&f), 0);
        log_set_target(LOG_TARGET_NULL);
        parse(f, "# comment\n\n  KEY = \"v w\"  \n;x\nOTHER=1\n", CONF_SYNTAX_SWITCHYARD, 0);
        assert_string_equal(conf_get(f, "KEY"), "v w");
        assert_string_equal(conf_get(f, "OTHER"), "1");
        parse(f, "KEY=1\ngarbage line\n", CONF_SYNTAX_SWITCHYARD, -EBADMSG);
        parse(f, "=value\n", CONF_SYNTAX_SWITCHYARD, -EBADMSG);
}

static void write_file(const char *root, const char *rel, const char *content) {
        _cleanup_free_ char *p = path_join_root(root, rel);
        _cleanup_free_ char *dir = strdup(p);
        *strrchr(dir, '/') = '\0';
        assert_int_equal(mkdir_p(dir, 0755), 0);
        assert_int_equal(write_string_file_atomic(p, content, 0644), 0);
}

static void test_chain_and_dropins(void **state) {
        char root[] = "/tmp/sy-conf-XXXXXX";
        static const char *const chain[] = { "/etc/flatcar/update.conf", "/usr/share/flatcar/update.conf",
                                             "/usr/share/flatcar/release", NULL };
        _cleanup_(conf_freep) ConfFile *f = NULL;
        char *v;

        assert_non_null(mkdtemp(root));
        write_file(root, "/etc/flatcar/update.conf", "GROUP=beta\nSERVER=\n");
        write_file(root, "/usr/share/flatcar/update.conf", "GROUP=stable\nSERVER=https://x/\nMACHINE_ALIAS=m\n");
        write_file(root, "/usr/share/flatcar/release", "FLATCAR_RELEASE_VERSION=1.2.3\nGROUP=never\n");

        assert_int_equal(conf_chain_get(root, chain, "GROUP", &v), 1);
        assert_string_equal(v, "beta");
        free(v);
        /* The first file that has the key wins even when its value is empty. */
        assert_int_equal(conf_chain_get(root, chain, "SERVER", &v), 1);
        assert_string_equal(v, "");
        free(v);
        assert_int_equal(conf_chain_get(root, chain, "FLATCAR_RELEASE_VERSION", &v), 1);
        assert_string_equal(v, "1.2.3");
        free(v);
        assert_int_equal(conf_chain_get(root, chain, "NOPE", &v), 0);
        assert_null(v);

        write_file(root, "/usr/share/switchyard/x.conf", "A=1\nB=1\nC=1\n");
        write_file(root, "/etc/switchyard/x.conf", "B=2\n");
        write_file(root, "/etc/switchyard/x.conf.d/20-b.conf", "C=3\n");
        write_file(root, "/etc/switchyard/x.conf.d/10-a.conf", "C=2\nD=2\n");
        write_file(root, "/etc/switchyard/x.conf.d/ignored.txt", "D=9\n");
        assert_int_equal(conf_load_switchyard(root, "x", &f), 0);
        assert_string_equal(conf_get(f, "A"), "1");
        assert_string_equal(conf_get(f, "B"), "2");
        assert_string_equal(conf_get(f, "C"), "3");
        assert_string_equal(conf_get(f, "D"), "2");

        f = conf_free(f);
        log_set_target(LOG_TARGET_NULL);
        write_file(root, "/etc/switchyard/x.conf.d/30-bad.conf", "oops\n");
        assert_int_equal(conf_load_switchyard(root, "x", &f), -EBADMSG);
        assert_int_equal(conf_load_switchyard(root, "missing", &f), 0);
        assert_int_equal(conf_size(f), 0);

        assert_int_equal(parse_boolean("Yes"), 1);
        assert_int_equal(parse_boolean("off"), 0);
        assert_int_equal(parse_boolean("maybe"), -EINVAL);
        (void) !system(strjoina("rm -rf ", root));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_flatcar_rules),
                cmocka_unit_test(test_switchyard_rules),
                cmocka_unit_test(test_chain_and_dropins),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
