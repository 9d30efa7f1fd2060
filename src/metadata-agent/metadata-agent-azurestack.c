/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Azure Stack Hub: the Azure WireServer (version check, goal state, ready report), the hostname from the
 * IMDS identity document, and SSH keys from the goal state's certificates, which come back encrypted to
 * a throw-away key pair (spec §5.3). No attributes. */
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "log.h"
#include "metadata-agent-azure.h"
#include "metadata-agent-parsers.h"
#include "metadata-agent-provider.h"

DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(BIO *, BIO_free);
DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(PKCS7 *, PKCS7_free);
DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(PKCS12 *, PKCS12_free);
DEFINE_TRIVIAL_CLEANUP_FUNC_VOID(BIGNUM *, BN_free);

static int ssl_error(const char *what) {
        unsigned long e = ERR_get_error();
        char buf[256];

        ERR_error_string_n(e, buf, sizeof(buf));
        ERR_clear_error();
        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: %s", what, e ? buf : "unknown error");
}

/* A 2048-bit RSA key and a self-signed certificate valid for 365 days, as the WireServer wants. */
static int make_transport_cert(EVP_PKEY **ret_key, X509 **ret_cert) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_RSA_gen(2048);
        _cleanup_(X509_freep) X509 *cert = NULL;
        X509_NAME *name;

        if (!key)
                return ssl_error("Failed to generate an RSA key");
        cert = X509_new();
        if (!cert || !X509_set_version(cert, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) ||
            !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
            !X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600) || !X509_set_pubkey(cert, key))
                return ssl_error("Failed to build the transport certificate");
        name = X509_get_subject_name(cert);
        if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "afterburn", -1, -1, 0) ||
            !X509_set_issuer_name(cert, name) || !X509_sign(cert, key, EVP_sha256()))
                return ssl_error("Failed to sign the transport certificate");
        *ret_key = TAKE_PTR(key);
        *ret_cert = TAKE_PTR(cert);
        return 0;
}

/* The PEM body without header, footer and line breaks, i.e. base64 of the DER. */
static char *cert_header_value(X509 *cert) {
        unsigned char *der = NULL;
        int n = i2d_X509(cert, &der);
        char *out;

        if (n <= 0)
                return NULL;
        out = malloc((size_t) (n + 2) / 3 * 4 + 1);
        if (out)
                EVP_EncodeBlock((unsigned char *) out, der, n);
        OPENSSL_free(der);
        return out;
}

static void put_string(unsigned char **p, const unsigned char *s, size_t n) {
        (*p)[0] = (unsigned char) (n >> 24);
        (*p)[1] = (unsigned char) (n >> 16);
        (*p)[2] = (unsigned char) (n >> 8);
        (*p)[3] = (unsigned char) n;
        memcpy(*p + 4, s, n);
        *p += 4 + n;
}

static void put_mpint(unsigned char **p, const BIGNUM *bn) {
        unsigned char buf[1024 + 1];
        int n = BN_num_bytes(bn);

        buf[0] = 0;
        BN_bn2bin(bn, buf + 1);
        /* An mpint whose top bit is set gets a leading zero byte. */
        if (n > 0 && (buf[1] & 0x80))
                put_string(p, buf, (size_t) n + 1);
        else
                put_string(p, buf + 1, (size_t) n);
}

/* An RSA public key as an OpenSSH "ssh-rsa" line. */
static int azurestack_openssh_key(EVP_PKEY *key, char **ret) {
        _cleanup_(BN_freep) BIGNUM *n = NULL, *e = NULL;
        unsigned char blob[4 + 7 + 4 + 1025 + 4 + 1025], *p = blob;
        char b64[sizeof(blob) / 3 * 4 + 8];

        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
                return log_error_errno(SYNTHETIC_ERRNO(EOPNOTSUPP), "Certificate key is not RSA.");
        if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) || !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e))
                return ssl_error("Failed to read the RSA key");
        if (BN_num_bytes(n) > 1024 || BN_num_bytes(e) > 1024)
                return log_error_errno(SYNTHETIC_ERRNO(E2BIG), "RSA key too large.");
        put_string(&p, (const unsigned char *) "ssh-rsa", 7);
        put_mpint(&p, e);
        put_mpint(&p, n);
        EVP_EncodeBlock((unsigned char *) b64, blob, (int) (p - blob));
        if (asprintf(ret, "ssh-rsa %s", b64) < 0)
                return -ENOMEM;
        return 0;
}

