/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* IBM Cloud VPC (Gen2): a "cidata" iso9660 drive with meta-data ("key: value" lines) and a MIME multipart
 * vendor-data whose text/cloud-config part carries ssh_authorized_keys (spec §5.13). */
#include <openssl/evp.h>

#include "log.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"
#include "metadata-agent-yaml.h"

int ibmcloud_parse_meta_data(const char *text, unsigned want, Metadata *m) {
        int r = 0;

        for (const char *p = text; *p && r >= 0;) {
                size_t l = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, l);
                char *colon, *k, *v, *e;

                if (!line)
                        return -ENOMEM;
                p += l + (p[l] == '\n');
                colon = strchr(line, ':');
                if (!colon)
                        continue;
                *colon = '\0';
                k = line + strspn(line, " \t\r");
                for (e = colon; e > k && strchr(" \t\r", e[-1]); e--)
                        ;
                *e = '\0';
                v = colon + 1 + strspn(colon + 1, " \t\r");
                for (e = v + strlen(v); e > v && strchr(" \t\r", e[-1]); e--)
                        ;
                *e = '\0';
                if (!*k || !*v)
                        continue;
                if (streq(k, "instance-id") && (want & WANT_ATTRIBUTES))
                        r = metadata_set_attr(m, "IBMCLOUD_INSTANCE_ID", v);
                else if (streq(k, "local-hostname")) {
                        if (want & WANT_ATTRIBUTES)
                                r = metadata_set_attr(m, "IBMCLOUD_LOCAL_HOSTNAME", v);
                        if (r >= 0 && (want & WANT_HOSTNAME))
                                r = metadata_set_hostname(m, v);
                }
        }
        return r;
}

/* Case-insensitive header lookup in a block of "Name: value" lines (continuation lines unfolded). */
static char *header_value(const char *headers, size_t len, const char *name) {
        size_t nl = strlen(name);

        for (const char *p = headers; p < headers + len;) {
                const char *eol = memchr(p, '\n', (size_t) (headers + len - p)) ?: headers + len;
                if ((size_t) (eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
                        const char *v = p + nl + 1;
                        size_t vl;
                        while (v < eol && (*v == ' ' || *v == '\t'))
                                v++;
                        vl = (size_t) (eol - v);
                        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                                vl--;
                        return strndup(v, vl);
                }
                p = eol + 1;
        }
        return NULL;
}

/* Does any header of the part have exactly the value text/cloud-config (afterburn checks every header)? */
static bool part_is_cloud_config(const char *headers, size_t len) {
        for (const char *p = headers; p < headers + len;) {
                const char *eol = memchr(p, '\n', (size_t) (headers + len - p)) ?: headers + len;
                const char *colon = memchr(p, ':', (size_t) (eol - p));
                if (colon) {
                        const char *v = colon + 1;
                        size_t vl;
                        while (v < eol && (*v == ' ' || *v == '\t'))
                                v++;
                        vl = (size_t) (eol - v);
                        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                                vl--;
                        if (vl == strlen("text/cloud-config") && strncmp(v, "text/cloud-config", vl) == 0)
                                return true;
                }
                p = eol + 1;
        }
        return false;
}

static const char *headers_end(const char *p, const char *end, const char **ret_body) {
        for (const char *q = p; q < end; q++)
                if (*q == '\n' && (q + 1 < end && (q[1] == '\n' || (q[1] == '\r' && q + 2 < end && q[2] == '\n')))) {
                        *ret_body = q + (q[1] == '\n' ? 2 : 3);
                        return q + 1;
                }
        return NULL;
}

int ibmcloud_vendor_data_cloud_config(const char *data, size_t size, char **ret) {
        _cleanup_free_ char *ctype = NULL, *delim = NULL, *chosen = NULL;
        const char *end = data + size, *body, *hend, *b, *p;
        size_t dl;

        hend = headers_end(data, end, &body);
        if (!hend)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "vendor-data has no MIME header block.");
        ctype = header_value(data, (size_t) (hend - data), "Content-Type");
        b = ctype ? strcasestr(ctype, "boundary=") : NULL;
        if (!b)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "vendor-data is not MIME multipart (no boundary).");
        b += strlen("boundary=");
        if (asprintf(&delim, "--%.*s", (int) (*b == '"' ? strcspn(b + 1, "\"") : strcspn(b, "; \t")), b + (*b == '"')) < 0)
                return -ENOMEM;
        dl = strlen(delim);

        /* Parts lie between lines that start with the delimiter; "--" after it closes the multipart. */
        p = memmem(body, (size_t) (end - body), delim, dl);
        while (p) {
                const char *part = p + dl, *next, *pbody, *pend;
                if (part + 2 <= end && part[0] == '-' && part[1] == '-')
                        break;
                part = memchr(part, '\n', (size_t) (end - part));
                if (!part)
                        break;
                part++;
                next = memmem(part, (size_t) (end - part), delim, dl);
                while (next && next > part && next[-1] != '\n')
                        next = memmem(next + 1, (size_t) (end - next - 1), delim, dl);
                pend = next ?: end;
                hend = headers_end(part, pend, &pbody);
                if (hend && part_is_cloud_config(part, (size_t) (hend - part))) {
                        _cleanup_free_ char *enc = header_value(part, (size_t) (hend - part), "Content-Transfer-Encoding");
                        size_t bl = (size_t) (pend - pbody);
                        char *text;

                        if (bl > 0 && pbody[bl - 1] == '\n')
                                bl--; /* the line break before the delimiter belongs to it */
                        if (bl > 0 && pbody[bl - 1] == '\r')
                                bl--;
                        if (enc && strcasecmp(enc, "base64") == 0) {
                                _cleanup_free_ char *clean = malloc(bl + 1);
                                size_t cl = 0;
                                int n;
                                if (!clean)
                                        return -ENOMEM;
                                for (size_t i = 0; i < bl; i++)
                                        if (!strchr(" \t\r\n", pbody[i]))
                                                clean[cl++] = pbody[i];
                                text = malloc(cl / 4 * 3 + 4);
                                if (!text)
                                        return -ENOMEM;
                                n = cl % 4 == 0 ? EVP_DecodeBlock((unsigned char *) text, (unsigned char *) clean, (int) cl) : -1;
                                if (n < 0) {
                                        free(text);
                                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "vendor-data part has bad base64.");
                                }
                                while (n > 0 && cl > 0 && clean[cl - 1] == '=') {
                                        n--;
                                        cl--;
                                }
                                text[n] = '\0';
                        } else if (!(text = strndup(pbody, bl)))
                                return -ENOMEM;
                        if (strstr(text, "ssh_authorized_keys")) {
                                free(chosen);
                                chosen = text; /* afterburn keeps looking: the last such part wins */
                        } else
                                free(text);
                }
                p = next;
        }
        if (!chosen)
                return log_error_errno(SYNTHETIC_ERRNO(ENOENT), "No cloud-config section with ssh_authorized_keys in vendor-data.");
        *ret = TAKE_PTR(chosen);
        return 0;
}

