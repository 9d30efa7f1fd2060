/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-helpers.h"

#include "metadata-agent-cmdline.h"
#include "metadata-agent-fetch.h"
#include "metadata-agent-metadata.h"
#include "metadata-agent-provider.h"
#include "metadata-agent-sshkey.h"

#define ED25519 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIadOopfaOOAdFWRkCoOimvDyOftqphtnIeiECJuhkdq"

static void test_cmdline(void **state) {
        char *v = NULL;

        assert_int_equal(cmdline_get_value("a=1 flatcar.oem.id=ec2 b", "flatcar.oem.id", &v), 1);
        assert_string_equal(v, "ec2");
        free(v);
        /* an empty value does not count; the next key is tried */
        assert_int_equal(cmdline_get_platform("flatcar.oem.id= coreos.oem.id=gce\n", &v), 1);
        assert_string_equal(v, "gce");
        free(v);
        /* flatcar.oem.id wins over coreos.oem.id regardless of order */
        assert_int_equal(cmdline_get_platform("coreos.oem.id=azure flatcar.oem.id=packet", &v), 1);
        assert_string_equal(v, "packet");
        free(v);
        /* no quoting; a key must match exactly */
        assert_int_equal(cmdline_get_value("xflatcar.oem.id=a flatcar.oem.idx=b", "flatcar.oem.id", &v), 0);
        assert_null(v);
        assert_int_equal(cmdline_get_platform("", &v), 0);
        assert_true(cmdline_has_ip_arg("root=x ip=dhcp"));
        assert_false(cmdline_has_ip_arg("root=x vip=1 rd.ip=2"));
}

static void test_sshkey(void **state) {
        char *k = NULL;

        assert_int_equal(ssh_key_normalize("  " ED25519 "  my comment  ", &k), 0);
        assert_string_equal(k, ED25519 " my comment");
        free(k);
        assert_int_equal(ssh_key_normalize(ED25519 " c\r\n", &k), 0);
        assert_string_equal(k, ED25519 " c");
        free(k);
        assert_int_equal(ssh_key_normalize(ED25519 "\n", &k), 0);
        assert_string_equal(k, ED25519);
        free(k);
        assert_int_equal(ssh_key_normalize(ED25519 " c\nssh-rsa AAAA", &k), -EBADMSG);
        assert_int_equal(ssh_key_normalize("no-pty " ED25519, &k), 0);
        assert_string_equal(k, "no-pty " ED25519);
        free(k);
        /* wrong type inside the blob, truncated base64, unknown type, garbage */
        assert_int_equal(ssh_key_normalize("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIIadOopfaOOAdFWRkCoOimvDyOftqphtnIeiECJuhkdq", &k),
                         -EBADMSG);
        assert_int_equal(ssh_key_normalize("ssh-rsa AAAAB3NzaC1yc2EAAAA...", &k), -EBADMSG);
        assert_int_equal(ssh_key_normalize("ssh-foo AAAA", &k), -EBADMSG);
        assert_int_equal(ssh_key_normalize("", &k), -EBADMSG);
        assert_int_equal(ssh_key_normalize("a b " ED25519, &k), -EBADMSG);
        assert_int_equal(ssh_key_normalize("command=\"echo \\\"hi there\\\"\",no-pty " ED25519 " c", &k), 0);
        assert_string_equal(k, "command=\"echo \\\"hi there\\\"\",no-pty " ED25519 " c");
        free(k);
        assert_int_equal(ssh_key_normalize("command=\"unterminated " ED25519, &k), -EBADMSG);
}

static void test_attribute_names(void **state) {
        Metadata m = {};
        char *s = NULL;

        assert_int_equal(metadata_set_attr(&m, "AWS_REGION", "AWS-east"), 0);
        assert_int_equal(metadata_set_attr(&m, "GCP_HOSTNAME", "h"), 0);
        assert_int_equal(metadata_set_attr(&m, "AZURE_VMSIZE", "x"), 0);
        assert_int_equal(metadata_set_attr(&m, "AZURE_VMSIZE", "y"), 0); /* replaces */
        assert_int_equal(metadata_set_attr(&m, "NONE", NULL), 0);        /* no value, no attribute */
        assert_int_equal(metadata_format_attributes(&m, ATTRIBUTE_STYLE_FLATCAR, &s), 0);
        assert_string_equal(s, "COREOS_AZURE_VMSIZE=y\nCOREOS_EC2_REGION=AWS-east\nCOREOS_GCE_HOSTNAME=h\n");
        free(s);
        assert_int_equal(metadata_format_attributes(&m, ATTRIBUTE_STYLE_AFTERBURN, &s), 0);
        assert_string_equal(s, "AFTERBURN_AWS_REGION=AWS-east\nAFTERBURN_AZURE_VMSIZE=y\nAFTERBURN_GCP_HOSTNAME=h\n");
        free(s);
        assert_int_equal(metadata_set_attr(&m, "BAD", "a\nB=c"), 0);
        assert_int_equal(metadata_format_attributes(&m, ATTRIBUTE_STYLE_AFTERBURN, &s), -EBADMSG);
        metadata_done(&m);
}

