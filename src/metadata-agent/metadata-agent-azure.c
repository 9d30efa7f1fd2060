/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Microsoft Azure: WireServer (goal state, shared config, ready report) and IMDS (spec §5.2). */
#include <arpa/inet.h>

#include "fileio.h"
#include "log.h"
#include "metadata-agent-azure.h"
#include "metadata-agent-dhcp.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"


const HttpHeader azure_ws_headers[AZURE_WS_HEADERS] = {
        { "x-ms-agent-name", "com.coreos.afterburn" },
        { "x-ms-version", AZURE_WIRESERVER_VERSION },
};
#define ws_headers azure_ws_headers
static const HttpHeader imds_headers[] = {
        { "x-ms-agent-name", "com.coreos.afterburn" },
        { "x-ms-version", AZURE_WIRESERVER_VERSION },
        { "Metadata", "true" },
};

void azure_goal_state_done(AzureGoalState *g) {
        free(g->incarnation);
        free(g->container_id);
        free(g->instance_id);
        free(g->shared_config_url);
        free(g->certificates_url);
        *g = (AzureGoalState) {};
}

int azure_parse_versions(const XmlNode *root) {
        if (!root || !streq(root->name, "Versions"))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "WireServer versions document has no <Versions> root.");
        for (XmlNode *v = xml_path(root, "Supported/Version"); v; v = xml_next_sibling(v, "Version")) {
                _cleanup_free_ char *t = xml_text(v);
                if (!t)
                        return -ENOMEM;
                if (streq(t, AZURE_WIRESERVER_VERSION))
                        return 0;
        }
        return log_error_errno(SYNTHETIC_ERRNO(EPROTONOSUPPORT),
                               "WireServer does not support protocol version " AZURE_WIRESERVER_VERSION ".");
}

static int required_text(const XmlNode *root, const char *path, char **ret) {
        _cleanup_free_ char *t = xml_text(xml_path(root, path));

        if (!t || isempty(t))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Goal state has no %s.", path);
        *ret = TAKE_PTR(t);
        return 0;
}

int azure_parse_goal_state(const XmlNode *root, AzureGoalState *ret) {
        AzureGoalState g = {};
        int r;

        if (!root || !streq(root->name, "GoalState"))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Goal state document has no <GoalState> root.");
        r = required_text(root, "Incarnation", &g.incarnation);
        if (r >= 0)
                r = required_text(root, "Container/ContainerId", &g.container_id);
        if (r >= 0)
                r = required_text(root, "Container/RoleInstanceList/RoleInstance/InstanceId", &g.instance_id);
        if (r >= 0)
                r = required_text(root, "Container/RoleInstanceList/RoleInstance/Configuration/SharedConfig",
                                  &g.shared_config_url);
        if (r >= 0) {
                g.certificates_url = xml_text(xml_path(root, "Container/RoleInstanceList/RoleInstance/Configuration/Certificates"));
                if (g.certificates_url && !*g.certificates_url)
                        g.certificates_url = mfree(g.certificates_url);
        }
        if (r < 0) {
                azure_goal_state_done(&g);
                return r;
        }
        *ret = g;
        return 0;
}

/* "ip:port" (IPv4) → ip, or NULL if it does not parse. */
static char *endpoint_ip(const char *s) {
        const char *colon = strrchr(s, ':');
        struct in_addr a;
        char ip[INET_ADDRSTRLEN];
        uint32_t port;

        if (!colon || (size_t) (colon - s) >= sizeof(ip) || safe_atou32(colon + 1, &port) < 0 || port > 65535)
                return NULL;
        memcpy(ip, s, (size_t) (colon - s));
        ip[colon - s] = '\0';
        if (inet_pton(AF_INET, ip, &a) != 1)
                return NULL;
        return strdup(ip);
}

int azure_parse_shared_config(const XmlNode *root, Metadata *m) {
        const char *instance;
        XmlNode *inst;

        if (!root || !streq(root->name, "SharedConfig"))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Shared config document has no <SharedConfig> root.");
        instance = xml_attr(xml_child(root, "Incarnation"), "instance");
        if (!instance)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Shared config has no Incarnation/@instance.");
        for (inst = xml_path(root, "Instances/Instance"); inst; inst = xml_next_sibling(inst, "Instance"))
                if (streq_ptr(xml_attr(inst, "id"), instance))
                        break;
        if (!inst)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Shared config lists no instance \"%s\".", instance);

        _cleanup_free_ char *virtual = NULL;
        for (XmlNode *e = xml_path(inst, "InputEndpoints/Endpoint"); e; e = xml_next_sibling(e, "Endpoint")) {
                const char *a = xml_attr(e, "loadBalancedPublicAddress");
                char *ip = a ? endpoint_ip(a) : NULL;
                if (ip) {
                        free(virtual);
                        virtual = ip;
                }
        }
        int r = metadata_set_attr(m, "AZURE_IPV4_DYNAMIC", xml_attr(inst, "address"));
        if (r >= 0)
                r = metadata_set_attr(m, "AZURE_IPV4_VIRTUAL", virtual);
        return r;
}

