/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>

#include "log.h"
#include "omaha-client-request.h"

OmahaEvent omaha_event_error(uint32_t code, uint32_t flags) {
        bool deferred = code == 35 || code == 36 || code == 40;

        return (OmahaEvent) {
                .type = OMAHA_EVENT_UPDATE_COMPLETE,
                .result = deferred ? OMAHA_RESULT_DEFERRED : OMAHA_RESULT_ERROR,
                .errorcode = code | flags,
        };
}

/* Decodes one UTF-8 sequence; returns its length, or 0 if it is not valid (overlong, surrogate, > U+10FFFF). */
static size_t utf8_decode(const unsigned char *s, uint32_t *ret) {
        uint32_t cp;
        size_t n;

        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        }
        if ((s[0] & 0xe0) == 0xc0) {
                n = 2;
                cp = s[0] & 0x1f;
        } else if ((s[0] & 0xf0) == 0xe0) {
                n = 3;
                cp = s[0] & 0x0f;
        } else if ((s[0] & 0xf8) == 0xf0) {
                n = 4;
                cp = s[0] & 0x07;
        } else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret = cp;
        return n;
}

int omaha_xml_escape(const char *s, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (const unsigned char *p = (const unsigned char *) s; *p;) {
                uint32_t cp;
                size_t n;

                switch (*p) {
                case '<':
                        fputs("&lt;", f);
                        p++;
                        continue;
                case '>':
                        fputs("&gt;", f);
                        p++;
                        continue;
                case '&':
                        fputs("&amp;", f);
                        p++;
                        continue;
                case '"':
                        fputs("&quot;", f);
                        p++;
                        continue;
                }
                n = utf8_decode(p, &cp);
                if (n == 0) {
                        /* Not UTF-8: the replacement character keeps the document well-formed. */
                        fputs("&#xFFFD;", f);
                        p++;
                } else if (cp >= 0x80 || (cp < 0x20)) {
                        /* Control characters other than tab, CR, LF cannot appear in XML 1.0 at all. */
                        if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')
                                cp = 0xfffd;
                        fprintf(f, "&#x%" PRIX32 ";", cp);
                        p += n;
                } else {
                        fputc(*p, f);
                        p++;
                }
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

#define ESC(var, value)                                                                                      \
        _cleanup_free_ char *var = NULL;                                                                     \
        if (omaha_xml_escape((value) ?: "", &var) < 0)                                                       \
                return -ENOMEM

int omaha_request_build(const OmahaConfig *c, const OmahaRequest *req, char **ret) {
        _cleanup_free_ char *buf = NULL, *sp = NULL;
        size_t size = 0;
        FILE *f;

        if (asprintf(&sp, "%s_%s", c->version, c->arch) < 0)
                return -ENOMEM;
        ESC(e_sp, sp);
        ESC(e_appid, c->appid);
        ESC(e_version, c->version);
        ESC(e_track, c->group);
        ESC(e_bootid, c->boot_id);
        ESC(e_oem, c->oem_id);
        ESC(e_oemversion, c->oem_version);
        ESC(e_aleph, req->alephversion);
        ESC(e_machineid, c->machine_id);
        ESC(e_alias, c->machine_alias);
        ESC(e_board, c->board);

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
        fprintf(f,
                "<request protocol=\"3.0\" version=\"" OMAHA_UPDATER_VERSION "\" updaterversion=\""
                OMAHA_UPDATER_VERSION "\" installsource=\"%s\" ismachine=\"1\">\n",
                req->interactive ? "ondemandupdate" : "scheduler");
        fprintf(f, "    <os version=\"Chateau\" platform=\"CoreOS\" sp=\"%s\"></os>\n", e_sp);
        fprintf(f,
                "    <app appid=\"%s\" version=\"%s\" track=\"%s\" bootid=\"%s\" oem=\"%s\" oemversion=\"%s\" "
                "alephversion=\"%s\" machineid=\"%s\" machinealias=\"%s\" lang=\"en-US\" board=\"%s\" "
                "hardware_class=\"\" delta_okay=\"false\" >\n",
                e_appid, e_version, e_track, e_bootid, e_oem, e_oemversion, e_aleph, e_machineid, e_alias,
                e_board);
        if (req->ping)
                fputs("        <ping active=\"1\"></ping>\n", f);
        if (req->updatecheck)
                fputs("        <updatecheck></updatecheck>\n", f);
        if (req->event) {
                fprintf(f, "        <event eventtype=\"%u\" eventresult=\"%u\"", req->event->type,
                        req->event->result);
                if (req->event->errorcode != OMAHA_NO_ERRORCODE)
                        fprintf(f, " errorcode=\"%" PRIu32 "\"", req->event->errorcode);
                if (req->event->previous_version) {
                        _cleanup_free_ char *e_prev = NULL;
                        if (omaha_xml_escape(req->event->previous_version, &e_prev) < 0) {
                                fclose(f);
                                return -ENOMEM;
                        }
                        fprintf(f, " previousversion=\"%s\"", e_prev);
                }
                fputs("></event>\n", f);
        }
        fputs("    </app>\n</request>\n", f);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}
