/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <sys/socket.h>

#include "varlink-message.h"

static void close_many(const int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
}

void varlink_input_done(VarlinkInput *in) {
        for (size_t i = 0; i < in->n_fds; i++)
                safe_close(in->fds[i].fd);
        free(in->buf);
        *in = (VarlinkInput){};
}

static void input_compact(VarlinkInput *in) {
        if (in->start == 0)
                return;
        memmove(in->buf, in->buf + in->start, in->size - in->start);
        for (size_t i = 0; i < in->n_fds; i++)
                in->fds[i].pos -= in->start;
        in->size -= in->start;
        in->scanned -= in->start;
        in->start = 0;
}

/* Makes room for at least n more bytes at the end. */
static int input_reserve(VarlinkInput *in, size_t n) {
        size_t need;
        char *p;

        if (in->alloc - in->size >= n)
                return 0;
        /* Moving the unconsumed tail down is cheaper than growing when most of the buffer is consumed. */
        if (in->start > 0 && in->start >= in->size / 2) {
                input_compact(in);
                if (in->alloc - in->size >= n)
                        return 0;
        }
        if (n > SIZE_MAX - in->size)
                return -ENOMEM;
        need = in->size + n;
        need = MAX(need, MAX(in->alloc * 2, (size_t) 4096));
        p = realloc(in->buf, need);
        if (!p)
                return -ENOMEM;
        in->buf = p;
        in->alloc = need;
        return 0;
}

static int input_add_fds(VarlinkInput *in, size_t pos, const int *fds, size_t n_fds) {
        if (n_fds > VARLINK_INPUT_FDS_MAX - in->n_fds) {
                close_many(fds, n_fds);
                return -E2BIG;
        }
        for (size_t i = 0; i < n_fds; i++)
                in->fds[in->n_fds++] = (VarlinkInputFd){ .pos = pos, .fd = fds[i] };
        return 0;
}

int varlink_input_feed(VarlinkInput *in, const void *data, size_t size, const int *fds, size_t n_fds) {
        int r;

        r = input_reserve(in, size);
        if (r < 0) {
                close_many(fds, n_fds);
                return r;
        }
        r = input_add_fds(in, in->size + (size > 0 ? size - 1 : 0), fds, n_fds);
        if (r < 0)
                return r;
        if (size > 0)
                memcpy(in->buf + in->size, data, size);
        in->size += size;
        return 0;
}

ssize_t varlink_input_read(VarlinkInput *in, int fd, size_t chunk) {
        union {
                struct cmsghdr cmsghdr;
                uint8_t buf[CMSG_SPACE(sizeof(int) * VARLINK_FDS_MAX)];
        } control = {};
        struct iovec iov;
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        int received[VARLINK_FDS_MAX];
        size_t n_received = 0;
        ssize_t n;
        int r;

        /* Start small and double while full: thousands of idle clients should not cost chunk bytes each. */
        if (in->alloc - in->size < MIN(chunk, (size_t) 1024)) {
                r = input_reserve(in, MIN(chunk, MAX(in->alloc, (size_t) 4096)));
                if (r < 0)
                        return r;
        }
        iov = (struct iovec){ .iov_base = in->buf + in->size, .iov_len = MIN(chunk, in->alloc - in->size) };

        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EINTR ? -EAGAIN : -errno;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *p = (int *) CMSG_DATA(c);
                for (size_t i = 0; i < k; i++) {
                        int v;
                        memcpy(&v, p + i, sizeof(int));
                        if (n_received < ELEMENTSOF(received))
                                received[n_received++] = v;
                        else
                                safe_close(v);
                }
        }
        if (mh.msg_flags & MSG_CTRUNC) {
                close_many(received, n_received);
                return -EBADMSG;
        }

        /* One recvmsg() returns the fds of at most one sendmsg(), and stops reading right after the data that
         * carried them: so they belong to the message holding the last byte read. (Bytes of earlier
         * messages may come before it in the same read.) */
        if (n == 0 && n_received > 0) {
                close_many(received, n_received);
                return -EBADMSG;
        }
        r = input_add_fds(in, in->size + (size_t) (n > 0 ? n - 1 : 0), received, n_received);
        if (r < 0)
                return r;
        in->size += (size_t) n;
        return n;
}

