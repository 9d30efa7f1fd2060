/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Known-answer tests of the document parsers on the shared fixtures (../shared/fixtures/metadata, or
 * $SWITCHYARD_SHARED_DIR/fixtures/metadata); skipped if the fixtures are not there. */
#include "test-helpers.h"

#include "fileio.h"
#include "log.h"
#include "metadata-agent-fetch.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"
#include "metadata-agent-yaml.h"

static char *fixture_path(const char *rel) {
        const char *shared = getenv("SWITCHYARD_SHARED_DIR");
        char *p;
        if (asprintf(&p, "%s/fixtures/metadata/%s", shared ?: FIXTURES_PARENT, rel) < 0)
                return NULL;
        return p;
}

static int load(const char *rel, char **ret, size_t *ret_size) {
        _cleanup_free_ char *p = fixture_path(rel);
        return read_full_file(p, 1 << 20, ret, ret_size);
}

static json_t *load_json(const char *rel) {
        _cleanup_free_ char *d = NULL;
        size_t n;
        if (load(rel, &d, &n) < 0)
                return NULL;
        return json_loadb(d, n, 0, NULL);
}

static XmlNode *load_xml(const char *rel) {
        _cleanup_free_ char *d = NULL;
        XmlNode *x = NULL;
        size_t n;
        if (load(rel, &d, &n) < 0 || xml_parse(d, n, &x) < 0)
                return NULL;
        return x;
}

static int have_fixtures(void **state) {
        _cleanup_free_ char *p = fixture_path("README.md");
        return access(p, R_OK) == 0 ? 0 : -1;
}

#define SKIP_WITHOUT_FIXTURES()                                                                              \
        do {                                                                                                 \
                if (have_fixtures(state) < 0)                                                                \
                        skip();                                                                              \
        } while (0)

static void test_azure(void **state) {
        AzureGoalState g = {};
        Metadata m = {};
        XmlNode *x;
        char *report;

        SKIP_WITHOUT_FIXTURES();
        x = load_xml("azure/wireserver/versions.xml");
        assert_non_null(x);
        assert_int_equal(azure_parse_versions(x), 0);
        xml_free(x);

        x = load_xml("azure/wireserver/goalstate.xml");
        assert_int_equal(azure_parse_goal_state(x, &g), 0);
        assert_string_equal(g.incarnation, "42");
        assert_string_equal(g.container_id, "a511aa6d-29e7-4f53-8788-55655dfe848f");
        assert_string_equal(g.instance_id, "f6cd1d7ef1644557b9059345e5ba890c.lars-test-1");
        assert_non_null(strstr(g.shared_config_url, "type=sharedConfig&incarnation=1")); /* &amp; decoded */
        xml_free(x);

        report = azure_health_report(&g);
        {
                _cleanup_free_ char *tmpl = NULL;
                size_t n;
                assert_int_equal(load("azure/wireserver/health-ready.xml.template", &tmpl, &n), 0);
                assert_non_null(strstr(report, "<GoalStateIncarnation>42</GoalStateIncarnation>"));
                assert_non_null(strstr(report, "<InstanceId>f6cd1d7ef1644557b9059345e5ba890c.lars-test-1</InstanceId>"));
                assert_int_equal(strncmp(report, tmpl, strstr(tmpl, "{") - tmpl), 0);
        }
        free(report);
        azure_goal_state_done(&g);

        x = load_xml("azure/wireserver/sharedconfig.xml");
        assert_int_equal(azure_parse_shared_config(x, &m), 0);
        assert_string_equal(metadata_get_attr(&m, "AZURE_IPV4_DYNAMIC"), "100.115.176.3");
        assert_null(metadata_get_attr(&m, "AZURE_IPV4_VIRTUAL"));
        xml_free(x);

        json_t *j = load_json("azure/imds/publicKeys.json");
        assert_int_equal(azure_parse_public_keys(j, &m), 0);
        assert_int_equal(m.n_ssh_keys, 1);
        json_decref(j);
        metadata_done(&m);
}

