/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <yaml.h>

#include "log.h"
#include "metadata-agent-yaml.h"

#define YAML_DEPTH_MAX 64
#define YAML_NODES_MAX 100000


static json_t *scalar_to_json(const yaml_event_t *ev) {
        const char *v = (const char *) ev->data.scalar.value;
        size_t len = ev->data.scalar.length;

        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
                int64_t i;

                if (streq(v, "true") || streq(v, "True") || streq(v, "TRUE"))
                        return json_true();
                if (streq(v, "false") || streq(v, "False") || streq(v, "FALSE"))
                        return json_false();
                if (streq(v, "null") || streq(v, "Null") || streq(v, "NULL") || streq(v, "~") || len == 0)
                        return json_null();
                if (safe_atoi64(v, &i) >= 0 && strlen(v) == len)
                        return json_integer(i);
        }
        return json_stringn(v, len);
}

/* Reads one node (the current event starts it) into *ret. */
static int read_node(yaml_parser_t *p, yaml_event_t *ev, unsigned depth, unsigned *nodes, json_t **ret) {
        _cleanup_(json_decrefp) json_t *v = NULL;

        if (depth > YAML_DEPTH_MAX || ++*nodes > YAML_NODES_MAX)
                return -E2BIG;
        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                v = scalar_to_json(ev);
                break;
        case YAML_SEQUENCE_START_EVENT:
                v = json_array();
                if (!v)
                        return -ENOMEM;
                for (;;) {
                        yaml_event_t e;
                        json_t *item = NULL;
                        int r;

                        if (!yaml_parser_parse(p, &e))
                                return -EBADMSG;
                        if (e.type == YAML_SEQUENCE_END_EVENT) {
                                yaml_event_delete(&e);
                                break;
                        }
                        r = read_node(p, &e, depth + 1, nodes, &item);
                        yaml_event_delete(&e);
                        if (r < 0)
                                return r;
                        if (json_array_append_new(v, item) < 0)
                                return -ENOMEM;
                }
                break;
        case YAML_MAPPING_START_EVENT:
                v = json_object();
                if (!v)
                        return -ENOMEM;
                for (;;) {
                        yaml_event_t k, e;
                        _cleanup_free_ char *key = NULL;
                        json_t *item = NULL;
                        int r;

                        if (!yaml_parser_parse(p, &k))
                                return -EBADMSG;
                        if (k.type == YAML_MAPPING_END_EVENT) {
                                yaml_event_delete(&k);
                                break;
                        }
                        if (k.type != YAML_SCALAR_EVENT) {
                                yaml_event_delete(&k);
                                return -EBADMSG; /* complex keys are not something metadata uses */
                        }
                        key = strndup((const char *) k.data.scalar.value, k.data.scalar.length);
                        yaml_event_delete(&k);
                        if (!key)
                                return -ENOMEM;
                        if (!yaml_parser_parse(p, &e))
                                return -EBADMSG;
                        r = read_node(p, &e, depth + 1, nodes, &item);
                        yaml_event_delete(&e);
                        if (r < 0)
                                return r;
                        if (json_object_set_new(v, key, item) < 0)
                                return -ENOMEM;
                }
                break;
        default:
                return -EBADMSG; /* aliases and anything unexpected */
        }
        if (!v)
                return -ENOMEM;
        *ret = TAKE_PTR(v);
        return 0;
}

int yaml_parse_json(const char *data, size_t size, json_t **ret) {
        yaml_parser_t p;
        json_t *root = NULL;
        unsigned nodes = 0;
        int r = -EBADMSG;

        if (!yaml_parser_initialize(&p))
                return -ENOMEM;
        yaml_parser_set_input_string(&p, (const unsigned char *) data, size);
        for (;;) {
                yaml_event_t e;

                if (!yaml_parser_parse(&p, &e)) {
                        r = -EBADMSG;
                        break;
                }
                if (e.type == YAML_STREAM_END_EVENT) {
                        yaml_event_delete(&e);
                        r = root ? 0 : -ENODATA;
                        break;
                }
                if (e.type == YAML_SCALAR_EVENT || e.type == YAML_SEQUENCE_START_EVENT ||
                    e.type == YAML_MAPPING_START_EVENT) {
                        if (root) {
                                yaml_event_delete(&e);
                                r = -EBADMSG; /* only one document */
                                break;
                        }
                        r = read_node(&p, &e, 0, &nodes, &root);
                        yaml_event_delete(&e);
                        if (r < 0)
                                break;
                        continue;
                }
                if (e.type == YAML_ALIAS_EVENT) {
                        yaml_event_delete(&e);
                        r = -EBADMSG;
                        break;
                }
                yaml_event_delete(&e);
        }
        if (r < 0 && p.error != YAML_NO_ERROR)
                log_debug("YAML parse error at line %zu: %s", p.problem_mark.line + 1, p.problem ?: "unknown");
        yaml_parser_delete(&p);
        if (r < 0) {
                json_decref(root);
                return r;
        }
        *ret = root;
        return 0;
}