static void input_consume(VarlinkInput *in, size_t end, int **ret_fds, size_t *ret_n_fds) {
        _cleanup_free_ int *fds = NULL;
        size_t n = 0, kept = 0;

        if (ret_fds) {
                fds = calloc(VARLINK_INPUT_FDS_MAX, sizeof(int));
                /* On allocation failure the fds are closed below: the call sees none. */
        }
        for (size_t i = 0; i < in->n_fds; i++) {
                if (in->fds[i].pos < end) {
                        if (fds)
                                fds[n++] = in->fds[i].fd;
                        else
                                safe_close(in->fds[i].fd);
                } else
                        in->fds[kept++] = in->fds[i];
        }
        in->n_fds = kept;
        in->start = end;
        if (in->scanned < end)
                in->scanned = end;
        if (in->start == in->size) {
                /* Nothing left over: start from the beginning again, keeping the allocation. */
                for (size_t i = 0; i < in->n_fds; i++)
                        in->fds[i].pos -= in->start;
                in->start = in->scanned = in->size = 0;
                /* Give back what one big message needed; small buffers are kept for reuse. */
                if (in->alloc > 256 * 1024) {
                        in->buf = mfree(in->buf);
                        in->alloc = 0;
                }
        }
        if (ret_fds) {
                *ret_fds = TAKE_PTR(fds);
                *ret_n_fds = n;
        }
}

int varlink_input_next(VarlinkInput *in, size_t max, json_t **ret, int **ret_fds, size_t *ret_n_fds,
                       const char **ret_why) {
        size_t avail = in->size - in->start, limit, from;
        char *nul;
        json_t *m;
        json_error_t err;

        if (in->scanned < in->start)
                in->scanned = in->start;
        /* A message may hold at most max bytes before its NUL. */
        limit = MIN(avail, max == SIZE_MAX ? SIZE_MAX : max + 1);
        from = in->scanned - in->start;
        nul = from < limit ? memchr(in->buf + in->scanned, 0, limit - from) : NULL;
        if (!nul) {
                in->scanned = in->start + limit;
                if (limit < avail || (max != SIZE_MAX && avail > max)) {
                        if (ret_why)
                                *ret_why = "message exceeds the size limit";
                        return -EMSGSIZE;
                }
                return 0;
        }

        size_t len = (size_t) (nul - (in->buf + in->start));
        m = json_loadb(in->buf + in->start, len, 0, &err);
        if (!m || !json_is_object(m)) {
                json_decref(m);
                input_consume(in, in->start + len + 1, NULL, NULL);
                if (ret_why)
                        *ret_why = m ? "message is not a JSON object" : "message is not valid JSON";
                return -EBADMSG;
        }
        input_consume(in, in->start + len + 1, ret_fds, ret_n_fds);
        if (ret_fds && !*ret_fds) {
                json_decref(m);
                return -ENOMEM;
        }
        *ret = m;
        return 1;
}

struct VarlinkOutItem {
        VarlinkOutItem *next;
        char *data;
        size_t size, done;
        int fds[VARLINK_FDS_MAX];
        size_t n_fds;
};

static VarlinkOutItem *out_item_free(VarlinkOutItem *i) {
        if (!i)
                return NULL;
        close_many(i->fds, i->n_fds);
        free(i->data);
        return mfree(i);
}

void varlink_output_done(VarlinkOutput *out) {
        while (out->head) {
                VarlinkOutItem *i = out->head;
                out->head = i->next;
                out_item_free(i);
        }
        *out = (VarlinkOutput){};
}

int varlink_output_enqueue(VarlinkOutput *out, json_t *m, int *fds, size_t n_fds) {
        VarlinkOutItem *i;
        char *s;

        if (n_fds > VARLINK_FDS_MAX) {
                close_many(fds, n_fds);
                return -E2BIG;
        }
        /* jansson escapes U+0000 in strings, so the only NUL is the terminator added by dumps. */
        s = json_dumps(m, JSON_COMPACT);
        i = calloc(1, sizeof(*i));
        if (!s || !i) {
                free(s);
                free(i);
                close_many(fds, n_fds);
                return -ENOMEM;
        }
        i->data = s;
        i->size = strlen(s) + 1;
        if (n_fds > 0)
                memcpy(i->fds, fds, n_fds * sizeof(int));
        i->n_fds = n_fds;
        if (out->tail)
                out->tail->next = i;
        else
                out->head = i;
        out->tail = i;
        out->bytes += i->size;
        return 0;
}