int azure_parse_public_keys(json_t *doc, Metadata *m) {
        size_t i;
        json_t *e;

        if (!json_is_array(doc))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "IMDS publicKeys is not a JSON array.");
        m->ssh_keys_valid = true;
        json_array_foreach(doc, i, e) {
                const char *kd;
                _cleanup_free_ char *key = NULL;
                char *w;
                int r;

                r = json_member_string(e, "keyData", &kd);
                if (r < 0)
                        return r;
                if (!kd)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "IMDS publicKeys[%zu] has no keyData.", i);
                key = strdup(kd);
                if (!key)
                        return -ENOMEM;
                w = key;
                for (const char *p = key; *p; p++)
                        if (*p != '\r' && *p != '\n')
                                *w++ = *p;
                *w = '\0';
                if (strspn(key, " \t") == strlen(key))
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "IMDS publicKeys[%zu] has an empty keyData.", i);
                r = metadata_add_ssh_key(m, key, "Azure IMDS");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* DHCP option 245 (8 hex digits, NetworkManager puts colons in between) as an IPv4 address. */
static char *azure_wireserver_from_leases(void) {
        _cleanup_free_ char *v = NULL;
        char buf[INET_ADDRSTRLEN];
        struct in_addr in;
        uint32_t a = 0;
        size_t n = 0;

        if (dhcp_lease_lookup("OPTION_245", &v) < 0)
                return NULL;
        for (const char *p = v; *p; p++) {
                int x = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 :
                        *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;
                if (*p == ':')
                        continue;
                if (x < 0 || ++n > 8)
                        return NULL;
                a = a << 4 | (uint32_t) x;
        }
        if (n != 8)
                return NULL;
        in.s_addr = htonl(a);
        return inet_ntop(AF_INET, &in, buf, sizeof(buf)) ? strdup(buf) : NULL;
}

void azure_done(Azure *a) {
        free(a->ws);
        free(a->imds);
}

int azure_init(ProviderContext *c, const Provider *p, Azure *a) {
        _cleanup_free_ char *lease = NULL, *def = NULL, *url = NULL;
        FetchRequest req;
        int r;

        *a = (Azure) {};
        if (!getenv("SWITCHYARD_METADATA_URL_AZURE_WIRESERVER")) {
                lease = azure_wireserver_from_leases();
                if (!lease)
                        log_info("No WireServer address in the DHCP leases (option 245), using " AZURE_WIRESERVER_FALLBACK ".");
        }
        if (asprintf(&def, "http://%s", lease ?: AZURE_WIRESERVER_FALLBACK) < 0)
                return log_oom();
        a->ws = provider_base(c, p, "AZURE_WIRESERVER", def);
        a->imds = provider_base(c, p, p->env_name, "http://169.254.169.254");
        if (!a->ws || !a->imds || asprintf(&url, "%s/?comp=versions", a->ws) < 0)
                return log_oom();
        if (geteuid() != 0)
                log_info("Not running as root; Azure firewall rules usually block WireServer access for other users.");
        r = fetch_request_init(&req, url, ws_headers, ELEMENTSOF(ws_headers), BODY_XML, false);
        if (r >= 0)
                r = fetch_one(&c->policy, &req);
        if (r >= 0)
                r = azure_parse_versions(req.xml);
        fetch_request_done(&req);
        return r;
}

int azure_goal_state_request(const Azure *a, FetchRequest *req) {
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s/machine/?comp=goalstate", a->ws) < 0)
                return -ENOMEM;
        return fetch_request_init(req, url, ws_headers, ELEMENTSOF(ws_headers), BODY_XML, false);
}

static int azure_imds_request(const Azure *a, const char *path, BodyFormat f, FetchRequest *req) {
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s/metadata/instance/compute/%s", a->imds, path) < 0)
                return -ENOMEM;
        return fetch_request_init(req, url, imds_headers, ELEMENTSOF(imds_headers), f, false);
}

