/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Internals of varlink.c, kept apart so that unit tests and fuzz targets can drive them without sockets:
 * the per-connection input buffer (NUL framing, size limit, which received fds belong to which message),
 * the output queue (one sendmsg() per message start so SCM_RIGHTS ride with the first byte), the checks
 * of a call's and a reply's shape, and the scan of an interface's IDL text. */

#include <jansson.h>

#include "varlink.h"

/* How many received-but-unclaimed fds a connection may hold (several pipelined messages' worth). */
#define VARLINK_INPUT_FDS_MAX (VARLINK_FDS_MAX * 4)

typedef struct VarlinkInputFd {
        size_t pos; /* offset of a stream byte of the message it came with, relative to VarlinkInput.buf */
        int fd;
} VarlinkInputFd;

typedef struct VarlinkInput {
        char *buf;
        size_t start;   /* first byte not yet consumed */
        size_t scanned; /* bytes before this offset are known to hold no NUL (from start on) */
        size_t size;    /* bytes in buf */
        size_t alloc;
        VarlinkInputFd fds[VARLINK_INPUT_FDS_MAX];
        size_t n_fds;
} VarlinkInput;

void varlink_input_done(VarlinkInput *in);
/* Bytes received but not yet handed out as messages. */
static inline size_t varlink_input_pending(const VarlinkInput *in) {
        return in->size - in->start;
}
/* Appends bytes, and fds that belong to the message holding the last of them. Takes ownership of fds (closes them on
 * failure). -E2BIG if too many fds are waiting. */
int varlink_input_feed(VarlinkInput *in, const void *data, size_t size, const int *fds, size_t n_fds);
/* One recvmsg() of up to chunk bytes from a non-blocking socket: >0 bytes read, 0 at EOF, -EAGAIN, or
 * -EBADMSG when the peer sent more fds than fit (they are closed). */
ssize_t varlink_input_read(VarlinkInput *in, int fd, size_t chunk);
/* Takes the next complete message out of the buffer. Returns 1 with *ret set (a JSON object) and the fds
 * that came with it (caller owns them and the array), 0 if more bytes are needed, -EMSGSIZE if no NUL
 * came within max + 1 bytes, -EBADMSG if the message is not a JSON object (the message is consumed and
 * its fds are closed; *ret_why says why). */
int varlink_input_next(VarlinkInput *in, size_t max, json_t **ret, int **ret_fds, size_t *ret_n_fds,
                       const char **ret_why);

typedef struct VarlinkOutItem VarlinkOutItem;
typedef struct VarlinkOutput {
        VarlinkOutItem *head, *tail;
        size_t bytes; /* queued, not yet written */
} VarlinkOutput;

void varlink_output_done(VarlinkOutput *out);
static inline bool varlink_output_empty(const VarlinkOutput *out) {
        return !out->head;
}
/* Serializes m (not stolen) and queues it with its fds (ownership taken, closed on failure). */
int varlink_output_enqueue(VarlinkOutput *out, json_t *m, int *fds, size_t n_fds);
/* Writes as much as the socket takes: 0 when all was written, -EAGAIN if some is left, else an error. */
int varlink_output_flush(VarlinkOutput *out, int fd);

typedef struct VarlinkCallMessage {
        const char *method; /* "iface.Method" */
        json_t *parameters; /* borrowed; NULL when absent */
        bool more, oneway, upgrade;
} VarlinkCallMessage;

typedef struct VarlinkReplyMessage {
        const char *error;  /* NULL for a normal reply */
        json_t *parameters; /* borrowed; NULL when absent */
        bool continues;
} VarlinkReplyMessage;

/* -EBADMSG with *ret_why set when m is not a well-formed call / reply. */
int varlink_parse_call(json_t *m, VarlinkCallMessage *ret, const char **ret_why);
int varlink_parse_reply(json_t *m, VarlinkReplyMessage *ret, const char **ret_why);

/* "a.b.Method" → interface "a.b" (caller frees) and method "Method"; -EINVAL if not of that form. */
int varlink_split_method(const char *full, char **ret_interface, const char **ret_method);
bool varlink_interface_name_is_valid(const char *name);
bool varlink_member_name_is_valid(const char *name);

/* Scans IDL text: the interface's name and the names of its methods (a NULL-terminated strv). -EBADMSG
 * if there is no valid "interface NAME" line first. */
int varlink_idl_scan(const char *idl, char **ret_interface, char ***ret_methods);
void varlink_strv_free(char **l);