int varlink_output_flush(VarlinkOutput *out, int fd) {
        while (out->head) {
                VarlinkOutItem *i = out->head;
                union {
                        struct cmsghdr cmsghdr;
                        uint8_t buf[CMSG_SPACE(sizeof(int) * VARLINK_FDS_MAX)];
                } control = {};
                struct iovec iov = { .iov_base = i->data + i->done, .iov_len = i->size - i->done };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                bool with_fds = i->done == 0 && i->n_fds > 0;
                ssize_t n;

                if (with_fds) {
                        struct cmsghdr *c;
                        mh.msg_control = &control;
                        mh.msg_controllen = CMSG_SPACE(sizeof(int) * i->n_fds);
                        c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int) * i->n_fds);
                        memcpy(CMSG_DATA(c), i->fds, sizeof(int) * i->n_fds);
                }
                n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (with_fds) {
                        /* The peer has its copies now. */
                        close_many(i->fds, i->n_fds);
                        i->n_fds = 0;
                }
                i->done += (size_t) n;
                out->bytes -= (size_t) n;
                if (i->done < i->size)
                        continue;
                out->head = i->next;
                if (!out->head)
                        out->tail = NULL;
                out_item_free(i);
        }
        return 0;
}

static int get_optional_bool(json_t *m, const char *key, bool *ret, const char **ret_why, const char *why) {
        json_t *v = json_object_get(m, key);

        if (!v || json_is_null(v)) {
                *ret = false;
                return 0;
        }
        if (!json_is_boolean(v)) {
                *ret_why = why;
                return -EBADMSG;
        }
        *ret = json_is_true(v);
        return 0;
}

static int get_parameters(json_t *m, json_t **ret, const char **ret_why) {
        json_t *v = json_object_get(m, "parameters");

        if (!v || json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_object(v)) {
                *ret_why = "\"parameters\" is not an object";
                return -EBADMSG;
        }
        *ret = v;
        return 0;
}

int varlink_parse_call(json_t *m, VarlinkCallMessage *ret, const char **ret_why) {
        VarlinkCallMessage c = {};
        const char *why = NULL;
        json_t *v;
        int r;

        if (!json_is_object(m)) {
                *ret_why = "message is not an object";
                return -EBADMSG;
        }
        v = json_object_get(m, "method");
        if (!v) {
                *ret_why = "message has no \"method\"";
                return -EBADMSG;
        }
        if (!json_is_string(v)) {
                *ret_why = "\"method\" is not a string";
                return -EBADMSG;
        }
        c.method = json_string_value(v);
        if (strlen(c.method) != json_string_length(v)) {
                *ret_why = "\"method\" contains a NUL byte";
                return -EBADMSG;
        }
        r = get_parameters(m, &c.parameters, &why);
        if (r >= 0)
                r = get_optional_bool(m, "more", &c.more, &why, "\"more\" is not a boolean");
        if (r >= 0)
                r = get_optional_bool(m, "oneway", &c.oneway, &why, "\"oneway\" is not a boolean");
        if (r >= 0)
                r = get_optional_bool(m, "upgrade", &c.upgrade, &why, "\"upgrade\" is not a boolean");
        if (r < 0) {
                *ret_why = why ?: "out of memory";
                return r;
        }
        if (c.more && c.oneway) {
                *ret_why = "\"more\" and \"oneway\" are both set";
                return -EBADMSG;
        }
        *ret = c;
        return 0;
}

int varlink_parse_reply(json_t *m, VarlinkReplyMessage *ret, const char **ret_why) {
        VarlinkReplyMessage p = {};
        const char *why = NULL;
        json_t *v;
        int r;

        if (!json_is_object(m)) {
                *ret_why = "reply is not an object";
                return -EBADMSG;
        }
        v = json_object_get(m, "error");
        if (v && !json_is_null(v)) {
                if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
                        *ret_why = "\"error\" is not a string";
                        return -EBADMSG;
                }
                p.error = json_string_value(v);
        }
        r = get_parameters(m, &p.parameters, &why);
        if (r >= 0)
                r = get_optional_bool(m, "continues", &p.continues, &why, "\"continues\" is not a boolean");
        if (r < 0) {
                *ret_why = why ?: "out of memory";
                return r;
        }
        if (p.error && p.continues) {
                *ret_why = "error reply with \"continues\"";
                return -EBADMSG;
        }
        *ret = p;
        return 0;
}

