/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>

#include "metadata-agent-sshkey.h"

/* Number of length-prefixed strings after the type name in each key type's wire format. */
static const struct {
        const char *name;
        unsigned fields;
} key_types[] = {
        { "ssh-rsa", 2 },                            /* e, n */
        { "ssh-dss", 4 },                            /* p, q, g, y */
        { "ssh-ed25519", 1 },                        /* 32-byte key */
        { "ecdsa-sha2-nistp256", 2 },                /* curve, point */
        { "ecdsa-sha2-nistp384", 2 },
        { "ecdsa-sha2-nistp521", 2 },
        { "sk-ecdsa-sha2-nistp256@openssh.com", 3 }, /* curve, point, application */
        { "sk-ssh-ed25519@openssh.com", 2 },         /* key, application */
};

static int key_type_fields(const char *s, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(key_types); i++)
                if (strlen(key_types[i].name) == len && strncmp(key_types[i].name, s, len) == 0)
                        return (int) key_types[i].fields;
        return -1;
}

static int read_string(const unsigned char **p, size_t *left, const unsigned char **ret, size_t *ret_len) {
        uint32_t n;

        if (*left < 4)
                return -EBADMSG;
        n = (uint32_t) (*p)[0] << 24 | (uint32_t) (*p)[1] << 16 | (uint32_t) (*p)[2] << 8 | (*p)[3];
        if (n > *left - 4)
                return -EBADMSG;
        *ret = *p + 4;
        *ret_len = n;
        *p += 4 + n;
        *left -= 4 + n;
        return 0;
}

static int check_blob(const char *type, size_t type_len, int fields, const char *b64, size_t b64_len) {
        _cleanup_free_ unsigned char *blob = NULL;
        const unsigned char *p, *s;
        size_t left, slen, pad = 0;
        int n;

        if (b64_len == 0 || b64_len % 4 != 0 || b64_len > 64 * 1024)
                return -EBADMSG;
        for (size_t i = 0; i < b64_len; i++) {
                char c = b64[i];
                if (c == '=') {
                        if (i < b64_len - 2)
                                return -EBADMSG;
                        pad++;
                } else if (pad > 0 || !(('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') ||
                                        ('0' <= c && c <= '9') || c == '+' || c == '/'))
                        return -EBADMSG;
        }
        blob = malloc(b64_len / 4 * 3 + 1);
        if (!blob)
                return -ENOMEM;
        n = EVP_DecodeBlock(blob, (const unsigned char *) b64, (int) b64_len);
        if (n < 0 || (size_t) n < pad)
                return -EBADMSG;
        left = (size_t) n - pad;
        p = blob;
        if (read_string(&p, &left, &s, &slen) < 0 || slen != type_len || memcmp(s, type, type_len) != 0)
                return -EBADMSG;
        for (int i = 0; i < fields; i++) {
                if (read_string(&p, &left, &s, &slen) < 0)
                        return -EBADMSG;
                if (strncmp(type, "ssh-ed25519", type_len) == 0 && slen != 32)
                        return -EBADMSG;
        }
        return left == 0 ? 0 : -EBADMSG;
}

int ssh_key_normalize(const char *line, char **ret) {
        const char *p = line, *opts = NULL, *type = NULL, *b64, *comment;
        size_t opts_len = 0, type_len = 0, b64_len;
        int fields = -1, r;
        char *out;

        p += strspn(p, " \t");
        /* Either the line starts with the key type, or with an options field (which may hold quoted
         * strings with spaces, e.g. command="echo hi") followed by the type. */
        type_len = strcspn(p, " \t");
        fields = key_type_fields(p, type_len);
        if (fields >= 0)
                type = p;
        else {
                bool quoted = false;
                const char *q = p;

                for (; *q && (quoted || (*q != ' ' && *q != '\t')); q++) {
                        if (*q == '\\' && quoted && q[1])
                                q++;
                        else if (*q == '"')
                                quoted = !quoted;
                }
                if (quoted || q == p)
                        return -EBADMSG;
                opts = p;
                opts_len = (size_t) (q - p);
                q += strspn(q, " \t");
                type_len = strcspn(q, " \t");
                fields = key_type_fields(q, type_len);
                if (fields < 0)
                        return -EBADMSG;
                type = q;
        }
        b64 = type + type_len;
        b64 += strspn(b64, " \t");
        b64_len = strcspn(b64, " \t\r\n");
        r = check_blob(type, type_len, fields, b64, b64_len);
        if (r < 0)
                return r;
        comment = b64 + b64_len;
        comment += strspn(comment, " \t\r\n");
        {
                size_t cl = strlen(comment);
                while (cl > 0 && strchr(" \t\r\n", comment[cl - 1]))
                        cl--;
                /* A trailing line break is harmless; one inside would smuggle in a second line. */
                if (memchr(comment, '\n', cl) || memchr(comment, '\r', cl))
                        return -EBADMSG;
                if (asprintf(&out, "%.*s%s%.*s %.*s%s%.*s", (int) opts_len, opts ? opts : "", opts ? " " : "",
                             (int) type_len, type, (int) b64_len, b64, cl > 0 ? " " : "", (int) cl, comment) < 0)
                        return -ENOMEM;
        }
        *ret = out;
        return 0;
}
