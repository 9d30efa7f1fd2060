/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A small element tree built with expat, for the Azure WireServer documents. Namespaces are not
 * interpreted (the documents use none on the elements we read); DTDs and entity declarations are
 * refused, and depth and node count are capped. */

#include "macro.h"

typedef struct XmlNode XmlNode;
struct XmlNode {
        char *name;
        char **attrs; /* name, value, name, value, ..., NULL */
        char *text;   /* concatenated character data directly inside this element */
        size_t text_len;
        XmlNode *parent, *children, *last_child, *next;
};

/* -EBADMSG on malformed XML (logged at debug level with the line). */
int xml_parse(const char *data, size_t size, XmlNode **ret);
XmlNode *xml_free(XmlNode *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(XmlNode *, xml_free);

/* The first child element named name, or NULL. */
XmlNode *xml_child(const XmlNode *n, const char *name);
/* Follows "A/B/C" from n (first match at every step). */
XmlNode *xml_path(const XmlNode *n, const char *path);
XmlNode *xml_next_sibling(const XmlNode *n, const char *name);
const char *xml_attr(const XmlNode *n, const char *name);
/* The node's text with surrounding whitespace removed (a new string), or NULL if n is NULL. */
char *xml_text(const XmlNode *n);