/* One dot-separated part of an interface name: [A-Za-z0-9] runs joined by dashes, no leading dash. */
static bool interface_part_ok(const char *s, size_t n, bool first) {
        if (n == 0)
                return false;
        if (first ? !isalpha((unsigned char) s[0]) : !isalnum((unsigned char) s[0]))
                return false;
        if (s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isascii((unsigned char) s[i]) && (isalnum((unsigned char) s[i]) || s[i] == '-')))
                        return false;
        return true;
}

bool varlink_interface_name_is_valid(const char *name) {
        size_t parts = 0;
        const char *p = name;

        if (isempty(name) || strlen(name) > 255)
                return false;
        for (;;) {
                const char *dot = strchr(p, '.');
                size_t n = dot ? (size_t) (dot - p) : strlen(p);
                if (!interface_part_ok(p, n, parts == 0))
                        return false;
                parts++;
                if (!dot)
                        break;
                p = dot + 1;
        }
        return parts >= 2;
}

bool varlink_member_name_is_valid(const char *name) {
        if (isempty(name) || strlen(name) > 255 || !isupper((unsigned char) name[0]))
                return false;
        for (const char *p = name; *p; p++)
                if (!isascii((unsigned char) *p) || !isalnum((unsigned char) *p))
                        return false;
        return true;
}

int varlink_split_method(const char *full, char **ret_interface, const char **ret_method) {
        const char *dot = strrchr(full, '.');
        char *iface;

        if (!dot || !varlink_member_name_is_valid(dot + 1))
                return -EINVAL;
        iface = strndup(full, (size_t) (dot - full));
        if (!iface)
                return -ENOMEM;
        if (!varlink_interface_name_is_valid(iface)) {
                free(iface);
                return -EINVAL;
        }
        *ret_interface = iface;
        *ret_method = dot + 1;
        return 0;
}

void varlink_strv_free(char **l) {
        if (!l)
                return;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
}

static bool idl_word_char(char c) {
        return isascii((unsigned char) c) && (isalnum((unsigned char) c) || c == '_' || c == '.' || c == '-');
}

/* Next token of IDL text: a word, or one punctuation character. Comments run from '#' to the line end. */
static const char *idl_token(const char *p, const char **ret_end) {
        for (;;) {
                while (*p && isspace((unsigned char) *p))
                        p++;
                if (*p != '#')
                        break;
                while (*p && *p != '\n')
                        p++;
        }
        if (!*p)
                return NULL;
        const char *e = p;
        if (idl_word_char(*e))
                while (idl_word_char(*e))
                        e++;
        else
                e++;
        *ret_end = e;
        return p;
}

static bool token_is(const char *t, const char *e, const char *word) {
        size_t n = strlen(word);
        return (size_t) (e - t) == n && strncmp(t, word, n) == 0;
}

int varlink_idl_scan(const char *idl, char **ret_interface, char ***ret_methods) {
        _cleanup_free_ char *iface = NULL;
        char **methods = NULL;
        size_t n_methods = 0;
        const char *t, *e, *p;

        t = idl_token(idl, &e);
        if (!t || !token_is(t, e, "interface"))
                return -EBADMSG;
        t = idl_token(e, &e);
        if (!t || !idl_word_char(*t))
                return -EBADMSG;
        iface = strndup(t, (size_t) (e - t));
        if (!iface)
                return -ENOMEM;
        if (!varlink_interface_name_is_valid(iface))
                return -EBADMSG;

        methods = calloc(1, sizeof(char *));
        if (!methods)
                return -ENOMEM;
        p = e;
        while ((t = idl_token(p, &e))) {
                const char *t2, *e2;
                p = e;
                /* "method" followed by a word declares one; as a field name it is followed by ':' etc. */
                if (!token_is(t, e, "method"))
                        continue;
                t2 = idl_token(e, &e2);
                if (!t2 || !idl_word_char(*t2))
                        continue;
                char *name = strndup(t2, (size_t) (e2 - t2));
                char **l = name ? realloc(methods, (n_methods + 2) * sizeof(char *)) : NULL;
                if (!l) {
                        free(name);
                        varlink_strv_free(methods);
                        return -ENOMEM;
                }
                methods = l;
                methods[n_methods++] = name;
                methods[n_methods] = NULL;
                if (!varlink_member_name_is_valid(name)) {
                        varlink_strv_free(methods);
                        return -EBADMSG;
                }
                p = e2;
        }
        *ret_interface = TAKE_PTR(iface);
        *ret_methods = methods;
        return 0;
}
