/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <jansson.h>

#include "log.h"
#include "omaha-client-error.h"
#include "omaha-client-peers.h"
#include "varlink.h"

void inactive_slot_done(InactiveSlot *s) {
        free(s->slot);
        free(s->label);
        free(s->partuuid);
        s->usr_fd = safe_close(s->usr_fd);
        s->kernel_fd = safe_close(s->kernel_fd);
        *s = (InactiveSlot) { .usr_fd = -EBADF, .kernel_fd = -EBADF };
}

static void describe_error(char *message, size_t size, const char *what, int r, const char *error, json_t *params) {
        _cleanup_free_ char *p = params ? json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

        if (error)
                snprintf(message, size, "%s: %s %s", what, error, p ?: "");
        else
                snprintf(message, size, "%s: %s", what, strerror(-r));
}

static int connect_peer(const char *address, const char *what, VarlinkClient **ret, char *message, size_t size) {
        int r = varlink_client_connect(ret, address);
        if (r < 0)
                snprintf(message, size, "cannot reach %s at %s: %s", what, address, strerror(-r));
        return r;
}

int peer_open_inactive(const char *address, InactiveSlot *ret, char *message, size_t message_size) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        const char *error = NULL, *slot = NULL, *label = NULL, *partuuid = NULL;
        json_t *reply = NULL;
        int64_t usr = -1, kernel = -1;
        uint64_t size = 0, offset = 0;
        int r;

        r = connect_peer(address, "slot-manager", &c, message, message_size);
        if (r < 0)
                return r;
        json_t *params = json_object();
        r = varlink_client_call(c, "io.switchyard.Slots.OpenInactive", params, &reply, &error);
        json_decref(params);
        if (r < 0) {
                describe_error(message, message_size, "OpenInactive", r, error, reply);
                json_decref(reply);
                return r;
        }
        if (json_get_string(reply, "slot", &slot) < 0 || !slot || json_get_string(reply, "label", &label) < 0 ||
            json_get_string(reply, "partuuid", &partuuid) < 0 || json_get_uint(reply, "size", &size) < 0 || json_get_uint(reply, "offset", &offset) < 0 ||
            json_get_int(reply, "usr", &usr) < 0 || usr < 0 || json_get_int(reply, "kernel", &kernel) < 0) {
                snprintf(message, message_size, "OpenInactive: slot-manager's reply lacks slot or usr");
                json_decref(reply);
                return -EBADMSG;
        }
        *ret = (InactiveSlot) { .usr_fd = -EBADF, .kernel_fd = -EBADF, .offset = offset, .size = size };
        ret->slot = strdup(slot);
        ret->label = label ? strdup(label) : NULL;
        ret->partuuid = partuuid ? strdup(partuuid) : NULL;
        json_decref(reply);
        ret->usr_fd = varlink_client_take_fd(c, (size_t) usr);
        if (kernel >= 0)
                ret->kernel_fd = varlink_client_take_fd(c, (size_t) kernel);
        if (!ret->slot || ret->usr_fd < 0) {
                snprintf(message, message_size, "OpenInactive: no usr descriptor received");
                inactive_slot_done(ret);
                return -EBADMSG;
        }
        return 0;
}

int peer_set_next(const char *address, const char *slot, char *message, size_t message_size) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        const char *error = NULL;
        json_t *reply = NULL;
        int r;

        r = connect_peer(address, "slot-manager", &c, message, message_size);
        if (r < 0)
                return r;
        json_t *params = json_pack("{s:s}", "slot", slot);
        r = varlink_client_call(c, "io.switchyard.Slots.SetNext", params, &reply, &error);
        json_decref(params);
        if (r < 0)
                describe_error(message, message_size, "SetNext", r, error, reply);
        json_decref(reply);
        return r;
}

typedef struct ProgressCtx {
        PeerProgress progress;
        void *userdata;
        const char *done_key, *total_key;
} ProgressCtx;

static int on_progress(VarlinkClient *c, json_t *reply, bool continues, void *userdata) {
        ProgressCtx *p = userdata;
        uint64_t done = 0, total = 0;

        if (!continues || !p->progress)
                return 0;
        if (json_get_uint(reply, p->done_key, &done) >= 0 && json_get_uint(reply, p->total_key, &total) >= 0)
                p->progress(done, total, p->userdata);
        return 0;
}

