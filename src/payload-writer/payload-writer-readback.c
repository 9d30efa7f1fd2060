/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "hash.h"
#include "payload-writer-readback.h"

/* One stretch: read and hashed per wake-up. The work left for the end is below one stretch plus what
 * the last operations write. */
#define STRETCH (4u * 1024u * 1024u)
#define READ_BUF (1024u * 1024u)
#define PAGE 4096u

struct ReadBack {
        int fd;
        uint64_t offset, size;
        Sha256 *hash;
        uint8_t *buf;

        pthread_mutex_t lock;
        pthread_cond_t changed;
        uint64_t final;   /* bytes from the start that are final */
        uint64_t hashed;  /* bytes from the start that are hashed (only the thread moves it) */
        bool finishing;   /* the caller wrote and flushed everything: read to the end */
        bool stop, started;
        bool deferred;    /* ranges cannot be written back one by one: wait for the finish */
        int error;
        pthread_t thread;
};

/* Reads [from, from + n) of the region from the device and hashes it. */
static int read_stretch(ReadBack *rb, uint64_t from, uint64_t n, bool flushed) {
        off_t pos = (off_t) (rb->offset + from);
        int r;

        if (!flushed && sync_file_range(rb->fd, pos, (off_t) n,
                                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                                SYNC_FILE_RANGE_WAIT_AFTER) < 0)
                return -errno;
        (void) posix_fadvise(rb->fd, pos, (off_t) n, POSIX_FADV_DONTNEED);
        r = sha256_update_fd(rb->hash, rb->fd, (uint64_t) pos, n, rb->buf, READ_BUF);
        if (r < 0)
                return r;
        /* The check should not leave the whole slot in the page cache either. */
        (void) posix_fadvise(rb->fd, pos, (off_t) n, POSIX_FADV_DONTNEED);
        return 0;
}

/* How far the next stretch may go, or 0 when there is nothing to do yet. Called locked. Before the
 * finish only whole pages that are final are read, so that dropping them from the cache is exact. */
static uint64_t next_end(const ReadBack *rb) {
        uint64_t end;

        if (rb->finishing)
                end = rb->size;
        else if (rb->deferred)
                return 0;
        else {
                uint64_t abs = (rb->offset + rb->final) & ~(uint64_t) (PAGE - 1);
                end = abs > rb->offset ? abs - rb->offset : 0;
                if (end < rb->hashed + STRETCH && rb->final < rb->size)
                        return 0;
        }
        if (end <= rb->hashed)
                return 0;
        return MIN(end, rb->hashed + STRETCH);
}

static void *read_back_main(void *userdata) {
        ReadBack *rb = userdata;

        pthread_mutex_lock(&rb->lock);
        for (;;) {
                uint64_t end, from;
                bool flushed;
                int r;

                while (!rb->stop && (end = next_end(rb)) == 0 && !(rb->finishing && rb->hashed >= rb->size))
                        pthread_cond_wait(&rb->changed, &rb->lock);
                if (rb->stop || (rb->finishing && rb->hashed >= rb->size))
                        break;
                from = rb->hashed;
                flushed = rb->finishing;
                pthread_mutex_unlock(&rb->lock);
                r = read_stretch(rb, from, end - from, flushed);
                pthread_mutex_lock(&rb->lock);
                if (r == -EINVAL || r == -ESPIPE || r == -ENOSYS || r == -EPERM || r == -EOPNOTSUPP) {
                        /* sync_file_range() refused (not a file or block device, a seccomp filter):
                         * read after the caller's final flush instead. */
                        if (!flushed) {
                                rb->deferred = true;
                                continue;
                        }
                }
                if (r < 0) {
                        rb->error = r;
                        break;
                }
                rb->hashed = end;
        }
        pthread_mutex_unlock(&rb->lock);
        return NULL;
}

int read_back_new(int fd, uint64_t offset, uint64_t size, ReadBack **ret) {
        ReadBack *rb = calloc(1, sizeof *rb);

        if (!rb)
                return -ENOMEM;
        *rb = (ReadBack) { .fd = fd, .offset = offset, .size = size };
        pthread_mutex_init(&rb->lock, NULL);
        pthread_cond_init(&rb->changed, NULL);
        rb->buf = malloc(READ_BUF);
        if (!rb->buf || sha256_new(&rb->hash) < 0) {
                read_back_free(rb);
                return -ENOMEM;
        }
        /* Without a thread (TasksMax=, RLIMIT_NPROC) everything is read in read_back_finish(). */
        rb->started = pthread_create(&rb->thread, NULL, read_back_main, rb) == 0;
        *ret = rb;
        return 0;
}

void read_back_final_upto(ReadBack *rb, uint64_t upto) {
        pthread_mutex_lock(&rb->lock);
        upto = MIN(upto, rb->size);
        if (upto > rb->final) {
                rb->final = upto;
                pthread_cond_broadcast(&rb->changed);
        }
        pthread_mutex_unlock(&rb->lock);
}

int read_back_finish(ReadBack *rb, uint8_t ret[32]) {
        pthread_mutex_lock(&rb->lock);
        rb->finishing = true;
        rb->final = rb->size;
        pthread_cond_broadcast(&rb->changed);
        pthread_mutex_unlock(&rb->lock);
        if (rb->started) {
                (void) pthread_join(rb->thread, NULL);
                rb->started = false;
        } else
                (void) read_back_main(rb);
        if (rb->error < 0)
                return rb->error;
        return sha256_final(rb->hash, ret) < 0 ? -EIO : 0;
}

ReadBack *read_back_free(ReadBack *rb) {
        if (!rb)
                return NULL;
        if (rb->started) {
                pthread_mutex_lock(&rb->lock);
                rb->stop = true;
                pthread_cond_broadcast(&rb->changed);
                pthread_mutex_unlock(&rb->lock);
                (void) pthread_join(rb->thread, NULL);
        }
        sha256_free(rb->hash);
        free(rb->buf);
        pthread_cond_destroy(&rb->changed);
        pthread_mutex_destroy(&rb->lock);
        free(rb);
        return NULL;
}
