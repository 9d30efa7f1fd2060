/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <systemd/sd-bus.h>

#include "log.h"
#include "omaha-client-dbus.h"

#define DBUS_NAME "com.coreos.update1"
#define DBUS_PATH "/com/coreos/update1"
#define DBUS_INTERFACE "com.coreos.update1.Manager"

struct OmahaDBus {
        sd_bus *bus;
        sd_bus_slot *slot;
        const OmahaDBusOps *ops;
        void *userdata;
        OmahaStatusCode last_code;
        double last_progress;
        uint64_t last_emit_usec;
        bool emitted;
};

static int method_attempt_update(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        OmahaDBus *b = userdata;
        b->ops->attempt_update(b->userdata);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_reset_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        OmahaDBus *b = userdata;
        int r = b->ops->reset_status(b->userdata);

        if (r < 0)
                return sd_bus_error_setf(error, "com.coreos.update1.Error.Busy",
                                         "The status can only be reset when idle or waiting for a reboot.");
        return sd_bus_reply_method_return(m, NULL);
}

static int method_get_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        OmahaDBus *b = userdata;
        OmahaStatus st;

        b->ops->get_status(b->userdata, &st);
        return sd_bus_reply_method_return(m, "xdssx", (int64_t) st.last_checked_time,
                                          st.code == OMAHA_STATUS_DOWNLOADING ? st.progress : 0.0,
                                          omaha_status_to_string(st.code), st.new_version, (int64_t) st.new_size);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("AttemptUpdate", "", "", method_attempt_update, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("ResetStatus", "", "", method_reset_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetStatus", "", "xdssx", method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL("StatusUpdate", "xdssx", 0),
        SD_BUS_VTABLE_END,
};

OmahaDBus *omaha_dbus_free(OmahaDBus *b) {
        if (!b)
                return NULL;
        sd_bus_slot_unref(b->slot);
        sd_bus_flush_close_unref(b->bus);
        return mfree(b);
}

int omaha_dbus_new(OmahaDBus **ret, sd_event *event, const char *address, const OmahaDBusOps *ops, void *userdata) {
        _cleanup_(omaha_dbus_freep) OmahaDBus *b = NULL;
        int r;

        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->ops = ops;
        b->userdata = userdata;
        b->last_code = _OMAHA_STATUS_INVALID;

        if (streq(address, "system"))
                r = sd_bus_open_system(&b->bus);
        else if (streq(address, "session"))
                r = sd_bus_open_user(&b->bus);
        else {
                r = sd_bus_new(&b->bus);
                if (r >= 0)
                        r = sd_bus_set_address(b->bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(b->bus, true);
                if (r >= 0)
                        r = sd_bus_start(b->bus);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the D-Bus bus %s: %m", address);
        r = sd_bus_add_object_vtable(b->bus, &b->slot, DBUS_PATH, DBUS_INTERFACE, manager_vtable, b);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", DBUS_PATH);
        r = sd_bus_request_name(b->bus, DBUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to own the D-Bus name %s: %m", DBUS_NAME);
        r = sd_bus_attach_event(b->bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the D-Bus connection: %m");
        *ret = TAKE_PTR(b);
        return 0;
}

void omaha_dbus_status_changed(OmahaDBus *b, const OmahaStatus *st, bool force) {
        double progress = st->code == OMAHA_STATUS_DOWNLOADING ? st->progress : 0.0;
        uint64_t now;
        double moved;
        int r;

        if (!b)
                return;
        moved = progress > b->last_progress ? progress - b->last_progress : b->last_progress - progress;
        (void) sd_event_now(sd_bus_get_event(b->bus), CLOCK_MONOTONIC, &now);
        if (!force && b->emitted && st->code == b->last_code && moved < 0.01 &&
            now - b->last_emit_usec < 10 * UINT64_C(1000000))
                return;
        r = sd_bus_emit_signal(b->bus, DBUS_PATH, DBUS_INTERFACE, "StatusUpdate", "xdssx",
                               (int64_t) st->last_checked_time, progress, omaha_status_to_string(st->code),
                               st->new_version, (int64_t) st->new_size);
        if (r < 0) {
                log_warning_errno(r, "Failed to emit StatusUpdate: %m");
                return;
        }
        b->emitted = true;
        b->last_code = st->code;
        b->last_progress = progress;
        b->last_emit_usec = now;
}