int peer_apply(const char *address, const ApplyArgs *a, PeerProgress progress, void *userdata, int *ret_code,
               char *message, size_t message_size) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        ProgressCtx ctx = { progress, userdata, "bytes", "total_bytes" };
        const char *error = NULL;
        json_t *params, *eparams = NULL;
        int ip, it, ik = -1, ic = -1, r;

        *ret_code = OMAHA_ERROR_DOWNLOAD_WRITE;
        r = connect_peer(address, "payload-writer", &c, message, message_size);
        if (r < 0)
                return r;
        ip = varlink_client_push_fd(c, a->payload_fd);
        it = varlink_client_push_fd(c, a->target_fd);
        if (a->kernel_fd >= 0)
                ik = varlink_client_push_fd(c, a->kernel_fd);
        if (a->checkpoint_fd >= 0)
                ic = varlink_client_push_fd(c, a->checkpoint_fd);
        if (ip < 0 || it < 0 || (a->kernel_fd >= 0 && ik < 0) || (a->checkpoint_fd >= 0 && ic < 0)) {
                snprintf(message, message_size, "cannot pass descriptors to payload-writer");
                return -EBADF;
        }
        params = json_pack("{s:i, s:i, s:I, s:s}", "payload", ip, "target", it, "expected_size",
                           (json_int_t) a->expected_size, "expected_sha256", a->expected_sha256);
        if (!params)
                return -ENOMEM;
        if (ik >= 0)
                json_object_set_new(params, "kernel", json_integer(ik));
        if (ic >= 0)
                json_object_set_new(params, "checkpoint", json_integer(ic));
        if (a->target_offset > 0)
                json_object_set_new(params, "target_offset", json_integer((json_int_t) a->target_offset));
        if (a->target_size > 0)
                json_object_set_new(params, "target_size", json_integer((json_int_t) a->target_size));

        r = varlink_client_call_more(c, "io.switchyard.PayloadWriter.Apply", params, on_progress, &ctx, &error,
                                     &eparams);
        json_decref(params);
        if (r < 0) {
                json_t *code = json_object_get(eparams, "code");
                const char *msg = json_string_value(json_object_get(eparams, "message"));

                if (json_is_integer(code) && json_integer_value(code) > 0)
                        *ret_code = (int) json_integer_value(code);
                if (error && msg)
                        snprintf(message, message_size, "payload-writer: %s: %s", error, msg);
                else
                        describe_error(message, message_size, "payload-writer Apply", r, error, eparams);
                json_decref(eparams);
                return r;
        }
        json_decref(eparams);
        *ret_code = 0;
        return 0;
}

int peer_verify(const char *address, int data_fd, uint64_t offset, uint64_t size, int kernel_fd,
                PeerProgress progress, void *userdata, char *message, size_t message_size) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        ProgressCtx ctx = { progress, userdata, "blocks", "total_blocks" };
        const char *error = NULL;
        json_t *params, *eparams = NULL;
        int id, ik, r;

        r = connect_peer(address, "verity-check", &c, message, message_size);
        if (r < 0)
                return r;
        id = varlink_client_push_fd(c, data_fd);
        ik = varlink_client_push_fd(c, kernel_fd);
        if (id < 0 || ik < 0) {
                snprintf(message, message_size, "cannot pass descriptors to verity-check");
                return -EBADF;
        }
        params = json_pack("{s:i, s:i}", "data", id, "kernel", ik);
        if (!params)
                return -ENOMEM;
        if (offset > 0)
                json_object_set_new(params, "offset", json_integer((json_int_t) offset));
        if (size > 0)
                json_object_set_new(params, "size", json_integer((json_int_t) size));
        r = varlink_client_call_more(c, "io.switchyard.Verity.Verify", params, on_progress, &ctx, &error, &eparams);
        json_decref(params);
        if (r < 0)
                describe_error(message, message_size, "verity-check Verify", r, error, eparams);
        json_decref(eparams);
        return r;
}