static void test_azure_virtual_ip(void **state) {
        static const char doc[] =
                "<SharedConfig><Incarnation instance=\"vm\"/><Instances><Instance id=\"vm\" address=\"10.0.0.4\">"
                "<InputEndpoints><Endpoint loadBalancedPublicAddress=\"1.2.3.4:22\"/>"
                "<Endpoint loadBalancedPublicAddress=\"5.6.7.8:80\"/><Endpoint loadBalancedPublicAddress=\"junk\"/>"
                "</InputEndpoints></Instance></Instances></SharedConfig>";
        XmlNode *x = NULL;
        Metadata m = {};

        assert_int_equal(xml_parse(doc, strlen(doc), &x), 0);
        assert_int_equal(azure_parse_shared_config(x, &m), 0);
        assert_string_equal(metadata_get_attr(&m, "AZURE_IPV4_VIRTUAL"), "5.6.7.8");
        assert_string_equal(metadata_get_attr(&m, "AZURE_IPV4_DYNAMIC"), "10.0.0.4");
        xml_free(x);
        metadata_done(&m);
        assert_int_equal(xml_parse("<a><b></a>", 10, &x), -EBADMSG);
}

static void test_packet(void **state) {
        Metadata m = {};
        json_t *j;
        char *url = NULL;

        SKIP_WITHOUT_FIXTURES();
        j = load_json("packet/metadata.json");
        assert_int_equal(packet_parse(j, NULL, WANT_ATTRIBUTES | WANT_HOSTNAME, &m, &url), 0);
        assert_string_equal(metadata_get_attr(&m, "PACKET_IPV6_PUBLIC_GATEWAY_0"), "2604:1380::");
        assert_string_equal(metadata_get_attr(&m, "PACKET_IPV6_PRIVATE_GATEWAY_0"), "fd00::");
        assert_string_equal(metadata_get_attr(&m, "PACKET_IPV4_PRIVATE_0"), "10.0.0.1");
        assert_string_equal(metadata_get_attr(&m, "PACKET_PHONE_HOME_URL"), "test-url");
        assert_string_equal(url, "test-url");
        assert_string_equal(m.hostname, "test-hostname");
        free(url);
        json_object_del(j, "plan");
        assert_int_equal(packet_parse(j, NULL, WANT_ATTRIBUTES, &m, NULL), -EBADMSG);
        json_decref(j);
        metadata_done(&m);
}

static void test_digitalocean(void **state) {
        Metadata m = {};
        json_t *j;

        SKIP_WITHOUT_FIXTURES();
        j = load_json("digitalocean/metadata-v1.json");
        assert_int_equal(digitalocean_parse(j, WANT_ATTRIBUTES | WANT_HOSTNAME, &m), 0);
        assert_string_equal(metadata_get_attr(&m, "DIGITALOCEAN_IPV4_ANCHOR_0"), "10.0.0.5");
        assert_string_equal(metadata_get_attr(&m, "DIGITALOCEAN_IPV4_PRIVATE_0"), "10.132.6.205");
        assert_null(metadata_get_attr(&m, "DIGITALOCEAN_IPV6_PRIVATE_0"));
        assert_int_equal(m.n_attrs, 6);
        /* the fixture's key is cloud-init's truncated placeholder */
        assert_int_equal(digitalocean_parse(j, WANT_SSH_KEYS, &m), -EBADMSG);
        json_decref(j);
        metadata_done(&m);
}

