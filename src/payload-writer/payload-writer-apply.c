/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <linux/fs.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#include "fileio.h"
#include "hash.h"
#include "log.h"
#include "payload-writer-apply.h"
#include "payload-writer-hashstate.h"
#include "payload-writer-ops.h"
#include "payload-writer-readback.h"
#include "payload-writer-workers.h"
#include "time-util.h"

#define CHECKPOINT_VERSION 1
#define CHECKPOINT_MAX (64u * 1024u)

/* The input: read strictly forward, every consumed byte hashed in payload order. The signed hash covers a
 * prefix of the same byte stream (everything before the signature blob), so one resumable state serves
 * both: the signed digest is a peek taken when the reader reaches signatures_offset. */
typedef struct Reader {
        int fd;
        uint64_t pos; /* position in the payload of the next byte */
        HashState *hash;
        int stop_fd; /* on the reader thread: readable when the writer gives up; -1 = none */
} Reader;

/* On the reader thread every read waits for the input or for stop_fd, so that a writer that has to give
 * up can stop it even when the input has stalled (a dead download). */
static int wait_input_or_stop(const Reader *r) {
        struct pollfd p[2] = { { .fd = r->fd, .events = POLLIN }, { .fd = r->stop_fd, .events = POLLIN } };
        for (;;) {
                int k = poll(p, 2, -1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (p[1].revents)
                        return -ECANCELED;
                return 0;
        }
}

/* The input may be a non-blocking pipe (a caller's download stream): wait instead of failing. */
static int wait_readable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        for (;;) {
                int k = poll(&p, 1, -1);
                if (k < 0 && errno == EINTR)
                        continue;
                return k < 0 ? -errno : 0;
        }
}

static int reader_read(Reader *r, void *dst, size_t n, const char *section, PayloadError *e) {
        size_t done = 0;
        while (done < n) {
                if (r->stop_fd >= 0) {
                        int w = wait_input_or_stop(r);
                        if (w < 0)
                                return payload_error_set(e, PAYLOAD_DOWNLOAD_TRANSFER_ERROR, -w,
                                                         "reading the payload at byte %" PRIu64 " stopped: %s",
                                                         r->pos + done, strerror(-w));
                }
                ssize_t k = read(r->fd, (uint8_t *) dst + done, n - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN && (r->stop_fd >= 0 || wait_readable(r->fd) >= 0))
                                continue;
                        return payload_error_set(e, PAYLOAD_DOWNLOAD_TRANSFER_ERROR, errno,
                                                 "reading the payload at byte %" PRIu64 " failed: %s",
                                                 r->pos + done, strerror(errno));
                }
                if (k == 0)
                        return payload_fail(e, PAYLOAD_SIZE_MISMATCH_ERROR,
                                            "payload is truncated: it ends after %" PRIu64 " bytes, inside the %s",
                                            r->pos + done, section);
                done += (size_t) k;
        }
        if (r->hash)
                hash_state_update(r->hash, dst, n);
        r->pos += n;
        return 0;
}

/* Consumes n bytes that a resumed run already processed; they are not hashed again. */
static int reader_skip(Reader *r, uint64_t n, PayloadError *e) {
        uint8_t buf[64 * 1024];
        HashState *saved = r->hash;
        int ret = 0;

        r->hash = NULL;
        while (n > 0 && ret >= 0) {
                size_t k = (size_t) MIN(n, (uint64_t) sizeof buf);
                ret = reader_read(r, buf, k, "data already applied", e);
                n -= k;
        }
        r->hash = saved;
        return ret;
}

/* Returns how many bytes follow (0 or 1: we only need to know whether any do). */
static int reader_trailing(Reader *r, PayloadError *e) {
        uint8_t b;
        for (;;) {
                ssize_t k = read(r->fd, &b, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN && wait_readable(r->fd) >= 0)
                        continue;
                if (k < 0)
                        return payload_error_set(e, PAYLOAD_DOWNLOAD_TRANSFER_ERROR, errno,
                                                 "reading the payload end failed: %s", strerror(errno));
                return (int) k;
        }
}