static void test_hostname_truncate(void **state) {
        char long_name[200];
        char *h;

        h = hostname_truncate("short.example.com");
        assert_string_equal(h, "short.example.com");
        free(h);
        memset(long_name, 'a', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        long_name[10] = '.';
        h = hostname_truncate(long_name);
        assert_string_equal(h, "aaaaaaaaaa");
        free(h);
        long_name[10] = 'a';
        h = hostname_truncate(long_name);
        assert_int_equal(strlen(h), 64);
        free(h);
}

static void test_key_text(void **state) {
        Metadata m = {};

        assert_int_equal(metadata_add_ssh_keys_text(&m, "\n# comment\n" ED25519 " a\r\n" ED25519 " a\n", false, "t"), 0);
        assert_int_equal(m.n_ssh_keys, 1); /* de-duplicated */
        assert_int_equal(metadata_add_ssh_keys_text(&m, "junk\n", true, "t"), 0);
        assert_int_equal(metadata_add_ssh_keys_text(&m, "junk\n", false, "t"), -EBADMSG);
        metadata_done(&m);
}

static void test_ec2_key_list(void **state) {
        char **v = NULL;
        size_t n = 0;

        assert_int_equal(ec2_parse_key_list("0=first\n1=second\n", &v, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(v[0], "0");
        assert_string_equal(v[1], "1");
        strv_free_n(v, n);
        assert_int_equal(ec2_parse_key_list("0=a=b\n", &v, &n), -EBADMSG);
        assert_int_equal(ec2_parse_key_list("noequals\n", &v, &n), -EBADMSG);
        assert_int_equal(ec2_parse_key_list("", &v, &n), 0);
        assert_int_equal(n, 0);
}

static void test_provider_table(void **state) {
        assert_ptr_equal(provider_find("ec2"), &provider_aws);
        assert_ptr_equal(provider_find("gce"), &provider_gcp);
        assert_ptr_equal(provider_find("openstack-metadata"), &provider_openstack_metadata);
        assert_null(provider_find("qemu"));
        for (const char *const *n = provider_names(); *n; n++)
                assert_string_equal(provider_find(*n)->name, *n);
}

/* metadata-agent-generator mounts exactly the drives the providers read: the generator's lookup by name
 * gives every provider's own ConfigDrive, and nothing for the others. */
static void test_config_drive_table(void **state) {
        unsigned n = 0;

        for (const char *const *name = provider_names(); *name; name++) {
                const Provider *p = provider_find(*name);
                assert_non_null(p);
                assert_ptr_equal(config_drive_find(*name), p->config_drive);
                n += !!p->config_drive;
        }
        assert_int_equal(n, 7);
        assert_null(config_drive_find("ec2"));
        assert_null(config_drive_find("cloudstack"));
        assert_string_equal(config_drive_labels(config_drive_find("kubevirt")), "config-2 or cidata");
        assert_string_equal(config_drive_find("ibmcloud-classic")->fstype, "vfat");
        assert_true(config_drive_find("kubevirt")->needs_virtio_blk);
        assert_false(config_drive_find("openstack")->needs_virtio_blk);
}

static void test_no_proxy(void **state) {
        char *v;

        v = no_proxy_with_metadata_hosts(NULL);
        assert_string_equal(v, "169.254.0.0/16,fe80::/10,100.100.100.200,168.63.129.16");
        free(v);
        v = no_proxy_with_metadata_hosts("localhost,.corp");
        assert_string_equal(v, "localhost,.corp,169.254.0.0/16,fe80::/10,100.100.100.200,168.63.129.16");
        free(v);
        v = no_proxy_with_metadata_hosts("*");
        assert_string_equal(v, "*");
        free(v);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cmdline),       cmocka_unit_test(test_sshkey),
                cmocka_unit_test(test_attribute_names), cmocka_unit_test(test_hostname_truncate),
                cmocka_unit_test(test_key_text),      cmocka_unit_test(test_ec2_key_list),
                cmocka_unit_test(test_provider_table), cmocka_unit_test(test_no_proxy),
                cmocka_unit_test(test_config_drive_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
