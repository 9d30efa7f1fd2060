/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>

#include "log.h"
#include "slot-manager-error.h"
#include "slot-manager-varlink.h"
#include "varlink-service.h"
#include "varlink.h"

#include "slots-interface.h" /* generated: slots_interface_description */

typedef struct Server {
        const SlotContext *context;
        const SlotAuth *auth;
} Server;

bool slot_auth_allows(const SlotAuth *a, uid_t uid, gid_t gid) {
        if (uid == 0)
                return true;
        for (size_t i = 0; i < a->n_uids; i++)
                if (a->uids[i] == uid)
                        return true;
        for (size_t i = 0; i < a->n_gids; i++)
                if (a->gids[i] == gid)
                        return true;
        return false;
}

static int check_auth(VarlinkCall *call, Server *s) {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        int r = varlink_call_get_peer_ucred(call, &uid, &gid, &pid);
        if (r < 0 || !slot_auth_allows(s->auth, uid, gid)) {
                log_notice("Refusing %s from uid %u gid %u: not authorized.", varlink_call_get_method(call),
                           r < 0 ? (unsigned) -1 : (unsigned) uid, r < 0 ? (unsigned) -1 : (unsigned) gid);
                varlink_call_error(call, VARLINK_ERROR_PERMISSION_DENIED, NULL);
                return -EPERM;
        }
        return 0;
}

/* Sends the failure recorded by the operation as a typed error with its message. */
static int reply_failure(VarlinkCall *call, int r) {
        const char *msg = slot_error_message();
        json_t *p = json_pack("{s:s, s:i}", "message", msg ?: strerror(ERRNO_VALUE(r)), "errno", ERRNO_VALUE(r));
        const char *name = slot_error_name();
        slot_error_clear();
        return varlink_call_error(call, name, p);
}

static int no_extra_params(VarlinkCall *call, json_t *params, const char *const *allowed) {
        const char *key;
        json_t *v;
        json_object_foreach(params, key, v) {
                bool ok = false;
                for (size_t i = 0; allowed && allowed[i]; i++)
                        if (streq(key, allowed[i]))
                                ok = true;
                if (!ok) {
                        varlink_call_error_invalid_parameter(call, key);
                        return -EINVAL;
                }
        }
        return 0;
}

static int parse_slot_param(VarlinkCall *call, json_t *params, bool optional, SlotId *ret) {
        const char *name = NULL;
        if (json_get_string(params, "slot", &name) < 0) {
                varlink_call_error_invalid_parameter(call, "slot");
                return -EINVAL;
        }
        if (!name) {
                if (optional) {
                        *ret = _SLOT_INVALID;
                        return 0;
                }
                varlink_call_error_invalid_parameter(call, "slot");
                return -EINVAL;
        }
        SlotId s = slot_from_string(name);
        if (s < 0) {
                varlink_call_error(call, SLOTS_ERROR_NO_SUCH_SLOT, json_pack("{s:s}", "slot", name));
                return -EINVAL;
        }
        *ret = s;
        return 0;
}

static json_t *slot_reply(SlotId s) {
        return json_pack("{s:s}", "slot", slot_to_string(s));
}

static int method_get_status(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Server *s = varlink_call_get_userdata(call);
        json_t *j = NULL;
        int r;

        slot_error_clear(); /* a failure recorded by an earlier call is not this call's */

        if (no_extra_params(call, params, NULL) < 0)
                return 0;
        r = ops_status(s->context, &j);
        if (r < 0)
                return reply_failure(call, r);
        return varlink_call_reply(call, j);
}

static int method_set_next(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        static const char *const allowed[] = { "slot", NULL };
        Server *s = varlink_call_get_userdata(call);
        SlotId slot;
        int r;

        slot_error_clear(); /* a failure recorded by an earlier call is not this call's */

        if (check_auth(call, s) < 0 || no_extra_params(call, params, allowed) < 0 ||
            parse_slot_param(call, params, false, &slot) < 0)
                return 0;
        r = ops_set_next(s->context, slot);
        if (r < 0)
                return reply_failure(call, r);
        return varlink_call_reply(call, slot_reply(slot));
}

