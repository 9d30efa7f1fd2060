/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AWS / EC2 (Flatcar id "ec2"): IMDSv2 with a session token, falling back to IMDSv1 (spec §5.1). */
#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

#define AWS_API "2021-01-03"

static const Endpoint aws_endpoints[] = {
        { "AWS_INSTANCE_ID", AWS_API "/meta-data/instance-id" },
        { "AWS_INSTANCE_TYPE", AWS_API "/meta-data/instance-type" },
        { "AWS_IPV4_LOCAL", AWS_API "/meta-data/local-ipv4" },
        { "AWS_IPV4_PUBLIC", AWS_API "/meta-data/public-ipv4" },
        { "AWS_IPV6", AWS_API "/meta-data/ipv6" },
        { "AWS_AVAILABILITY_ZONE", AWS_API "/meta-data/placement/availability-zone" },
        { "AWS_AVAILABILITY_ZONE_ID", AWS_API "/meta-data/placement/availability-zone-id" },
        { "AWS_HOSTNAME", AWS_API "/meta-data/hostname" },
        { "AWS_PUBLIC_HOSTNAME", AWS_API "/meta-data/public-hostname" },
};

int aws_parse_identity_document(json_t *doc, Metadata *m) {
        const char *region;
        int r;

        if (!json_is_object(doc))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "AWS instance identity document is not a JSON object.");
        r = json_member_string(doc, "region", &region);
        if (r < 0)
                return r;
        return metadata_set_attr(m, "AWS_REGION", region);
}

/* Returns the token, or NULL when IMDSv2 is not available (then IMDSv1 is used). */
static char *aws_get_token(ProviderContext *c, const char *base) {
        static const HttpHeader ttl = { "X-aws-ec2-metadata-token-ttl-seconds", "21600" };
        _cleanup_free_ char *url = NULL;
        FetchRequest req;
        char *token = NULL;
        int r;

        if (asprintf(&url, "%s/latest/api/token", base) < 0)
                return NULL;
        r = fetch_request_init(&req, url, &ttl, 1, BODY_RAW, false);
        if (r >= 0) {
                req.method = "PUT";
                req.content_type = "text/plain; charset=utf-8";
                r = fetch_one(&c->policy, &req);
        }
        if (r >= 0 && (isempty(req.data) || strpbrk(req.data, "\r\n")))
                r = log_warning_errno(SYNTHETIC_ERRNO(EBADMSG), "IMDSv2 token response is empty or not one line.");
        if (r < 0)
                log_warning_errno(r, "Could not get an IMDSv2 token, falling back to IMDSv1: %m");
        else
                token = TAKE_PTR(req.data);
        fetch_request_done(&req);
        return token;
}

static int aws_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *base = provider_base(c, &provider_aws, "AWS", provider_aws.default_url);
        _cleanup_free_ char *token = NULL, *keys_url = NULL;
        FetchRequest reqs[ELEMENTSOF(aws_endpoints) + 3] = {};
        size_t n = 0, i_doc = SIZE_MAX, i_host = SIZE_MAX, i_keys = SIZE_MAX;
        HttpHeader h[1];
        size_t nh = 0;
        int r = 0;

        if (!base || asprintf(&keys_url, "%s/" AWS_API "/meta-data/public-keys", base) < 0)
                return log_oom();
        token = aws_get_token(c, base);
        if (token)
                h[nh++] = (HttpHeader) { "X-aws-ec2-metadata-token", token };

        /* Everything that does not depend on another answer goes out at once. */
        for (size_t i = 0; (want & (WANT_ATTRIBUTES | WANT_HOSTNAME)) && i < ELEMENTSOF(aws_endpoints) && r >= 0; i++) {
                _cleanup_free_ char *url = NULL;
                bool is_host = streq(aws_endpoints[i].key, "AWS_HOSTNAME");
                if (!(want & WANT_ATTRIBUTES) && !is_host)
                        continue;
                if (asprintf(&url, "%s/%s", base, aws_endpoints[i].path) < 0)
                        r = -ENOMEM;
                else
                        r = fetch_request_init(&reqs[n], url, h, nh, BODY_RAW, true);
                if (is_host)
                        i_host = n;
                n++;
        }
        if (r >= 0 && (want & WANT_ATTRIBUTES)) {
                _cleanup_free_ char *url = NULL;
                if (asprintf(&url, "%s/" AWS_API "/dynamic/instance-identity/document", base) < 0)
                        r = -ENOMEM;
                else
                        r = fetch_request_init(&reqs[i_doc = n++], url, h, nh, BODY_JSON, true);
        }
        if (r >= 0 && (want & WANT_SSH_KEYS))
                r = fetch_request_init(&reqs[i_keys = n++], keys_url, h, nh, BODY_RAW, true);
        if (r >= 0)
                r = fetch_many(&c->policy, reqs, n);

        if (r >= 0 && (want & WANT_ATTRIBUTES)) {
                for (size_t i = 0, k = 0; i < ELEMENTSOF(aws_endpoints) && r >= 0; i++, k++)
                        if (reqs[k].found)
                                r = metadata_set_attr(m, aws_endpoints[i].key, reqs[k].data);
                if (r >= 0 && reqs[i_doc].found)
                        r = aws_parse_identity_document(reqs[i_doc].json, m);
        }
        if (r >= 0 && (want & WANT_HOSTNAME) && reqs[i_host].found)
                r = metadata_set_hostname(m, reqs[i_host].data);
        if (r >= 0 && (want & WANT_SSH_KEYS))
                r = fetch_ec2_ssh_keys_from_list(c, keys_url, reqs[i_keys].found ? reqs[i_keys].data : NULL, h, nh, m);
        for (size_t i = 0; i < n; i++)
                fetch_request_done(&reqs[i]);
        return r;
}

const Provider provider_aws = {
        .name = "aws",
        .env_name = "AWS",
        .default_url = "http://169.254.169.254",
        .fetch = aws_fetch,
};