int payload_checkpoint_read(int fd, json_t **ret) {
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        json_t *j;
        int r;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        r = read_full_fd(fd, CHECKPOINT_MAX, &data, &size);
        if (r < 0)
                return r;
        if (size == 0) {
                *ret = NULL;
                return 0;
        }
        j = json_loadb(data, size, 0, NULL);
        if (!j || !json_is_object(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        *ret = j;
        return 1;
}

static int checkpoint_clear(int fd) {
        if (ftruncate(fd, 0) < 0 || fdatasync(fd) < 0)
                return -errno;
        return 0;
}

static int checkpoint_write(int fd, const char *payload_sha256, uint64_t metadata_size, const char *metadata_hex,
                            uint64_t next_op, uint64_t blob_offset, const HashState *h) {
        json_t *state = NULL, *j;
        char *text;
        int r;

        r = hash_state_to_json(h, &state);
        if (r < 0)
                return r;
        j = json_pack("{s:i, s:s?, s:I, s:s, s:I, s:I, s:o}", "version", CHECKPOINT_VERSION, "payload_sha256",
                      payload_sha256, "metadata_size", (json_int_t) metadata_size, "metadata_sha256", metadata_hex,
                      "next_operation", (json_int_t) next_op, "blob_offset", (json_int_t) blob_offset,
                      "hash_state", state);
        if (!j)
                return -ENOMEM;
        text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        if (!text)
                return -ENOMEM;
        /* A torn write leaves unparsable JSON, which is treated as "no checkpoint": a restart from zero is
         * always correct, only slower. */
        size_t len = strlen(text);
        ssize_t k = pwrite(fd, text, len, 0);
        free(text);
        if (k < 0)
                return -errno;
        if ((size_t) k != len)
                return -EIO;
        if (ftruncate(fd, (off_t) len) < 0 || fdatasync(fd) < 0)
                return -errno;
        return 0;
}

static const InstallProcedure *find_procedure(const Manifest *m, int type) {
        for (size_t i = 0; i < m->n_procedures; i++)
                if ((m->procedures[i]->has_type ? (int) m->procedures[i]->type : PROC_KERNEL) == type)
                        return m->procedures[i];
        return NULL;
}

static bool info_complete(const InstallInfo *i) {
        return i && i->has_size && i->has_hash && i->hash.len == 32;
}

/* Reads back size bytes of fd from offset, bypassing what we just wrote into the page cache. */
static int read_back(int fd, uint64_t offset, uint64_t size, uint8_t ret[32]) {
        if (fdatasync(fd) < 0 && errno != EINVAL)
                return -errno;
        (void) posix_fadvise(fd, (off_t) offset, (off_t) size, POSIX_FADV_DONTNEED);
        return sha256_fd(fd, offset, size, ret);
}

static int check_digest(const uint8_t d[32], const InstallInfo *info, int code, const char *what, PayloadError *e) {
        char want[SHA256_HEX_SIZE], got[SHA256_HEX_SIZE];

        if (memcmp(d, info->hash.data, 32) == 0)
                return 0;
        hex_encode(info->hash.data, 32, want);
        hex_encode(d, 32, got);
        return payload_fail(e, code, "the %s reads back with SHA-256 %s, the manifest says %s", what, got, want);
}

static int read_back_failed(int r, const InstallInfo *info, int code, const char *what, PayloadError *e) {
        return payload_error_set(e, code, -r, "reading back %" PRIu64 " bytes of the %s failed: %s", info->size, what,
                                 strerror(-r));
}

static int check_info(int fd, uint64_t offset, const InstallInfo *info, int code, const char *what, bool exact_size,
                      PayloadError *e) {
        uint8_t d[32];
        struct stat st;
        int r;

        if (exact_size) {
                if (fstat(fd, &st) < 0)
                        return payload_error_set(e, code, errno, "cannot stat the %s: %s", what, strerror(errno));
                if ((uint64_t) st.st_size != info->size)
                        return payload_fail(e, code, "the %s is %" PRIu64 " bytes, the manifest says %" PRIu64, what,
                                            (uint64_t) st.st_size, info->size);
        }
        r = read_back(fd, offset, info->size, d);
        if (r < 0)
                return read_back_failed(r, info, code, what, e);
        return check_digest(d, info, code, what, e);
}

/* floor[i]: the lowest /usr byte that operations i and later still write (UINT64_MAX: none). Below
 * floor[i + 1] the slot is final once operation i is written, and can be read back while later
 * operations are decoded. Any operation order is handled; generated payloads simply go forward. */
static uint64_t *usr_write_floors(const Manifest *m, uint32_t bs, uint64_t from, uint64_t n_ops) {
        uint64_t *floor = malloc((n_ops - from + 1) * sizeof *floor);
        if (!floor)
                return NULL;
        floor[n_ops - from] = UINT64_MAX;
        for (uint64_t i = n_ops; i > from; i--) {
                const InstallProcedure *proc;
                const InstallOperation *op = payload_manifest_operation(m, i - 1, &proc);
                uint64_t low = floor[i - from];
                for (size_t x = 0; !proc && x < op->n_dst_extents; x++)
                        if (op->dst_extents[x]->start_block != PAYLOAD_SPARSE_HOLE)
                                low = MIN(low, op->dst_extents[x]->start_block * (uint64_t) bs);
                floor[i - 1 - from] = low;
        }
        return floor;
}

/* Writes go to explicit offsets and are read back: the descriptor must allow both, and O_APPEND would
 * silently move every pwrite() to the end. */
static int check_rw(int fd, int code, const char *what, PayloadError *e) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return payload_error_set(e, code, errno, "the %s descriptor is not usable: %s", what, strerror(errno));
        if ((fl & O_ACCMODE) != O_RDWR)
                return payload_fail(e, code, "the %s must be open for reading and writing", what);
        if (fl & O_APPEND)
                return payload_fail(e, code, "the %s must not be open with O_APPEND", what);
        return 0;
}

typedef struct Resume {
        uint64_t next_op, blob_offset;
        HashState *hash;
} Resume;

/* A checkpoint counts only if it names this very payload and is consistent with its manifest. */
static int resume_from_checkpoint(json_t *j, const Manifest *m, const char *payload_sha256, uint64_t metadata_size,
                                  const char *metadata_hex, Resume *ret) {
        json_t *v;
        const char *s;
        uint64_t next, blob, expect = 0;
        size_t n = payload_manifest_n_operations(m);
        int r;

        if (json_integer_value(json_object_get(j, "version")) != CHECKPOINT_VERSION)
                return -EBADMSG;
        v = json_object_get(j, "payload_sha256");
        s = json_is_string(v) ? json_string_value(v) : NULL;
        if (!streq_ptr(s, payload_sha256))
                return -ESTALE;
        if (!json_is_integer(json_object_get(j, "metadata_size")) ||
            (uint64_t) json_integer_value(json_object_get(j, "metadata_size")) != metadata_size)
                return -ESTALE;
        v = json_object_get(j, "metadata_sha256");
        if (!json_is_string(v) || !streq(json_string_value(v), metadata_hex))
                return -ESTALE;
        v = json_object_get(j, "next_operation");
        if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t) json_integer_value(v) > n)
                return -EBADMSG;
        next = (uint64_t) json_integer_value(v);
        v = json_object_get(j, "blob_offset");
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        blob = (uint64_t) json_integer_value(v);
        for (uint64_t i = 0; i < next; i++) {
                const InstallOperation *op = payload_manifest_operation(m, i, NULL);
                expect += op->has_data_length ? op->data_length : 0;
        }
        if (blob != expect)
                return -EBADMSG;
        r = hash_state_from_json(json_object_get(j, "hash_state"), &ret->hash);
        if (r < 0)
                return r;
        if (hash_state_bytes(ret->hash) != metadata_size + blob) {
                ret->hash = hash_state_free(ret->hash);
                return -EBADMSG;
        }
        ret->next_op = next;
        ret->blob_offset = blob;
        return 0;
}