int ibmcloud_parse_vendor_data(const char *data, size_t size, Metadata *m) {
        _cleanup_free_ char *cc = NULL;
        json_t *doc = NULL, *keys, *k;
        size_t i;
        int r;

        r = ibmcloud_vendor_data_cloud_config(data, size, &cc);
        if (r < 0)
                return r;
        r = yaml_parse_json(cc, strlen(cc), &doc);
        if (r < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "The vendor-data cloud-config is not valid YAML.");
        keys = json_object_get(doc, "ssh_authorized_keys");
        if (!json_is_array(keys))
                r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "ssh_authorized_keys in vendor-data is not a list.");
        m->ssh_keys_valid = true;
        json_array_foreach(keys, i, k) {
                if (r < 0)
                        break;
                r = json_is_string(k) ? metadata_add_ssh_key(m, json_string_value(k), "IBM Cloud vendor-data")
                                      : log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "An SSH key in vendor-data is not a string.");
        }
        json_decref(doc);
        return r;
}

static int ibmcloud_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        _cleanup_free_ char *dir = NULL;
        int r;

        r = config_drive_open(c, &provider_ibmcloud, &dir);
        if (r == -ENODEV)
                return config_drive_log_missing(LOG_ERR, &provider_ibmcloud);
        if (r < 0)
                return r;
        if (want & (WANT_ATTRIBUTES | WANT_HOSTNAME)) {
                _cleanup_free_ char *text = NULL;
                r = config_drive_read(dir, "meta-data", &text, NULL);
                if (r < 0)
                        log_error_errno(r, "Failed to read meta-data from the config drive: %m");
                else
                        r = ibmcloud_parse_meta_data(text, want, m);
        }
        if (r >= 0 && (want & WANT_SSH_KEYS)) {
                _cleanup_free_ char *data = NULL;
                size_t size;
                r = config_drive_read(dir, "vendor-data", &data, &size);
                if (r < 0)
                        log_error_errno(r, "Failed to read vendor-data from the config drive: %m");
                else
                        r = ibmcloud_parse_vendor_data(data, size, m);
        }
        return r;
}

const Provider provider_ibmcloud = {
        .name = "ibmcloud",
        .config_drive = &config_drive_ibmcloud,
        .fetch = ibmcloud_fetch,
};
