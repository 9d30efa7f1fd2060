/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* varlink (https://varlink.org) on sd-event and jansson: NUL-terminated JSON messages over AF_UNIX
 * stream sockets.
 *
 * Server: socket activation (sd_listen_fds) or a path; exit when idle; org.varlink.service GetInfo and
 * GetInterfaceDescription answered from each interface's IDL text; the standard errors; "more" streaming
 * replies ("continues": true) and "oneway"; a message size limit; many clients at once. A peer that sends
 * malformed JSON, no NUL terminator within the size limit, a message of the wrong shape, or that stops
 * reading while its output buffer is over the limit, is disconnected; the server keeps serving.
 *
 * File descriptors travel as SCM_RIGHTS ancillary data on the sendmsg() that carries the first byte of
 * the message which refers to them (that sendmsg() must not carry bytes of a later message); parameters
 * name them by index into that message's fd array (e.g. {"target": 0}). At most VARLINK_FDS_MAX per
 * message; a peer sending more is disconnected. A receiver attributes the fds of one recvmsg() to the
 * message holding the last byte that recvmsg() returned, since Linux ends a read right after the data
 * that came with fds.
 *
 * Calls may be answered later: a handler that returns 0 without replying keeps the call open (take a
 * reference with varlink_call_ref() to reply from another event source). A handler returning a negative
 * errno without having replied makes the server answer io.switchyard.InternalError
 * {"errno": N, "message": "..."}, so the client always gets an answer. */

#include <jansson.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "macro.h"

#define VARLINK_MESSAGE_MAX (16u * 1024u * 1024u)
#define VARLINK_FDS_MAX 16

#define VARLINK_ERROR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define VARLINK_ERROR_METHOD_NOT_IMPLEMENTED "org.varlink.service.MethodNotImplemented"
#define VARLINK_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define VARLINK_ERROR_PERMISSION_DENIED "org.varlink.service.PermissionDenied"
#define VARLINK_ERROR_EXPECTED_MORE "org.varlink.service.ExpectedMore"
#define VARLINK_ERROR_INTERNAL "io.switchyard.InternalError"

typedef enum VarlinkCallFlags {
        VARLINK_CALL_MORE = 1 << 0,   /* caller set "more": true; notify() allowed */
        VARLINK_CALL_ONEWAY = 1 << 1, /* caller set "oneway": true; no reply is sent */
} VarlinkCallFlags;

typedef struct VarlinkServer VarlinkServer;
typedef struct VarlinkCall VarlinkCall;
typedef struct VarlinkClient VarlinkClient;

/* parameters is borrowed (never NULL: an absent "parameters" is an empty object). */
typedef int (*VarlinkMethodHandler)(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags,
                                    void *userdata);

typedef struct VarlinkMethod {
        const char *name; /* short name, e.g. "GetStatus" */
        VarlinkMethodHandler handler;
} VarlinkMethod;

typedef struct VarlinkInterface {
        const char *name;        /* "io.switchyard.Slots" */
        const char *description; /* the interface's .varlink IDL text, served by GetInterfaceDescription */
        const VarlinkMethod *methods;
        size_t n_methods;
} VarlinkInterface;

/* ---- server ---- */

typedef struct VarlinkServerInfo {
        const char *vendor, *product, *version, *url;
} VarlinkServerInfo;

int varlink_server_new(VarlinkServer **ret, sd_event *event, const VarlinkServerInfo *info, void *userdata);
VarlinkServer *varlink_server_free(VarlinkServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkServer *, varlink_server_free);

/* The interface struct must outlive the server. The IDL text must start with "interface <name>" matching
 * iface->name, and every method in iface->methods must be declared in it (else -EINVAL, logged). A method
 * the IDL declares without a handler answers org.varlink.service.MethodNotImplemented; a name the IDL
 * does not declare answers MethodNotFound. */
int varlink_server_add_interface(VarlinkServer *s, const VarlinkInterface *iface);
/* Takes every socket passed by systemd (sd_listen_fds); returns how many, 0 if none. */
int varlink_server_listen_fds(VarlinkServer *s);
/* Binds and listens on an AF_UNIX path ("unix:" prefix allowed) with the given mode. An existing socket
 * file is replaced; any other file there is an error (-EEXIST). The path appears only once it accepts
 * connections. */
int varlink_server_listen_address(VarlinkServer *s, const char *path, mode_t mode);
/* Serves an already connected AF_UNIX stream socket (ownership taken; it is made non-blocking by the
 * caller). For tests, fuzzers and inetd-style use. */
int varlink_server_add_connection(VarlinkServer *s, int fd);
/* When no connection is open for usec, exit the event loop with code 0. 0 disables (the default). */
int varlink_server_set_exit_on_idle(VarlinkServer *s, uint64_t usec);
/* Overrides VARLINK_MESSAGE_MAX for incoming and queued outgoing bytes per connection. */
void varlink_server_set_message_max(VarlinkServer *s, size_t max);
size_t varlink_server_connections(VarlinkServer *s);

/* ---- a call being served ---- */

VarlinkCall *varlink_call_ref(VarlinkCall *c);
VarlinkCall *varlink_call_unref(VarlinkCall *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkCall *, varlink_call_unref);

/* Final reply; steals the reference to parameters (NULL = {}). Fails with -ENOTCONN if the peer left
 * (then the caller should stop the work), -EALREADY if already answered. */
int varlink_call_reply(VarlinkCall *c, json_t *parameters);
/* Intermediate reply with "continues": true; -EPROTO unless the caller asked for "more". */
int varlink_call_notify(VarlinkCall *c, json_t *parameters);
/* Error reply; steals parameters (NULL = {}). */
int varlink_call_error(VarlinkCall *c, const char *error, json_t *parameters);
/* org.varlink.service.InvalidParameter {"parameter": name}; also logs why at debug level. */
int varlink_call_error_invalid_parameter(VarlinkCall *c, const char *name);
/* io.switchyard.InternalError {"errno": -r, "message": strerror}; returns r. */
int varlink_call_error_errno(VarlinkCall *c, int r);

/* The index-th fd received with this call's message, still owned by the call (dup it to keep it), or
 * -EBADF/-ENXIO. */
int varlink_call_peek_fd(VarlinkCall *c, size_t index);
/* Same, but ownership passes to the caller. */
int varlink_call_take_fd(VarlinkCall *c, size_t index);
/* Queues fd (ownership taken) to travel with the next reply; returns its index in that reply. */
int varlink_call_push_fd(VarlinkCall *c, int fd);

int varlink_call_get_peer_ucred(VarlinkCall *c, uid_t *ret_uid, gid_t *ret_gid, pid_t *ret_pid);
VarlinkServer *varlink_call_get_server(VarlinkCall *c);
void *varlink_call_get_userdata(VarlinkCall *c); /* the server's userdata */
const char *varlink_call_get_method(VarlinkCall *c);
/* Called once when the peer disconnects before the final reply (to cancel work). */
void varlink_call_set_disconnect_handler(VarlinkCall *c, void (*handler)(VarlinkCall *c, void *ud), void *ud);

/* ---- client (blocking; for CLIs and for one service calling another) ---- */

/* address: "unix:/run/switchyard/io.switchyard.Slots" or a plain path. */
int varlink_client_connect(VarlinkClient **ret, const char *address);
VarlinkClient *varlink_client_free(VarlinkClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkClient *, varlink_client_free);
/* How long to wait for each message to be sent and for each reply (so long streams are fine while
 * they make progress); -ETIMEDOUT then, and the connection cannot be used further. 0 = no timeout
 * (default). */
void varlink_client_set_timeout(VarlinkClient *c, uint64_t usec);

/* Queues fd (dup'ed; caller keeps its own) for the next call; returns its index. */
int varlink_client_push_fd(VarlinkClient *c, int fd);

/* One call, one reply. parameters is borrowed (the caller keeps its reference; NULL = {}); the same holds
 * for varlink_client_call_more(). On a varlink error reply returns -EBADE (or the "errno" field of
 * io.switchyard.InternalError, negated), with ret_error set to the error name (owned by the client,
 * valid until the next call) and ret_reply to its parameters. ret_* may be NULL. */
int varlink_client_call(VarlinkClient *c, const char *method, json_t *parameters, json_t **ret_reply,
                        const char **ret_error);

/* Calls with "more": true; handler runs for every reply (continues tells whether more follow). A
 * handler returning < 0 stops the loop with that value. */
typedef int (*VarlinkReplyHandler)(VarlinkClient *c, json_t *reply, bool continues, void *userdata);
int varlink_client_call_more(VarlinkClient *c, const char *method, json_t *parameters,
                             VarlinkReplyHandler handler, void *userdata, const char **ret_error,
                             json_t **ret_error_parameters);

/* The index-th fd received with the last reply; ownership passes to the caller. */
int varlink_client_take_fd(VarlinkClient *c, size_t index);

/* ---- helpers for parameters ---- */

/* Typed lookups that distinguish "absent" (returns 0, *ret untouched) from "wrong type" (-EINVAL). */
int json_get_string(json_t *obj, const char *key, const char **ret);
int json_get_bool(json_t *obj, const char *key, bool *ret);
int json_get_int(json_t *obj, const char *key, int64_t *ret);
int json_get_uint(json_t *obj, const char *key, uint64_t *ret);