static void test_hetzner_yaml(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        json_t *meta = NULL, *nets = NULL;
        Metadata m = {};
        size_t na, nb;

        SKIP_WITHOUT_FIXTURES();
        assert_int_equal(load("hetzner/metadata.yaml", &a, &na), 0);
        assert_int_equal(load("hetzner/private-networks.yaml", &b, &nb), 0);
        assert_int_equal(yaml_parse_json(a, na, &meta), 0);
        assert_int_equal(yaml_parse_json(b, nb, &nets), 0);
        assert_int_equal(hetzner_parse_metadata(meta, nets, &m), 0);
        assert_string_equal(metadata_get_attr(&m, "HETZNER_INSTANCE_ID"), "42");
        assert_string_equal(metadata_get_attr(&m, "HETZNER_PRIVATE_IPV4_1"), "10.128.0.2");
        assert_null(metadata_get_attr(&m, "HETZNER_PUBLIC_IPV6")); /* main-only, not in 5.10.0 */
        json_decref(meta);
        json_decref(nets);
        metadata_done(&m);
        assert_int_equal(yaml_parse_json("a: &x 1\nb: *x\n", 14, &meta), -EBADMSG);
        assert_int_equal(yaml_parse_json("a: [1, 2\n", 9, &meta), -EBADMSG);
}

static void test_oracle_scaleway_akamai(void **state) {
        Metadata m = {};
        json_t *j;

        SKIP_WITHOUT_FIXTURES();
        j = load_json("oraclecloud/opc-v2-instance-null-ssh-keys.json");
        assert_int_equal(oraclecloud_parse(j, WANT_SSH_KEYS, &m), 0);
        assert_int_equal(m.n_ssh_keys, 0);
        json_decref(j);
        j = load_json("oraclecloud/opc-v2-instance-with-ssh-keys.json");
        assert_int_equal(oraclecloud_parse(j, WANT_SSH_KEYS, &m), 0);
        assert_int_equal(m.n_ssh_keys, 2);
        json_decref(j);
        metadata_done(&m);

        j = load_json("scaleway/conf.json");
        assert_int_equal(scaleway_parse(j, WANT_ATTRIBUTES, &m), 0);
        assert_string_equal(metadata_get_attr(&m, "SCALEWAY_IPV4_PUBLIC"), "93.184.216.34");
        assert_null(metadata_get_attr(&m, "SCALEWAY_PUBLIC_IPV4")); /* the docs' name is not emitted */
        json_decref(j);
        metadata_done(&m);

        j = load_json("akamai/v1-instance.json");
        assert_int_equal(akamai_parse_instance(j, &m), 0);
        assert_string_equal(metadata_get_attr(&m, "AKAMAI_INSTANCE_TAGS"), "foo:bar:baz");
        assert_string_equal(metadata_get_attr(&m, "AKAMAI_INSTANCE_ID"), "12345678");
        json_decref(j);
        j = load_json("akamai/v1-network.json");
        assert_int_equal(akamai_parse_network(j, &m), 0);
        assert_string_equal(metadata_get_attr(&m, "AKAMAI_PUBLIC_IPV4_0"), "1.2.3.4/32");
        assert_null(metadata_get_attr(&m, "AKAMAI_SHARED_IPV4_0"));
        json_decref(j);
        metadata_done(&m);
}

static void test_config_drives(void **state) {
        Metadata m = {};
        json_t *meta, *ec2;

        SKIP_WITHOUT_FIXTURES();
        meta = load_json("openstack/config-drive/openstack/latest/meta_data.json");
        ec2 = load_json("openstack/config-drive/ec2/latest/meta-data.json");
        assert_int_equal(openstack_parse_config_drive(meta, ec2, WANT_ATTRIBUTES | WANT_HOSTNAME | WANT_SSH_KEYS, &m), 0);
        assert_non_null(metadata_get_attr(&m, "OPENSTACK_INSTANCE_UUID"));
        assert_non_null(m.hostname);
        json_decref(meta);
        json_decref(ec2);
        metadata_done(&m);

        meta = load_json("powervs/config-drive/openstack/latest/meta_data.json");
        assert_int_equal(configdrive_parse_uuid_name(meta, "POWERVS", true, WANT_ATTRIBUTES | WANT_SSH_KEYS, &m), 0);
        assert_string_equal(metadata_get_attr(&m, "POWERVS_LOCAL_HOSTNAME"), "test-tf-pVM");
        assert_int_equal(m.n_ssh_keys, 1);
        json_object_set_new(meta, "name", json_string(""));
        assert_int_equal(configdrive_parse_uuid_name(meta, "POWERVS", true, WANT_ATTRIBUTES, &m), -EBADMSG);
        json_decref(meta);
        metadata_done(&m);
}