static int azure_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_(azure_done) Azure a = {};
        int r;

        r = azure_init(c, &provider_azure, &a);
        if (r < 0)
                return r;
        if (want & WANT_ATTRIBUTES) {
                FetchRequest reqs[2] = {}, shared = {};
                AzureGoalState g = {};

                r = azure_goal_state_request(&a, &reqs[0]);
                if (r >= 0)
                        r = azure_imds_request(&a, "vmSize?api-version=2017-08-01&format=text", BODY_RAW, &reqs[1]);
                if (r >= 0)
                        r = fetch_many(&c->policy, reqs, 2);
                if (r >= 0)
                        r = azure_parse_goal_state(reqs[0].xml, &g);
                if (r >= 0)
                        r = fetch_request_init(&shared, g.shared_config_url, ws_headers, ELEMENTSOF(ws_headers),
                                               BODY_XML, false);
                if (r >= 0)
                        r = fetch_one(&c->policy, &shared);
                if (r >= 0)
                        r = azure_parse_shared_config(shared.xml, m);
                if (r >= 0)
                        r = metadata_set_attr(m, "AZURE_VMSIZE", reqs[1].data);
                azure_goal_state_done(&g);
                fetch_request_done(&shared);
                fetch_request_done(&reqs[0]);
                fetch_request_done(&reqs[1]);
                if (r < 0)
                        return r;
        }
        if (want & (WANT_HOSTNAME | WANT_SSH_KEYS)) {
                FetchRequest reqs[2] = {};
                size_t n = 0, ih = SIZE_MAX, ik = SIZE_MAX;

                r = 0;
                if (want & WANT_HOSTNAME) {
                        ih = n++;
                        r = azure_imds_request(&a, "name?api-version=2017-08-01&format=text", BODY_RAW, &reqs[ih]);
                }
                if (r >= 0 && (want & WANT_SSH_KEYS)) {
                        ik = n++;
                        r = azure_imds_request(&a, "publicKeys?api-version=2021-02-01", BODY_JSON, &reqs[ik]);
                }
                if (r >= 0)
                        r = fetch_many(&c->policy, reqs, n);
                if (r >= 0 && ih != SIZE_MAX)
                        r = metadata_set_hostname(m, reqs[ih].data);
                if (r >= 0 && ik != SIZE_MAX)
                        r = azure_parse_public_keys(reqs[ik].json, m);
                for (size_t i = 0; i < n; i++)
                        fetch_request_done(&reqs[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

char *azure_health_report(const AzureGoalState *g) {
        char *s;

        /* The values come from the goal state XML as text; they go back into XML, so refuse markup. */
        if (strpbrk(g->incarnation, "<>&\"'") || strpbrk(g->container_id, "<>&\"'") ||
            strpbrk(g->instance_id, "<>&\"'"))
                return NULL;
        if (asprintf(&s,
                     "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                     "<Health xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n"
                     "  <GoalStateIncarnation>%s</GoalStateIncarnation>\n"
                     "  <Container>\n"
                     "    <ContainerId>%s</ContainerId>\n"
                     "    <RoleInstanceList>\n"
                     "      <Role>\n"
                     "        <InstanceId>%s</InstanceId>\n"
                     "        <Health>\n"
                     "          <State>Ready</State>\n"
                     "        </Health>\n"
                     "      </Role>\n"
                     "    </RoleInstanceList>\n"
                     "  </Container>\n"
                     "</Health>\n",
                     g->incarnation, g->container_id, g->instance_id) < 0)
                return NULL;
        return s;
}

int azure_report_ready(ProviderContext *c, const Provider *p) {
        _cleanup_(azure_done) Azure a = {};
        int r;

        r = azure_init(c, p, &a);
        if (r < 0)
                return r;
        /* afterburn wraps the report in an outer retry (5 retries) on top of the client's own. */
        for (unsigned attempt = 0;; attempt++) {
                FetchRequest gs = {}, post = {};
                AzureGoalState g = {};
                _cleanup_free_ char *body = NULL, *url = NULL;

                r = azure_goal_state_request(&a, &gs);
                if (r >= 0)
                        r = fetch_one(&c->policy, &gs);
                if (r >= 0)
                        r = azure_parse_goal_state(gs.xml, &g);
                if (r >= 0 && !(body = azure_health_report(&g)))
                        r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Goal state values cannot go into a health report.");
                if (r >= 0 && asprintf(&url, "%s/machine/?comp=health", a.ws) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = fetch_request_init(&post, url, ws_headers, ELEMENTSOF(ws_headers), BODY_RAW, false);
                if (r >= 0) {
                        post.method = "POST";
                        post.body = body;
                        post.body_size = strlen(body);
                        post.content_type = "text/xml; charset=utf-8";
                        r = fetch_one(&c->policy, &post);
                }
                azure_goal_state_done(&g);
                fetch_request_done(&gs);
                fetch_request_done(&post);
                if (r >= 0) {
                        log_info("Reported ready to the Azure WireServer.");
                        return 0;
                }
                if (r == -ENOMEM || attempt >= MIN(5u, c->policy.max_retries))
                        return r;
                log_info("Ready report failed, trying again.");
        }
}

static int azure_check_in(ProviderContext *c) {
        return azure_report_ready(c, &provider_azure);
}

const Provider provider_azure = {
        .name = "azure",
        .env_name = "AZURE",
        .default_url = "http://169.254.169.254",
        .fetch = azure_fetch,
        .check_in = azure_check_in,
};
