/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <expat.h>

#include "log.h"
#include "metadata-agent-xml.h"

#define XML_DEPTH_MAX 64
#define XML_NODES_MAX 100000

typedef struct XmlBuilder {
        XML_Parser parser;
        XmlNode *root, *cur;
        unsigned depth, nodes;
        int error;
} XmlBuilder;

XmlNode *xml_free(XmlNode *n) {
        while (n) {
                XmlNode *next = n->next;
                xml_free(n->children);
                if (n->attrs)
                        for (char **a = n->attrs; *a; a++)
                                free(*a);
                free(n->attrs);
                free(n->name);
                free(n->text);
                free(n);
                n = next;
        }
        return NULL;
}

static void fail(XmlBuilder *b, int error) {
        if (b->error == 0)
                b->error = error;
        XML_StopParser(b->parser, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts) {
        XmlBuilder *b = ud;
        XmlNode *n;
        size_t na = 0;

        if (b->error)
                return;
        if (++b->depth > XML_DEPTH_MAX || ++b->nodes > XML_NODES_MAX)
                return fail(b, -E2BIG);
        n = calloc(1, sizeof(*n));
        if (!n)
                return fail(b, -ENOMEM);
        n->name = strdup(name);
        while (atts[na])
                na++;
        n->attrs = calloc(na + 1, sizeof(char *));
        if (!n->name || !n->attrs) {
                xml_free(n);
                return fail(b, -ENOMEM);
        }
        for (size_t i = 0; i < na; i++)
                if (!(n->attrs[i] = strdup(atts[i]))) {
                        xml_free(n);
                        return fail(b, -ENOMEM);
                }
        n->parent = b->cur;
        if (b->cur) {
                if (b->cur->last_child)
                        b->cur->last_child->next = n;
                else
                        b->cur->children = n;
                b->cur->last_child = n;
        } else
                b->root = n;
        b->cur = n;
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
        XmlBuilder *b = ud;

        if (b->error || !b->cur)
                return;
        b->depth--;
        b->cur = b->cur->parent;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
        XmlBuilder *b = ud;
        XmlNode *n = b->cur;
        char *t;

        if (b->error || !n || len <= 0)
                return;
        if (n->text_len + (size_t) len > 1024 * 1024)
                return fail(b, -E2BIG);
        t = realloc(n->text, n->text_len + (size_t) len + 1);
        if (!t)
                return fail(b, -ENOMEM);
        memcpy(t + n->text_len, s, (size_t) len);
        n->text_len += (size_t) len;
        t[n->text_len] = '\0';
        n->text = t;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset) {
        /* A DTD opens the door to entity expansion; none of the documents we read has one. */
        fail(ud, -EBADMSG);
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                                   int value_length, const XML_Char *base, const XML_Char *system_id,
                                   const XML_Char *public_id, const XML_Char *notation) {
        fail(ud, -EBADMSG);
}

int xml_parse(const char *data, size_t size, XmlNode **ret) {
        XmlBuilder b = {};
        int r = 0;

        if (size > INT32_MAX)
                return -EFBIG;
        b.parser = XML_ParserCreate("UTF-8");
        if (!b.parser)
                return -ENOMEM;
        XML_SetUserData(b.parser, &b);
        XML_SetElementHandler(b.parser, on_start, on_end);
        XML_SetCharacterDataHandler(b.parser, on_text);
        XML_SetStartDoctypeDeclHandler(b.parser, on_doctype);
        XML_SetEntityDeclHandler(b.parser, on_entity_decl);
        if (XML_Parse(b.parser, data, (int) size, XML_TRUE) != XML_STATUS_OK) {
                if (b.error == 0 || b.error == -EBADMSG)
                        log_debug("XML parse error at line %lu: %s", (unsigned long) XML_GetCurrentLineNumber(b.parser),
                                  XML_ErrorString(XML_GetErrorCode(b.parser)));
                r = b.error < 0 ? b.error : -EBADMSG;
        } else if (b.error < 0)
                r = b.error;
        else if (!b.root)
                r = -EBADMSG;
        XML_ParserFree(b.parser);
        if (r < 0) {
                xml_free(b.root);
                return r;
        }
        *ret = b.root;
        return 0;
}

XmlNode *xml_child(const XmlNode *n, const char *name) {
        if (!n)
                return NULL;
        for (XmlNode *c = n->children; c; c = c->next)
                if (streq(c->name, name))
                        return c;
        return NULL;
}

XmlNode *xml_next_sibling(const XmlNode *n, const char *name) {
        for (XmlNode *c = n ? n->next : NULL; c; c = c->next)
                if (streq(c->name, name))
                        return c;
        return NULL;
}

XmlNode *xml_path(const XmlNode *n, const char *path) {
        const XmlNode *cur = n;

        for (const char *p = path; cur && *p;) {
                size_t l = strcspn(p, "/");
                char seg[128];

                if (l >= sizeof(seg))
                        return NULL;
                memcpy(seg, p, l);
                seg[l] = '\0';
                cur = xml_child(cur, seg);
                p += l;
                if (*p == '/')
                        p++;
        }
        return (XmlNode *) cur;
}

const char *xml_attr(const XmlNode *n, const char *name) {
        if (!n || !n->attrs)
                return NULL;
        for (char **a = n->attrs; a[0] && a[1]; a += 2)
                if (streq(a[0], name))
                        return a[1];
        return NULL;
}

char *xml_text(const XmlNode *n) {
        const char *s;
        size_t l;

        if (!n)
                return NULL;
        s = n->text ?: "";
        l = n->text_len;
        while (l > 0 && strchr(" \t\r\n", *s)) {
                s++;
                l--;
        }
        while (l > 0 && strchr(" \t\r\n", s[l - 1]))
                l--;
        return strndup(s, l);
}
