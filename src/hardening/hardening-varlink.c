/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "hardening-engine.h"
#include "hardening-idl.h"
#include "hardening-varlink.h"
#include "log.h"
#include "varlink-service.h"
#include "varlink.h"

#define IDLE_USEC (10u * 1000u * 1000u)

typedef struct Server {
        const char *root;
} Server;

static int reply_failed(VarlinkCall *call, int r, const char *what)
{
        char *msg = NULL;
        if (asprintf(&msg, "%s: %s", what, strerror(-r)) < 0)
                return varlink_call_error_errno(call, -ENOMEM);
        r = varlink_call_error(call, "io.switchyard.Hardening.Failed", json_pack("{s:s}", "message", msg));
        free(msg);
        return r;
}

static int get_dry_run(VarlinkCall *call, json_t *parameters, bool *ret)
{
        const char *key;
        json_t *v;

        json_object_foreach (parameters, key, v)
                if (!streq(key, "dry_run"))
                        return varlink_call_error_invalid_parameter(call, key);
        if (json_get_bool(parameters, "dry_run", ret) < 0)
                return varlink_call_error_invalid_parameter(call, "dry_run");
        return 1;
}

static int run_engine(VarlinkCall *call, const char *method, bool dry_run)
{
        Server *s = varlink_call_get_userdata(call);
        _cleanup_close_ int rootfd = -EBADF;
        Settings settings = {};
        json_t *report = NULL;
        Outcome outcome;
        int r;

        r = root_open(s->root, &rootfd);
        if (r < 0)
                return reply_failed(call, r, "cannot open the root directory");
        if (!streq(method, "Revert")) {
                r = hardening_load_settings(s->root, NULL, NULL, &settings);
                if (r < 0)
                        return reply_failed(call, r, "cannot load hardening.conf");
        }
        if (streq(method, "Audit"))
                r = engine_audit(rootfd, &settings, &report, &outcome);
        else if (streq(method, "Apply"))
                r = engine_apply(rootfd, &settings, dry_run, &report, &outcome);
        else
                r = engine_revert(rootfd, NULL, dry_run, &report, &outcome);
        settings_done(&settings);
        if (r < 0)
                return reply_failed(call, r, "cannot read the root or the hardening record");
        return varlink_call_reply(call, report);
}

static int method_audit(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata)
{
        if (json_object_size(parameters) > 0)
                return varlink_call_error_invalid_parameter(
                    call, json_object_iter_key(json_object_iter(parameters)));
        return run_engine(call, "Audit", false);
}

static int method_apply(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata)
{
        bool dry_run = false;
        int r = get_dry_run(call, parameters, &dry_run);
        return r <= 0 ? r : run_engine(call, "Apply", dry_run);
}

static int method_revert(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata)
{
        bool dry_run = false;
        int r = get_dry_run(call, parameters, &dry_run);
        return r <= 0 ? r : run_engine(call, "Revert", dry_run);
}

static const VarlinkMethod methods[] = {
    {"Audit", method_audit},
    {"Apply", method_apply},
    {"Revert", method_revert},
};

static const VarlinkInterface interface = {
    .name = "io.switchyard.Hardening",
    .description = hardening_idl,
    .methods = methods,
    .n_methods = ELEMENTSOF(methods),
};

int hardening_varlink_run(const char *root, const char *listen_path)
{
        static const VarlinkServerInfo info = {
            .vendor = "switchyard",
            .product = "hardening",
            .version = SWITCHYARD_VERSION,
            .url = "https://github.com/switchyard/switchyard",
        };
        Server s = {.root = root};
        const VarlinkService svc = {
            .info = &info,
            .interface = &interface,
            .userdata = &s,
            .listen_path = listen_path,
            .mode = 0600,
            .idle_usec = IDLE_USEC,
        };

        return varlink_service_run(&svc);
}