/* One operation in flight: its blob as read, checked and decoded on a worker, written here in order.
 * The per-operation hash is checked on the worker from the same buffer the reader filled (and hashed
 * into the whole-payload hash): every input byte is read once. */
typedef struct DecodeJob {
        WorkItem item; /* first */
        const InstallOperation *op;
        const PayloadTarget *t;
        uint32_t block_size;
        OpBuffer blob;
        size_t len;
        OpOutput out;
        OpDecoder **decoders; /* one per worker thread, made on first use by that thread */
        HashState *hash; /* the whole-payload hash after this operation's data (for its checkpoint) */
        char what[96];
        PayloadError error;
        int r;
} DecodeJob;

/* The operations in flight and the memory they use. The slots are allocated and touched before the
 * first operation is read, each holding the largest blob and the largest decoded output of the
 * operations to come; each decoding thread makes its decoder state with its first operation and keeps
 * it. Peak memory is then set by the manifest's largest operation and the thread count, whatever the
 * payload's length. */
typedef struct DecodeRing {
        DecodeJob *jobs;
        size_t n;
        OpDecoder *decoders[WORKERS_MAX];
} DecodeRing;

/* Buffers of the slots in flight beyond one per thread stay below this (at least one slot is kept). */
#define APPLY_RING_BUDGET (48u * 1024u * 1024u)