/* CertificateFile/Data: base64 DER PKCS#7 enveloped data → PKCS#12 → the certificates' public keys. */
static int azurestack_parse_certificates(const XmlNode *root, EVP_PKEY *key, X509 *cert, Metadata *m) {
        _cleanup_free_ char *data = NULL, *clean = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        _cleanup_(PKCS7_freep) PKCS7 *p7 = NULL;
        _cleanup_(PKCS12_freep) PKCS12 *p12 = NULL;
        _cleanup_(BIO_freep) BIO *out = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pfx_key = NULL;
        _cleanup_(X509_freep) X509 *pfx_cert = NULL;
        STACK_OF(X509) *ca = NULL;
        const unsigned char *q;
        const unsigned char *pfx;
        size_t cl = 0;
        long pfx_len;
        int n, r = 0;

        data = xml_text(xml_child(root, "Data"));
        if (!root || !streq(root->name, "CertificateFile") || isempty(data))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Certificates document has no CertificateFile/Data.");
        clean = malloc(strlen(data) + 1);
        if (!clean)
                return -ENOMEM;
        for (const char *s = data; *s; s++)
                if (!strchr(" \t\r\n", *s))
                        clean[cl++] = *s;
        if (cl == 0 || cl % 4 != 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Certificates Data is not base64.");
        der = malloc(cl / 4 * 3);
        if (!der)
                return -ENOMEM;
        n = EVP_DecodeBlock(der, (unsigned char *) clean, (int) cl);
        if (n < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Certificates Data is not base64.");
        n -= (clean[cl - 1] == '=') + (clean[cl - 2] == '=');
        q = der;
        p7 = d2i_PKCS7(NULL, &q, n);
        if (!p7)
                return ssl_error("Certificates Data is not PKCS#7");
        out = BIO_new(BIO_s_mem());
        if (!out)
                return -ENOMEM;
        if (!PKCS7_decrypt(p7, key, cert, out, 0))
                return ssl_error("Failed to decrypt the certificates");
        pfx_len = BIO_get_mem_data(out, (char **) &pfx);
        q = pfx;
        p12 = d2i_PKCS12(NULL, &q, pfx_len);
        if (!p12)
                return ssl_error("Decrypted certificates are not PKCS#12");
        if (!PKCS12_parse(p12, "", &pfx_key, &pfx_cert, &ca))
                return ssl_error("Failed to open the PKCS#12 bundle");
        m->ssh_keys_valid = true;
        if (pfx_cert) {
                _cleanup_free_ char *line = NULL;
                r = azurestack_openssh_key(X509_get0_pubkey(pfx_cert), &line);
                if (r >= 0)
                        r = metadata_add_ssh_key(m, line, "Azure Stack certificates");
        }
        for (int i = 0; r >= 0 && ca && i < sk_X509_num(ca); i++) {
                _cleanup_free_ char *line = NULL;
                r = azurestack_openssh_key(X509_get0_pubkey(sk_X509_value(ca, i)), &line);
                if (r >= 0)
                        r = metadata_add_ssh_key(m, line, "Azure Stack certificates");
        }
        sk_X509_pop_free(ca, X509_free);
        return r;
}

static int azurestack_ssh_keys(ProviderContext *c, const Azure *a, Metadata *m) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_free_ char *hdr = NULL;
        FetchRequest gs = {}, certs = {};
        OSSL_PROVIDER *legacy = NULL, *deflt = NULL;
        AzureGoalState g = {};
        int r;

        r = azure_goal_state_request(a, &gs);
        if (r >= 0)
                r = fetch_one(&c->policy, &gs);
        if (r >= 0)
                r = azure_parse_goal_state(gs.xml, &g);
        if (r >= 0 && !g.certificates_url) {
                log_info("The goal state lists no certificates: no SSH keys.");
                m->ssh_keys_valid = true;
                goto done;
        }
        /* Some PFX bundles use ciphers that OpenSSL 3 keeps in its legacy provider (loading any provider
         * explicitly means the default one must be loaded explicitly too). */
        if (r >= 0) {
                legacy = OSSL_PROVIDER_load(NULL, "legacy");
                deflt = OSSL_PROVIDER_load(NULL, "default");
        }
        if (r >= 0)
                r = make_transport_cert(&key, &cert);
        if (r >= 0 && !(hdr = cert_header_value(cert)))
                r = log_oom();
        if (r >= 0)
                r = fetch_request_init(&certs, g.certificates_url, azure_ws_headers, AZURE_WS_HEADERS, BODY_XML, false);
        if (r >= 0)
                r = fetch_request_add_header(&certs, "x-ms-cipher-name", "DES_EDE3_CBC");
        if (r >= 0)
                r = fetch_request_add_header(&certs, "x-ms-guest-agent-public-x509-cert", hdr);
        if (r >= 0)
                r = fetch_one(&c->policy, &certs);
        if (r >= 0)
                r = azurestack_parse_certificates(certs.xml, key, cert, m);
done:
        if (legacy)
                OSSL_PROVIDER_unload(legacy);
        if (deflt)
                OSSL_PROVIDER_unload(deflt);
        azure_goal_state_done(&g);
        fetch_request_done(&gs);
        fetch_request_done(&certs);
        return r;
}

static int azurestack_fetch(ProviderContext *c, unsigned want, Metadata *m) {
        static const HttpHeader h[] = {
                { "x-ms-agent-name", "com.coreos.afterburn" },
                { "x-ms-version", AZURE_WIRESERVER_VERSION },
                { "Metadata", "true" },
        };
        _cleanup_(azure_done) Azure a = {};
        int r;

        r = azure_init(c, &provider_azurestack, &a);
        if (r < 0)
                return r;
        if (want & WANT_HOSTNAME) {
                _cleanup_free_ char *url = NULL;
                FetchRequest req;
                const char *name = NULL;

                if (asprintf(&url, "%s/Microsoft.Compute/identity?api-version=2019-03-11", a.imds) < 0)
                        return log_oom();
                r = fetch_request_init(&req, url, h, ELEMENTSOF(h), BODY_JSON, false);
                if (r >= 0)
                        r = fetch_one(&c->policy, &req);
                if (r >= 0 && (json_member_string(req.json, "vmName", &name) < 0 || !name))
                        r = log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "Azure Stack identity document has no vmName.");
                if (r >= 0)
                        r = metadata_set_hostname(m, name);
                fetch_request_done(&req);
                if (r < 0)
                        return r;
        }
        if (want & WANT_SSH_KEYS)
                return azurestack_ssh_keys(c, &a, m);
        return 0;
}

static int azurestack_check_in(ProviderContext *c) {
        return azure_report_ready(c, &provider_azurestack);
}

const Provider provider_azurestack = {
        .name = "azurestack",
        .env_name = "AZURESTACK",
        .default_url = "http://169.254.169.254",
        .fetch = azurestack_fetch,
        .check_in = azurestack_check_in,
};
