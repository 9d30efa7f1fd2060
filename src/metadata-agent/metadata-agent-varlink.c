/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fileio.h"
#include "log.h"
#include "metadata-agent-cmdline.h"
#include "metadata-agent-idl.h"
#include "metadata-agent-provider.h"
#include "metadata-agent-varlink.h"
#include "varlink-service.h"
#include "varlink.h"

#define IDLE_EXIT_USEC (30ULL * 1000000ULL)

typedef struct Service {
        AttributeStyle style;
        const char *base_url, *config_drive, *cmdline_file;
        const Provider *cached_provider;
        Metadata cache;
        bool have_cache;
} Service;

static int reply_error_errno(VarlinkCall *call, const char *provider, int r) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", strerror(-r));
        return varlink_call_error(call, "io.switchyard.Metadata.FetchFailed",
                                  json_pack("{s:s, s:i, s:s}", "provider", provider, "errno", -r, "message", msg));
}

/* Resolves the provider from the parameters or the kernel command line, and makes sure the cache holds its
 * metadata. Returns 1 when it answered the call with an error itself. */
static int ensure(Service *s, VarlinkCall *call, json_t *params, bool refresh, const Provider **ret) {
        _cleanup_free_ char *from_cmdline = NULL;
        const char *name = NULL;
        const Provider *p;
        ProviderContext c = { .base_url = s->base_url, .config_drive = s->config_drive };
        Metadata m = {};
        int r;

        if (json_get_string(params, "provider", &name) < 0)
                return varlink_call_error_invalid_parameter(call, "provider"), 1;
        if (!name) {
                _cleanup_free_ char *cmdline = NULL;
                const char *path = s->cmdline_file ?: getenv("SWITCHYARD_METADATA_CMDLINE") ?: "/proc/cmdline";
                if (read_full_file(path, 64 * 1024, &cmdline, NULL) >= 0)
                        (void) cmdline_get_platform(cmdline, &from_cmdline);
                if (!from_cmdline)
                        return varlink_call_error(call, "io.switchyard.Metadata.NoProvider", NULL), 1;
                name = from_cmdline;
        }
        p = provider_find(name);
        if (!p)
                return varlink_call_error(call, "io.switchyard.Metadata.UnknownProvider",
                                          json_pack("{s:s}", "provider", name)), 1;
        if (s->have_cache && s->cached_provider == p && !refresh) {
                *ret = p;
                return 0;
        }
        r = fetch_policy_from_env(&c.policy);
        if (r >= 0)
                r = p->fetch(&c, WANT_ATTRIBUTES | WANT_HOSTNAME | WANT_SSH_KEYS, &m);
        if (r < 0) {
                metadata_done(&m);
                return reply_error_errno(call, p->name, r), 1;
        }
        metadata_done(&s->cache);
        s->cache = m;
        s->cached_provider = p;
        s->have_cache = true;
        *ret = p;
        return 0;
}

static json_t *attributes_json(const Metadata *m, AttributeStyle style) {
        json_t *o = json_object();
        for (size_t i = 0; o && i < m->n_attrs; i++) {
                _cleanup_free_ char *name = attribute_name(m->attrs[i].key, style);
                if (!name || json_object_set_new(o, name, json_string(m->attrs[i].value)) < 0) {
                        json_decref(o);
                        return NULL;
                }
        }
        return o;
}

static json_t *keys_json(const Metadata *m) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < m->n_ssh_keys; i++)
                if (json_array_append_new(a, json_string(m->ssh_keys[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static int method_get_attributes(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Service *s = varlink_call_get_userdata(call);
        const char *style_s = NULL;
        AttributeStyle style = s->style;
        const Provider *p;
        json_t *attrs, *reply;

        if (json_get_string(params, "style", &style_s) < 0)
                return varlink_call_error_invalid_parameter(call, "style");
        if (style_s && (style = attribute_style_from_string(style_s)) < 0)
                return varlink_call_error_invalid_parameter(call, "style");
        if (ensure(s, call, params, false, &p) != 0)
                return 0;
        attrs = attributes_json(&s->cache, style);
        if (!attrs)
                return -ENOMEM;
        reply = json_pack("{s:s, s:o}", "provider", p->name, "attributes", attrs);
        if (!reply)
                return -ENOMEM;
        if (s->cache.hostname)
                json_object_set_new(reply, "hostname", json_string(s->cache.hostname));
        return varlink_call_reply(call, reply);
}

static int method_get_ssh_keys(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Service *s = varlink_call_get_userdata(call);
        const Provider *p;
        json_t *keys;

        if (ensure(s, call, params, false, &p) != 0)
                return 0;
        keys = keys_json(&s->cache);
        if (!keys)
                return -ENOMEM;
        return varlink_call_reply(call, json_pack("{s:s, s:o}", "provider", p->name, "keys", keys));
}

static int method_refresh(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Service *s = varlink_call_get_userdata(call);
        const Provider *p;
        json_t *attrs, *keys, *reply;

        if (ensure(s, call, params, true, &p) != 0)
                return 0;
        attrs = attributes_json(&s->cache, s->style);
        keys = keys_json(&s->cache);
        if (!attrs || !keys) {
                json_decref(attrs);
                json_decref(keys);
                return -ENOMEM;
        }
        reply = json_pack("{s:s, s:o, s:o}", "provider", p->name, "attributes", attrs, "keys", keys);
        if (!reply)
                return -ENOMEM;
        if (s->cache.hostname)
                json_object_set_new(reply, "hostname", json_string(s->cache.hostname));
        return varlink_call_reply(call, reply);
}

static const VarlinkMethod methods[] = {
        { "GetAttributes", method_get_attributes },
        { "GetSshKeys", method_get_ssh_keys },
        { "Refresh", method_refresh },
};

static const VarlinkInterface interface = {
        .name = "io.switchyard.Metadata",
        .description = metadata_idl,
        .methods = methods,
        .n_methods = ELEMENTSOF(methods),
};

int metadata_varlink_run(const char *listen, AttributeStyle style, const char *base_url, const char *config_drive,
                         const char *cmdline_file) {
        static const VarlinkServerInfo info = {
                .vendor = "switchyard",
                .product = "metadata-agent",
                .version = SWITCHYARD_VERSION,
                .url = "https://github.com/switchyard",
        };
        Service s = { .style = style, .base_url = base_url, .config_drive = config_drive, .cmdline_file = cmdline_file };
        VarlinkService svc = {
                .info = &info,
                .interface = &interface,
                .userdata = &s,
                .listen_path = listen,
                .mode = 0600,
                .idle_usec = IDLE_EXIT_USEC,
                .idle_when_listening = true,
        };
        /* Tests shorten the idle time with SWITCHYARD_METADATA_IDLE_SEC. */
        const char *idle = getenv("SWITCHYARD_METADATA_IDLE_SEC");
        uint32_t sec;
        int r;

        if (idle && safe_atou32(idle, &sec) >= 0 && sec > 0)
                svc.idle_usec = (uint64_t) sec * 1000000ULL;
        r = varlink_service_run(&svc);
        metadata_done(&s.cache);
        return r;
}