static int decode_ring_new(DecodeRing *ring, unsigned threads, size_t max_len, size_t max_out) {
        size_t n = 2 * (size_t) MAX(threads, 1u), slot = max_len + max_out;

        if (slot > 0 && n * slot > APPLY_RING_BUDGET)
                n = MAX(APPLY_RING_BUDGET / slot, (size_t) 1);
        ring->jobs = calloc(n, sizeof *ring->jobs);
        if (!ring->jobs)
                return -ENOMEM;
        ring->n = n;
        for (size_t i = 0; i < n; i++) {
                DecodeJob *j = &ring->jobs[i];
                j->decoders = ring->decoders;
                if (op_buffer_reserve(&j->blob, max_len) < 0 || op_buffer_reserve(&j->out.buf, max_out) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Call only once the workers are joined. */
static void decode_ring_done(DecodeRing *ring) {
        for (size_t i = 0; ring->jobs && i < ring->n; i++) {
                op_buffer_done(&ring->jobs[i].blob);
                op_buffer_done(&ring->jobs[i].out.buf);
                hash_state_free(ring->jobs[i].hash);
        }
        ring->jobs = mfree(ring->jobs);
        ring->n = 0;
        for (size_t i = 0; i < ELEMENTSOF(ring->decoders); i++)
                ring->decoders[i] = op_decoder_free(ring->decoders[i]);
}

static void decode_job(WorkItem *item, unsigned worker) {
        DecodeJob *j = (DecodeJob *) item;
        uint8_t d[32];

        j->out.data = NULL;
        j->out.size = 0;
        j->r = 0;
        if (j->len > 0) {
                if (sha256_buffer(j->blob.data, j->len, d) < 0) {
                        j->r = payload_error_set(&j->error, PAYLOAD_ERROR, EIO, "%s: hashing failed", j->what);
                        return;
                }
                if (memcmp(d, j->op->data_sha256_hash.data, 32) != 0) {
                        j->r = payload_fail(&j->error, PAYLOAD_OPERATION_HASH_MISMATCH,
                                            "%s: data does not match its SHA-256 hash", j->what);
                        return;
                }
        }
        /* Without its own decoder memory (out of memory) a thread still decodes, with plain allocations. */
        if (!j->decoders[worker])
                (void) op_decoder_new(&j->decoders[worker]);
        j->r = payload_op_decode(j->op, j->block_size, j->blob.data, j->len, j->decoders[worker], &j->out, j->what,
                                 &j->error);
}

/* The reader thread reads each operation's blob in order (hashing it into the whole-payload hash) into
 * the ring and hands it to the workers; the calling thread writes finished operations in order. With
 * the reader on its own thread, operations that are decoded get written (and checkpointed) even while
 * the input stalls. */
typedef struct Pipeline {
        pthread_mutex_t lock;
        pthread_cond_t changed;
        uint64_t submitted, written; /* operations handed to the workers / written, counted from 0 */
        bool stop, reader_done, started;
        int read_r;
        PayloadError read_error;
        pthread_t thread;
        int stop_fd;
        /* read-only for the reader thread */
        Reader *rd;
        const Manifest *m;
        DecodeRing *ring;
        Workers *workers;
        uint64_t n_ops;
        uint32_t block_size;
        bool checkpoint;
        const PayloadTarget *usr, *kernel, *pcr, *discard;
} Pipeline;

static int pipeline_fill(Pipeline *p, uint64_t i, DecodeJob *j) {
        const InstallProcedure *proc;
        const InstallOperation *op = payload_manifest_operation(p->m, i, &proc);
        uint64_t len = op->has_data_length ? op->data_length : 0;

        if (!proc) {
                j->t = p->usr;
                snprintf(j->what, sizeof j->what, "operation %" PRIu64, i);
        } else {
                int type = proc->has_type ? (int) proc->type : PROC_KERNEL;
                j->t = type == PROC_KERNEL ? p->kernel : type == PROC_PCR_POLICY ? p->pcr : p->discard;
                snprintf(j->what, sizeof j->what, "operation %" PRIu64 " (%s procedure)", i,
                         payload_procedure_type_to_string(type));
        }
        /* The ring was sized for the largest operation: this only checks that. */
        if (op_buffer_reserve(&j->blob, len) < 0)
                return payload_error_set(&p->read_error, PAYLOAD_ERROR, ENOMEM, "%s: out of memory", j->what);
        int r = reader_read(p->rd, j->blob.data, len, j->what, &p->read_error);
        if (r < 0)
                return r;
        j->op = op;
        j->block_size = p->block_size;
        j->len = len;
        j->error = (PayloadError) {};
        if (p->checkpoint) {
                if (!j->hash && hash_state_new(&j->hash) < 0)
                        return payload_error_set(&p->read_error, PAYLOAD_ERROR, ENOMEM, "out of memory");
                hash_state_copy(j->hash, p->rd->hash);
        }
        return 0;
}

static void *pipeline_reader(void *userdata) {
        Pipeline *p = userdata;
        uint64_t i;
        int r = 0;

        pthread_mutex_lock(&p->lock);
        i = p->submitted;
        pthread_mutex_unlock(&p->lock);
        for (; i < p->n_ops; i++) {
                bool stop;
                pthread_mutex_lock(&p->lock);
                while (i - p->written >= p->ring->n && !p->stop)
                        pthread_cond_wait(&p->changed, &p->lock);
                stop = p->stop;
                pthread_mutex_unlock(&p->lock);
                if (stop)
                        break;
                DecodeJob *j = &p->ring->jobs[i % p->ring->n];
                r = pipeline_fill(p, i, j);
                if (r < 0)
                        break;
                workers_submit(p->workers, &j->item, decode_job);
                pthread_mutex_lock(&p->lock);
                p->submitted = i + 1;
                pthread_cond_broadcast(&p->changed);
                pthread_mutex_unlock(&p->lock);
        }
        pthread_mutex_lock(&p->lock);
        p->read_r = r;
        p->reader_done = true;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* Stops the reader thread (even if it waits for input) and joins it. */
static void pipeline_stop(Pipeline *p) {
        if (p->started) {
                pthread_mutex_lock(&p->lock);
                p->stop = true;
                pthread_cond_broadcast(&p->changed);
                pthread_mutex_unlock(&p->lock);
                (void) eventfd_write(p->stop_fd, 1);
                (void) pthread_join(p->thread, NULL);
                p->started = false;
        }
        if (p->rd)
                p->rd->stop_fd = -EBADF;
        p->stop_fd = safe_close(p->stop_fd);
}

/* Hands an error recorded elsewhere (on a worker, by the reader) to the caller's error. */
static void payload_error_take(PayloadError *e, const PayloadError *from) {
        if (e && e->code == 0)
                *e = *from;
}

/* Decoding threads: all CPUs up to 8; two operations in flight per thread bound the memory
 * (about 2 x (blob + decoded chunk) + one decoder state per thread). */
#define APPLY_THREADS_MAX 8u

/* Checkpoints: the targets are flushed and the checkpoint written at most once a second while data
 * flows (as update_engine does), when the input stalls for a moment, and before apply returns early
 * (cancel, a bad operation, a failed input), never per write. A power cut then costs at most about a
 * second of work; a resume is always exact because the checkpoint claims only what was flushed. */
#define CHECKPOINT_INTERVAL_USEC (1000u * 1000u)
#define CHECKPOINT_STALL_USEC (200u * 1000u)

typedef struct Checkpointer {
        int fd;                 /* the checkpoint file, or -EBADF: no checkpoints */
        const char *payload_sha256, *metadata_hex;
        uint64_t metadata_size;
        const PayloadTarget *targets[3];
        HashState *hash;        /* whole-payload hash state after the last written operation */
        uint64_t next_op, blob_offset;
        bool unsaved;           /* operations written since the last checkpoint */
        uint64_t last_usec;
} Checkpointer;

static void checkpointer_done(Checkpointer *c) {
        c->hash = hash_state_free(c->hash);
}

static int checkpointer_save(Checkpointer *c, PayloadError *e) {
        int r;

        if (c->fd < 0 || !c->unsaved)
                return 0;
        /* The checkpoint may only claim what is durable on the targets. */
        for (size_t i = 0; i < ELEMENTSOF(c->targets); i++) {
                const PayloadTarget *t = c->targets[i];
                if (t && t->fd >= 0 && fdatasync(t->fd) < 0 && errno != EINVAL)
                        return payload_error_set(e, PAYLOAD_WRITE_ERROR, errno, "syncing the %s target failed: %s",
                                                 t->name, strerror(errno));
        }
        r = checkpoint_write(c->fd, c->payload_sha256, c->metadata_size, c->metadata_hex, c->next_op,
                             c->blob_offset, c->hash);
        if (r < 0)
                return payload_error_set(e, PAYLOAD_STATE_INITIALIZATION_ERROR, -r, "writing the checkpoint failed: %s",
                                         strerror(-r));
        c->unsaved = false;
        c->last_usec = now_monotonic_usec();
        return 0;
}

/* Records that operations up to next_op are written; checkpoints now if the last one is a second old. */
static int checkpointer_written(Checkpointer *c, uint64_t next_op, uint64_t blob_offset, const HashState *h,
                                PayloadError *e) {
        if (c->fd < 0)
                return 0;
        if (!c->hash && hash_state_new(&c->hash) < 0)
                return payload_error_set(e, PAYLOAD_ERROR, ENOMEM, "out of memory");
        hash_state_copy(c->hash, h);
        c->next_op = next_op;
        c->blob_offset = blob_offset;
        c->unsaved = true;
        if (now_monotonic_usec() - c->last_usec >= CHECKPOINT_INTERVAL_USEC)
                return checkpointer_save(c, e);
        return 0;
}

/* Saves what is written before an early return, keeping the first error (e) as the one reported. */
static int checkpointer_save_before(Checkpointer *c, int r, PayloadError *e) {
        PayloadError ignored = {};
        if (checkpointer_save(c, &ignored) < 0)
                log_warning("Could not save the checkpoint before stopping: %s", ignored.message);
        return r;
}

static void report(const PayloadApplyOptions *o, uint64_t bytes, uint64_t total_bytes, uint64_t ops, uint64_t total_ops) {
        PayloadProgress p = {
                .bytes = bytes,
                .total_bytes = total_bytes,
                .operations = ops,
                .total_operations = total_ops,
                .percent = total_bytes > 0 ? (unsigned) (bytes * 100 / total_bytes) : 100,
        };
        if (o->progress)
                o->progress(&p, o->userdata);
}

/* The large buffers of an apply (blobs, decoded chunks, the bzip2/xz/zstd decoder states) come and go
 * with every operation, on several threads. glibc's default raises its mmap threshold to the size of
 * the largest buffer freed, after which such buffers are carved from per-thread arenas that fragment
 * and keep growing with the length of the payload. A fixed threshold keeps every buffer of 128 KiB or
 * more in its own mapping, returned to the kernel when freed: peak memory is what is in flight. */
static void apply_malloc_setup(void) {
        (void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

int payload_apply(const PayloadApplyOptions *o, PayloadResult *ret, PayloadError *e) {
        _cleanup_(payload_manifest_freep) Manifest *m = NULL;
        _cleanup_(hash_state_freep) HashState *hash = NULL;
        _cleanup_free_ uint8_t *manifest_data = NULL, *sigblob = NULL, *sig = NULL;
        _cleanup_free_ uint64_t *usr_floor = NULL;
        _cleanup_(read_back_freep) ReadBack *usr_read_back = NULL;
        uint8_t header[PAYLOAD_HEADER_SIZE], signed_digest[32], payload_digest[32];
        char metadata_hex[SHA256_HEX_SIZE];
        const InstallProcedure *kernel_proc, *pcr_proc;
        PayloadResult result = { .signature_key = -1 };
        uint64_t manifest_size, metadata_size, blob_size, total_size, target_size = o->target_size;
        uint64_t next_op = 0, blob_offset = 0, n_ops, done_this_run = 0;
        bool is_signed;
        Reader rd = { .fd = o->input_fd, .stop_fd = -EBADF };
        uint32_t bs;
        struct stat st;
        int r;

        /* Declared in this order so that the workers are joined before the ring they use is freed. */
        _cleanup_(decode_ring_done) DecodeRing ring = {};
        _cleanup_(workers_freep) Workers *workers = NULL;
        _cleanup_(pipeline_stop) Pipeline pipeline = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER,
                                               .stop_fd = -EBADF };
        _cleanup_(checkpointer_done) Checkpointer ckpt = { .fd = -EBADF };

        static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;
        (void) pthread_once(&malloc_once, apply_malloc_setup);

        /* Header and manifest. */
        r = reader_read(&rd, header, sizeof header, "header", e);
        if (r < 0)
                return r;
        r = payload_header_parse(header, &manifest_size, e);
        if (r < 0)
                return r;
        manifest_data = malloc(manifest_size);
        if (!manifest_data)
                return payload_error_set(e, PAYLOAD_MANIFEST_PARSE_ERROR, ENOMEM, "out of memory for the manifest");
        r = reader_read(&rd, manifest_data, manifest_size, "manifest", e);
        if (r < 0)
                return r;
        r = payload_manifest_parse(manifest_data, manifest_size, &m, e);
        if (r < 0)
                return r;
        metadata_size = PAYLOAD_HEADER_SIZE + manifest_size;
        {
                _cleanup_(sha256_freep) Sha256 *mh = NULL;
                uint8_t d[32];
                if (sha256_new(&mh) < 0 || sha256_update(mh, header, sizeof header) < 0 ||
                    sha256_update(mh, manifest_data, manifest_size) < 0 || sha256_final(mh, d) < 0)
                        return payload_error_set(e, PAYLOAD_ERROR, EIO, "hashing the metadata failed");
                hex_encode(d, 32, metadata_hex);
        }
        bs = payload_manifest_block_size(m);
        n_ops = payload_manifest_n_operations(m);
        blob_size = payload_manifest_blob_size(m);
        is_signed = payload_manifest_is_signed(m);
        total_size = metadata_size + blob_size + (is_signed ? m->signatures_size : 0);
        kernel_proc = find_procedure(m, PROC_KERNEL);
        pcr_proc = find_procedure(m, PROC_PCR_POLICY);

        /* Everything that can be refused before the first byte is written, is. */
        if (!o->insecure_no_signature) {
                if (trusted_keys_count(o->keys) == 0)
                        return payload_fail(e, PAYLOAD_PUBKEY_VERIFICATION_ERROR,
                                            "no trusted payload key is installed; refusing to apply an unverifiable "
                                            "payload (--insecure-no-signature skips the check)");
                if (!is_signed)
                        return payload_fail(e, PAYLOAD_SIGNED_PAYLOAD_EXPECTED_ERROR,
                                            "payload carries no signature (no signatures_offset/signatures_size)");
        }
        if (o->expected_size != UINT64_MAX && o->expected_size != total_size)
                return payload_fail(e, PAYLOAD_SIZE_MISMATCH_ERROR,
                                    "payload manifest describes %" PRIu64 " bytes, expected %" PRIu64, total_size,
                                    o->expected_size);
        if (!info_complete(m->new_partition_info))
                return payload_fail(e, PAYLOAD_NEW_PARTITION_INFO_ERROR,
                                    "manifest has no complete new_partition_info (size and SHA-256)");
        for (size_t p = 0; p < m->n_procedures; p++) {
                const InstallProcedure *proc = m->procedures[p];
                int type = proc->has_type ? (int) proc->type : PROC_KERNEL;
                if ((type == PROC_KERNEL && proc != kernel_proc) || (type == PROC_PCR_POLICY && proc != pcr_proc))
                        return payload_fail(e, PAYLOAD_MANIFEST_PARSE_ERROR, "manifest has two %s procedures",
                                            payload_procedure_type_to_string(type));
        }
        if (kernel_proc && !info_complete(kernel_proc->new_info))
                return payload_fail(e, PAYLOAD_NEW_KERNEL_VERIFICATION_ERROR,
                                    "KERNEL procedure has no complete new_info (size and SHA-256)");
        if (kernel_proc && o->kernel_fd < 0)
                return payload_fail(e, PAYLOAD_KERNEL_DEVICE_OPEN_ERROR,
                                    "payload carries a kernel but no kernel target was given");
        if (pcr_proc && o->pcr_fd >= 0 && !info_complete(pcr_proc->new_info))
                return payload_fail(e, PAYLOAD_NEW_PCR_POLICY_VERIFICATION_ERROR,
                                    "PCR_POLICY procedure has no complete new_info (size and SHA-256)");
        r = check_rw(o->target_fd, PAYLOAD_INSTALL_DEVICE_OPEN_ERROR, "/usr target", e);
        if (r < 0)
                return r;
        if (o->kernel_fd >= 0) {
                r = check_rw(o->kernel_fd, PAYLOAD_KERNEL_DEVICE_OPEN_ERROR, "kernel target", e);
                if (r < 0)
                        return r;
        }
        if (o->pcr_fd >= 0) {
                r = check_rw(o->pcr_fd, PAYLOAD_NEW_PCR_POLICY_VERIFICATION_ERROR, "PCR policy target", e);
                if (r < 0)
                        return r;
        }
        if (fstat(o->target_fd, &st) < 0)
                return payload_error_set(e, PAYLOAD_INSTALL_DEVICE_OPEN_ERROR, errno, "cannot stat the target: %s",
                                         strerror(errno));
        if (S_ISBLK(st.st_mode) && target_size == UINT64_MAX) {
                uint64_t dev_size;
                if (ioctl(o->target_fd, BLKGETSIZE64, &dev_size) < 0)
                        return payload_error_set(e, PAYLOAD_INSTALL_DEVICE_OPEN_ERROR, errno,
                                                 "cannot get the target device size: %s", strerror(errno));
                if (o->target_offset > dev_size)
                        return payload_fail(e, PAYLOAD_INSTALL_DEVICE_OPEN_ERROR,
                                            "target offset lies beyond the device's %" PRIu64 " bytes", dev_size);
                target_size = dev_size - o->target_offset;
        } else if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
                return payload_fail(e, PAYLOAD_INSTALL_DEVICE_OPEN_ERROR,
                                    "target is neither a regular file nor a block device");
        if (m->new_partition_info->size > target_size)
                return payload_fail(e, PAYLOAD_NEW_PARTITION_INFO_ERROR,
                                    "the new partition is %" PRIu64 " bytes but the target holds only %" PRIu64,
                                    m->new_partition_info->size, target_size);

        /* Resume or start over. */
        if (o->checkpoint_fd >= 0) {
                _cleanup_(json_decrefp) json_t *cp = NULL;
                Resume res = {};
                r = payload_checkpoint_read(o->checkpoint_fd, &cp);
                if (r < 0)
                        log_warning_errno(r, "Ignoring unreadable checkpoint: %m");
                else if (r > 0) {
                        r = resume_from_checkpoint(cp, m, o->expected_sha256, metadata_size, metadata_hex, &res);
                        if (r == -ESTALE)
                                log_info("Checkpoint belongs to another payload, starting from the beginning.");
                        else if (r < 0)
                                log_warning_errno(r, "Ignoring inconsistent checkpoint: %m");
                        else {
                                hash = res.hash;
                                next_op = res.next_op;
                                blob_offset = res.blob_offset;
                                result.resumed_at_operation = next_op;
                                log_info("Resuming at operation %" PRIu64 " of %" PRIu64 " (blob offset %" PRIu64 ").",
                                         next_op, n_ops, blob_offset);
                        }
                }
        }
        if (hash) {
                if (o->resume_input == RESUME_INPUT_FULL) {
                        r = reader_skip(&rd, blob_offset, e);
                        if (r < 0)
                                return r;
                } else
                        rd.pos += blob_offset;
        } else {
                r = hash_state_new(&hash);
                if (r < 0)
                        return payload_error_set(e, PAYLOAD_ERROR, -r, "out of memory");
                hash_state_update(hash, header, sizeof header);
                hash_state_update(hash, manifest_data, manifest_size);
                if (o->kernel_fd >= 0 && ftruncate(o->kernel_fd, 0) < 0)
                        return payload_error_set(e, PAYLOAD_KERNEL_DEVICE_OPEN_ERROR, errno,
                                                 "cannot truncate the kernel target: %s", strerror(errno));
                if (o->pcr_fd >= 0 && ftruncate(o->pcr_fd, 0) < 0)
                        return payload_error_set(e, PAYLOAD_NEW_PCR_POLICY_VERIFICATION_ERROR, errno,
                                                 "cannot truncate the PCR policy target: %s", strerror(errno));
        }
        rd.hash = hash;
        manifest_data = mfree(manifest_data);

        PayloadTarget usr = { .fd = o->target_fd, .offset = o->target_offset, .size = target_size, .name = "/usr" };
        PayloadTarget kernel = { .fd = o->kernel_fd, .size = kernel_proc ? ALIGN_TO(kernel_proc->new_info->size, (uint64_t) bs) : 0, .name = "kernel" };
        PayloadTarget pcr = { .fd = o->pcr_fd, .size = pcr_proc && o->pcr_fd >= 0 ? ALIGN_TO(pcr_proc->new_info->size, (uint64_t) bs) : UINT64_MAX, .name = "PCR policy" };
        PayloadTarget discard = { .fd = -EBADF, .size = UINT64_MAX, .name = "discarded" };

        {
                unsigned n = o->threads > 0 ? o->threads : MIN(workers_cpus(), APPLY_THREADS_MAX);
                r = workers_new(n, &workers);
                if (r < 0)
                        return payload_error_set(e, PAYLOAD_ERROR, -r, "cannot start decoding threads: %s",
                                                 strerror(-r));
                if (workers_threads(workers) < n)
                        log_notice("Decoding on %u thread(s) instead of %u: the system refused more threads "
                                   "(TasksMax= or RLIMIT_NPROC).", workers_threads(workers), n);
                uint64_t max_len = 0, max_out = 0;
                for (uint64_t i = next_op; i < n_ops; i++) {
                        const InstallOperation *op = payload_manifest_operation(m, i, NULL);
                        max_len = MAX(max_len, op->has_data_length ? op->data_length : 0);
                        max_out = MAX(max_out, payload_op_output_max(op, bs));
                }
                r = decode_ring_new(&ring, workers_threads(workers), (size_t) max_len, (size_t) max_out);
                if (r < 0)
                        return payload_error_set(e, PAYLOAD_ERROR, -r,
                                                 "out of memory for the operations in flight (%" PRIu64
                                                 " bytes of data and %" PRIu64 " decoded bytes each)",
                                                 max_len, max_out);
        }
        report(o, rd.pos, total_size, next_op, n_ops);
        pipeline.submitted = pipeline.written = next_op;
        pipeline.rd = &rd;
        pipeline.m = m;
        pipeline.ring = &ring;
        pipeline.workers = workers;
        pipeline.n_ops = n_ops;
        pipeline.block_size = bs;
        pipeline.checkpoint = o->checkpoint_fd >= 0;
        pipeline.usr = &usr;
        pipeline.kernel = &kernel;
        pipeline.pcr = &pcr;
        pipeline.discard = &discard;
        if (next_op < n_ops) {
                pipeline.stop_fd = eventfd(0, EFD_CLOEXEC);
                if (pipeline.stop_fd < 0)
                        return payload_error_set(e, PAYLOAD_ERROR, errno, "cannot create an eventfd: %s",
                                                 strerror(errno));
                rd.stop_fd = pipeline.stop_fd;
                r = pthread_create(&pipeline.thread, NULL, pipeline_reader, &pipeline);
                /* At a thread limit the reader matters more than one more decoder: give one back. */
                while (r == EAGAIN && workers_threads(workers) > 1) {
                        unsigned k = workers_threads(workers) - 1;
                        workers = workers_free(workers);
                        r = workers_new(k, &workers);
                        if (r < 0)
                                return payload_error_set(e, PAYLOAD_ERROR, -r, "cannot start decoding threads: %s",
                                                         strerror(-r));
                        pipeline.workers = workers;
                        log_notice("Decoding on %u thread(s): the system refused a thread for the reader "
                                   "(TasksMax= or RLIMIT_NPROC).", workers_threads(workers));
                        r = pthread_create(&pipeline.thread, NULL, pipeline_reader, &pipeline);
                }
                if (r != 0)
                        return payload_error_set(e, PAYLOAD_ERROR, r, "cannot start the reader thread: %s",
                                                 strerror(r));
                pipeline.started = true;
        }
        /* The /usr target is read back from the disk behind the writes, as far as it is final. Its
         * thread comes last: without it the read-back still happens, at the end. */
        usr_floor = usr_write_floors(m, bs, next_op, n_ops);
        if (!usr_floor)
                return payload_error_set(e, PAYLOAD_ERROR, ENOMEM, "out of memory");
        r = read_back_new(o->target_fd, o->target_offset, m->new_partition_info->size, &usr_read_back);
        if (r < 0)
                return payload_error_set(e, PAYLOAD_ERROR, -r, "out of memory");
        read_back_final_upto(usr_read_back, usr_floor[0]);
        ckpt = (Checkpointer) {
                .fd = o->checkpoint_fd,
                .payload_sha256 = o->expected_sha256,
                .metadata_hex = metadata_hex,
                .metadata_size = metadata_size,
                .targets = { &usr, &kernel, &pcr },
                .last_usec = now_monotonic_usec(),
        };
        for (uint64_t i = next_op; i < n_ops; i++) {
                bool have;

                pthread_mutex_lock(&pipeline.lock);
                if (pipeline.submitted <= i && !pipeline.reader_done && ckpt.unsaved) {
                        /* The input is behind: if it stays so for a moment, save what is written. */
                        struct timespec until;
                        clock_gettime(CLOCK_REALTIME, &until);
                        until.tv_nsec += CHECKPOINT_STALL_USEC * 1000;
                        until.tv_sec += until.tv_nsec / 1000000000;
                        until.tv_nsec %= 1000000000;
                        while (pipeline.submitted <= i && !pipeline.reader_done &&
                               pthread_cond_timedwait(&pipeline.changed, &pipeline.lock, &until) == 0)
                                ;
                        if (pipeline.submitted <= i && !pipeline.reader_done) {
                                pthread_mutex_unlock(&pipeline.lock);
                                r = checkpointer_save(&ckpt, e);
                                if (r < 0)
                                        return r;
                                pthread_mutex_lock(&pipeline.lock);
                        }
                }
                while (pipeline.submitted <= i && !pipeline.reader_done)
                        pthread_cond_wait(&pipeline.changed, &pipeline.lock);
                have = pipeline.submitted > i;
                pthread_mutex_unlock(&pipeline.lock);
                if (!have) {
                        /* Everything read before the input failed is written (and saved); now report the
                         * failure. */
                        payload_error_take(e, &pipeline.read_error);
                        return checkpointer_save_before(&ckpt, pipeline.read_r < 0 ? pipeline.read_r
                                                   : payload_error_set(e, PAYLOAD_ERROR, EIO, "payload reader stopped"), e);
                }

                /* Write the oldest operation once its hash is checked and its data decoded. */
                DecodeJob *j = &ring.jobs[i % ring.n];
                workers_wait(workers, &j->item);
                if (j->r < 0) {
                        payload_error_take(e, &j->error);
                        return checkpointer_save_before(&ckpt, j->r, e);
                }
                r = payload_op_write(j->op, bs, j->out.data, j->out.size, j->t, j->what, e);
                if (r < 0)
                        return r;
                blob_offset += j->len;
                done_this_run++;
                read_back_final_upto(usr_read_back, usr_floor[i + 1 - next_op]);

                r = checkpointer_written(&ckpt, i + 1, blob_offset, j->hash, e);
                if (r < 0)
                        return r;
                pthread_mutex_lock(&pipeline.lock);
                pipeline.written = i + 1;
                pthread_cond_broadcast(&pipeline.changed);
                pthread_mutex_unlock(&pipeline.lock);
                report(o, metadata_size + blob_offset, total_size, i + 1, n_ops);
                if (o->cancel && __atomic_load_n(o->cancel, __ATOMIC_RELAXED))
                        return checkpointer_save_before(&ckpt, payload_error_set(e, PAYLOAD_DOWNLOAD_INCOMPLETE, ECANCELED,
                                                 "cancelled after operation %" PRIu64, i), e);
                if (o->stop_after_operations > 0 && done_this_run >= o->stop_after_operations && i + 1 < n_ops)
                        return checkpointer_save_before(&ckpt, payload_error_set(e, PAYLOAD_DOWNLOAD_INCOMPLETE, EINTR,
                                                 "stopped after %" PRIu64 " operations as asked (test hook)",
                                                 done_this_run), e);
        }
        /* The reader has read every operation's data; it may go. */
        pipeline_stop(&pipeline);
        workers = workers_free(workers);
        decode_ring_done(&ring);

        /* Signature blob, then nothing. */
        hash_state_peek(hash, signed_digest);
        if (is_signed) {
                sigblob = malloc(m->signatures_size);
                if (!sigblob)
                        return payload_error_set(e, PAYLOAD_ERROR, ENOMEM, "out of memory");
                r = reader_read(&rd, sigblob, m->signatures_size, "signature blob", e);
                if (r < 0)
                        return r;
        }
        r = reader_trailing(&rd, e);
        if (r < 0)
                return r;
        if (r > 0)
                return payload_fail(e, PAYLOAD_SIZE_MISMATCH_ERROR,
                                    "payload continues past its signature blob (it should end at byte %" PRIu64 ")",
                                    rd.pos);
        hash_state_peek(hash, payload_digest);
        if (o->expected_size != UINT64_MAX && rd.pos != o->expected_size)
                return payload_fail(e, PAYLOAD_SIZE_MISMATCH_ERROR, "payload is %" PRIu64 " bytes, expected %" PRIu64,
                                    rd.pos, o->expected_size);
        if (o->expected_sha256) {
                char b64[SHA256_BASE64_SIZE];
                base64_encode(payload_digest, 32, b64);
                if (!streq(b64, o->expected_sha256))
                        return payload_fail(e, PAYLOAD_HASH_MISMATCH_ERROR, "payload SHA-256 is %s, expected %s", b64,
                                            o->expected_sha256);
        }
        if (o->insecure_no_signature)
                log_warning("Payload signature NOT checked (--insecure-no-signature).");
        else {
                size_t sig_size = 0;
                r = payload_signatures_find(sigblob, m->signatures_size, PAYLOAD_SIGNATURE_VERSION, &sig, &sig_size, e);
                if (r < 0)
                        return r;
                r = trusted_keys_verify(o->keys, signed_digest, sig, sig_size);
                if (r < 0)
                        return payload_fail(e, PAYLOAD_PUBKEY_VERIFICATION_ERROR,
                                            "payload signature does not verify with any of the %zu trusted keys",
                                            trusted_keys_count(o->keys));
                result.signature_key = r;
                log_info("Payload signature verified with %s.", trusted_keys_name(o->keys, (size_t) r));
        }

        /* What is on the targets now must be what the manifest promised. */
        if (kernel_proc) {
                if (ftruncate(o->kernel_fd, (off_t) kernel_proc->new_info->size) < 0)
                        return payload_error_set(e, PAYLOAD_NEW_KERNEL_VERIFICATION_ERROR, errno,
                                                 "cannot size the kernel target: %s", strerror(errno));
                r = check_info(o->kernel_fd, 0, kernel_proc->new_info, PAYLOAD_NEW_KERNEL_VERIFICATION_ERROR, "kernel",
                               true, e);
                if (r < 0)
                        return r;
                result.has_kernel = true;
                result.kernel_size = kernel_proc->new_info->size;
        }
        if (pcr_proc && o->pcr_fd >= 0) {
                if (ftruncate(o->pcr_fd, (off_t) pcr_proc->new_info->size) < 0)
                        return payload_error_set(e, PAYLOAD_NEW_PCR_POLICY_VERIFICATION_ERROR, errno,
                                                 "cannot size the PCR policy target: %s", strerror(errno));
                r = check_info(o->pcr_fd, 0, pcr_proc->new_info, PAYLOAD_NEW_PCR_POLICY_VERIFICATION_ERROR,
                               "PCR policy", true, e);
                if (r < 0)
                        return r;
        }
        {
                uint8_t d[32];
                /* The one flush at the end; the read-back then reads what it has not read yet. */
                if (fdatasync(o->target_fd) < 0 && errno != EINVAL)
                        return payload_error_set(e, PAYLOAD_NEW_ROOTFS_VERIFICATION_ERROR, errno,
                                                 "syncing the /usr target failed: %s", strerror(errno));
                r = read_back_finish(usr_read_back, d);
                if (r < 0)
                        return read_back_failed(r, m->new_partition_info, PAYLOAD_NEW_ROOTFS_VERIFICATION_ERROR,
                                                "/usr target", e);
                r = check_digest(d, m->new_partition_info, PAYLOAD_NEW_ROOTFS_VERIFICATION_ERROR, "/usr target", e);
                if (r < 0)
                        return r;
        }
        if (o->checkpoint_fd >= 0)
                (void) checkpoint_clear(o->checkpoint_fd);

        result.payload_size = rd.pos;
        memcpy(result.payload_sha256, payload_digest, 32);
        result.new_partition_size = m->new_partition_info->size;
        memcpy(result.new_partition_sha256, m->new_partition_info->hash.data, 32);
        result.operations = n_ops;
        if (ret)
                *ret = result;
        return 0;
}