static void test_ibmcloud(void **state) {
        _cleanup_free_ char *vd = NULL, *cc = NULL;
        json_t *doc = NULL;
        Metadata m = {};
        size_t n;

        assert_int_equal(ibmcloud_parse_meta_data("instance-id: 1711_2a58\nlocal-hostname:  test-vpc \nfoo: ba:r\nempty:\n",
                                                  WANT_ATTRIBUTES | WANT_HOSTNAME, &m), 0);
        assert_string_equal(metadata_get_attr(&m, "IBMCLOUD_INSTANCE_ID"), "1711_2a58");
        assert_string_equal(metadata_get_attr(&m, "IBMCLOUD_LOCAL_HOSTNAME"), "test-vpc");
        assert_string_equal(m.hostname, "test-vpc");
        assert_int_equal(m.n_attrs, 2);
        metadata_done(&m);

        SKIP_WITHOUT_FIXTURES();
        assert_int_equal(load("ibmcloud/cidata/vendor-data", &vd, &n), 0);
        assert_int_equal(ibmcloud_vendor_data_cloud_config(vd, n, &cc), 0);
        assert_true(startswith(cc, "#cloud-config\ndisable_root: false\n"));
        assert_int_equal(yaml_parse_json(cc, strlen(cc), &doc), 0);
        assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "ssh_authorized_keys"), 1)),
                            "ssh-rsa AAAAB4NzaC2yc3 <<snip>> 3TIX+eesnqasq9w== testuser2@test.com");
        json_decref(doc);
        /* the fixture's keys are shortened placeholders, which do not parse as keys */
        assert_int_equal(ibmcloud_parse_vendor_data(vd, n, &m), -EBADMSG);
        metadata_done(&m);
        assert_int_equal(ibmcloud_vendor_data_cloud_config("Content-Type: text/plain\n\nx", 27, &cc), -EBADMSG);
}

static void test_gcp_keys(void **state) {
        Metadata m = {};
        size_t added = 0;

        assert_int_equal(gcp_add_ssh_keys(&m, "core:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIadOopfaOOAdFWRkCoOimvDyOftqphtnIeiECJuhkdq c\n\n",
                                          "t", &added), 0);
        assert_int_equal(added, 1);
        assert_int_equal(gcp_add_ssh_keys(&m, "nocolon", "t", NULL), -EBADMSG);
        metadata_done(&m);
}

static void test_body_formats(void **state) {
        FetchRequest r = { .format = BODY_JSON };

        r.data = strdup("{\"a\": 1, \"a\": 2}");
        r.size = strlen(r.data);
        assert_int_equal(fetch_parse_body(&r), -EBADMSG); /* duplicate keys are refused */
        free(r.data);
        r.data = strdup("<x/>");
        r.size = 4;
        r.format = BODY_XML;
        assert_int_equal(fetch_parse_body(&r), 0);
        r.format = BODY_RAW;
        assert_int_equal(fetch_parse_body(&r), 0);
        fetch_request_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_azure),         cmocka_unit_test(test_azure_virtual_ip),
                cmocka_unit_test(test_packet),        cmocka_unit_test(test_digitalocean),
                cmocka_unit_test(test_hetzner_yaml),  cmocka_unit_test(test_oracle_scaleway_akamai),
                cmocka_unit_test(test_config_drives), cmocka_unit_test(test_gcp_keys), cmocka_unit_test(test_ibmcloud),
                cmocka_unit_test(test_body_formats),
        };
        log_set_max_level(LOG_CRIT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
