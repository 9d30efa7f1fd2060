/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>

#include "fileio.h"
#include "hash.h"
#include "http.h"
#include "log.h"
#include "omaha-client-download.h"
#include "omaha-client-error.h"

typedef struct Sink {
        OmahaDownload *d;
        Sha256 *hash;           /* NULL when resuming */
        uint64_t limit;         /* stop after this many bytes of this request */
        uint64_t got;           /* bytes of this request */
        bool limit_reached;
} Sink;

_printf_(3, 4) static void dl_fail(OmahaDownload *d, int code, const char *fmt, ...) {
        va_list ap;

        d->omaha_code = code;
        va_start(ap, fmt);
        vsnprintf(d->message, sizeof d->message, fmt, ap);
        va_end(ap);
}

static bool cancelled(OmahaDownload *d) {
        return __atomic_load_n(&d->cancel, __ATOMIC_ACQUIRE);
}

static int pipe_write_all(OmahaDownload *d, const uint8_t *p, size_t n) {
        while (n > 0) {
                struct pollfd pfd = { .fd = d->pipe_fd, .events = POLLOUT };
                ssize_t k;
                int r;

                if (cancelled(d))
                        return -ECANCELED;
                /* Short polls so that a cancel is seen even when the reader stopped reading. */
                r = poll(&pfd, 1, 200);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        continue;
                if (pfd.revents & (POLLERR | POLLHUP))
                        return -EPIPE;
                k = write(d->pipe_fd, p, n);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int on_body(const void *data, size_t size, void *userdata) {
        Sink *s = userdata;
        OmahaDownload *d = s->d;
        int r;

        if (s->limit != UINT64_MAX && s->got + size > s->limit) {
                size = (size_t) (s->limit - s->got);
                s->limit_reached = true;
        }
        if (!d->resume && d->received + size > d->size) {
                dl_fail(d, OMAHA_ERROR_PAYLOAD_SIZE_MISMATCH, "the server sent more than the announced %" PRIu64 " bytes",
                         d->size);
                return -EFBIG;
        }
        if (s->hash) {
                r = sha256_update(s->hash, data, size);
                if (r < 0)
                        return r;
        }
        r = pipe_write_all(d, data, size);
        if (r < 0)
                return r;
        s->got += size;
        __atomic_store_n(&d->received, d->received + size, __ATOMIC_RELEASE);
        return s->limit_reached ? -ECANCELED : 0;
}

static int fetch(OmahaDownload *d, Sink *s, uint64_t from, const char *range) {
        const OmahaConfig *c = d->config;
        HttpHeader h = { "Range", range };
        bool https = startswith(d->url, "https://");
        HttpRequest req = {
                .url = d->url,
                .ca_file = c->ca_file,
                /* As update_engine: an https URL stays on https (redirects too); credentials only go
                 * over https, a plain http URL gets none. */
                .https_only = https,
                .username = https ? c->download_user : NULL,
                .password = https ? c->download_password : NULL,
                .resume_from = from,
                .headers = range ? &h : NULL,
                .n_headers = range ? 1 : 0,
        };
        HttpResponse resp = {};
        int r;

        r = http_perform(&req, on_body, s, &resp);
        d->http_status = resp.status;
        if (r == -ECANCELED && s->limit_reached)
                r = 0;
        else if (r < 0) {
                if (d->omaha_code == 0) {
                        dl_fail(d, OMAHA_ERROR_DOWNLOAD_TRANSFER, "download of %s failed: %s", d->url,
                                 resp.error[0] ? resp.error : strerror(-r));
                }
        } else if (resp.status < 200 || resp.status > 299) {
                dl_fail(d, OMAHA_ERROR_DOWNLOAD_TRANSFER, "download of %s failed: HTTP status %ld", d->url,
                         resp.status);
                r = -EIO;
        } else if (!d->resume && resp.content_length != UINT64_MAX && resp.content_length != d->size) {
                d->omaha_code = OMAHA_ERROR_PAYLOAD_SIZE_MISMATCH;
                snprintf(d->message, sizeof d->message,
                         "the server announced %" PRIu64 " bytes, the Omaha response %" PRIu64, resp.content_length,
                         d->size);
                r = -EBADMSG;
        }
        http_response_done(&resp);
        return r;
}

static int download_run(OmahaDownload *d) {
        _cleanup_(sha256_freep) Sha256 *hash = NULL;
        uint8_t digest[32];
        int r;

        if (d->resume) {
                char range[64];
                Sink s1 = { .d = d, .limit = d->metadata_size };
                Sink s2 = { .d = d, .limit = UINT64_MAX };

                snprintf(range, sizeof range, "bytes=0-%" PRIu64, d->metadata_size - 1);
                r = fetch(d, &s1, 0, range);
                if (r < 0)
                        return r;
                if (s1.got != d->metadata_size) {
                        dl_fail(d, OMAHA_ERROR_DOWNLOAD_TRANSFER, "payload ended inside its metadata");
                        return -EIO;
                }
                /* The blobs before blob_offset are already written. */
                __atomic_store_n(&d->received, d->metadata_size + d->blob_offset, __ATOMIC_RELEASE);
                if (d->metadata_size + d->blob_offset >= d->size)
                        return 0;
                return fetch(d, &s2, d->metadata_size + d->blob_offset, NULL);
        }

        r = sha256_new(&hash);
        if (r < 0)
                return r;
        Sink s = { .d = d, .hash = hash, .limit = UINT64_MAX };
        r = fetch(d, &s, 0, NULL);
        if (r < 0)
                return r;
        if (d->received != d->size) {
                dl_fail(d, OMAHA_ERROR_PAYLOAD_SIZE_MISMATCH, "got %" PRIu64 " bytes, the Omaha response announced %" PRIu64,
                         d->received, d->size);
                return -EBADMSG;
        }
        r = sha256_final(hash, digest);
        if (r < 0)
                return r;
        if (memcmp(digest, d->sha256, sizeof digest) != 0) {
                dl_fail(d, OMAHA_ERROR_PAYLOAD_HASH_MISMATCH, "the payload's SHA-256 differs from the Omaha response's");
                return -EBADMSG;
        }
        return 0;
}

static void *download_thread(void *userdata) {
        OmahaDownload *d = userdata;

        d->error = download_run(d);
        if (d->error < 0 && d->omaha_code == 0) {
                dl_fail(d, d->error == -ECANCELED ? OMAHA_ERROR_DOWNLOAD_WRITE : OMAHA_ERROR_DOWNLOAD_TRANSFER,
                        "download failed: %s", strerror(-d->error));
        }
        /* EOF for payload-writer: either the whole payload or a truncated stream it will refuse. */
        d->pipe_fd = safe_close(d->pipe_fd);
        return NULL;
}

int omaha_download_start(OmahaDownload *d) {
        int r;

        r = pthread_create(&d->thread, NULL, download_thread, d);
        if (r != 0) {
                d->pipe_fd = safe_close(d->pipe_fd);
                return -r;
        }
        d->started = true;
        return 0;
}

void omaha_download_finish(OmahaDownload *d) {
        if (!d->started)
                return;
        __atomic_store_n(&d->cancel, true, __ATOMIC_RELEASE);
        (void) pthread_join(d->thread, NULL);
        d->started = false;
}

uint64_t omaha_download_received(OmahaDownload *d) {
        return __atomic_load_n(&d->received, __ATOMIC_ACQUIRE);
}

int omaha_checkpoint_read(int fd, uint64_t *ret_metadata_size, uint64_t *ret_blob_offset) {
        _cleanup_free_ char *data = NULL;
        json_t *o, *m, *b;
        size_t size;
        int r;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        r = read_full_fd(fd, 64 * 1024, &data, &size);
        if (r < 0)
                return r;
        if (size == 0)
                return -ENODATA;
        o = json_loadb(data, size, 0, NULL);
        m = json_object_get(o, "metadata_size");
        b = json_object_get(o, "blob_offset");
        if (!json_is_integer(m) || !json_is_integer(b) || json_integer_value(m) <= 0 || json_integer_value(b) < 0) {
                json_decref(o);
                return -ENODATA;
        }
        *ret_metadata_size = (uint64_t) json_integer_value(m);
        *ret_blob_offset = (uint64_t) json_integer_value(b);
        json_decref(o);
        return 0;
}