static int method_mark_good(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        static const char *const allowed[] = { "slot", NULL };
        Server *s = varlink_call_get_userdata(call);
        SlotId slot;
        int r;

        slot_error_clear(); /* a failure recorded by an earlier call is not this call's */

        if (check_auth(call, s) < 0 || no_extra_params(call, params, allowed) < 0 ||
            parse_slot_param(call, params, true, &slot) < 0)
                return 0;
        r = ops_mark_good(s->context, slot, &slot);
        if (r < 0)
                return reply_failure(call, r);
        return varlink_call_reply(call, slot_reply(slot));
}

static int method_rollback(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Server *s = varlink_call_get_userdata(call);
        SlotId slot;
        int r;

        slot_error_clear(); /* a failure recorded by an earlier call is not this call's */

        if (check_auth(call, s) < 0 || no_extra_params(call, params, NULL) < 0)
                return 0;
        r = ops_rollback(s->context, &slot);
        if (r < 0)
                return reply_failure(call, r);
        return varlink_call_reply(call, slot_reply(slot));
}

static int method_repair(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Server *s = varlink_call_get_userdata(call);
        json_t *j = NULL;
        int r;

        slot_error_clear(); /* a failure recorded by an earlier call is not this call's */

        if (check_auth(call, s) < 0 || no_extra_params(call, params, NULL) < 0)
                return 0;
        r = ops_repair(s->context, &j);
        if (r < 0)
                return reply_failure(call, r);
        return varlink_call_reply(call, j);
}

static int method_open_inactive(VarlinkCall *call, json_t *params, VarlinkCallFlags flags, void *userdata) {
        static const char *const allowed[] = { "kernel", NULL };
        Server *s = varlink_call_get_userdata(call);
        InactiveSlot in;
        bool want_kernel = true;
        int r;

        slot_error_clear(); /* a failure recorded by an earlier call is not this call's */

        if (check_auth(call, s) < 0 || no_extra_params(call, params, allowed) < 0)
                return 0;
        if (json_get_bool(params, "kernel", &want_kernel) < 0)
                return varlink_call_error_invalid_parameter(call, "kernel");

        r = ops_open_inactive(s->context, want_kernel, &in);
        if (r < 0)
                return reply_failure(call, r);

        int usr_index = varlink_call_push_fd(call, in.usr_fd);
        if (usr_index < 0) {
                safe_close(in.kernel_fd);
                return varlink_call_error_errno(call, usr_index);
        }
        json_t *kernel = json_null();
        if (in.kernel_fd >= 0) {
                int k = varlink_call_push_fd(call, in.kernel_fd);
                if (k < 0)
                        return varlink_call_error_errno(call, k);
                kernel = json_integer(k);
        }
        log_info("Handed out slot %s (%s) for writing.", slot_to_string(in.slot), in.label);
        return varlink_call_reply(call, json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:o}",
                                                  "slot", slot_to_string(in.slot),
                                                  "label", in.label,
                                                  "partuuid", in.partuuid,
                                                  "offset", (json_int_t) in.offset,
                                                  "size", (json_int_t) in.size,
                                                  "usr", usr_index,
                                                  "kernel", kernel));
}

static const VarlinkMethod slots_methods[] = {
        { "GetStatus", method_get_status },
        { "SetNext", method_set_next },
        { "MarkGood", method_mark_good },
        { "Rollback", method_rollback },
        { "OpenInactive", method_open_inactive },
        { "Repair", method_repair },
};

static const VarlinkInterface slots_interface = {
        .name = "io.switchyard.Slots",
        .description = slots_interface_description,
        .methods = slots_methods,
        .n_methods = ELEMENTSOF(slots_methods),
};

int slot_varlink_run(const SlotContext *c, const SlotAuth *auth, const char *listen_path, uint64_t idle_usec) {
        static const VarlinkServerInfo info = {
                .vendor = "switchyard",
                .product = "slot-manager",
                .version = SWITCHYARD_VERSION,
                .url = "https://github.com/switchyard",
        };
        Server s = { .context = c, .auth = auth };
        const VarlinkService svc = {
                .info = &info,
                .interface = &slots_interface,
                .userdata = &s,
                .listen_path = listen_path,
                .mode = 0666,
                .idle_usec = idle_usec,
        };

        int r = varlink_service_run(&svc);
        return r < 0 ? r : 0;
}
