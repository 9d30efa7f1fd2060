/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#include "fileio.h"
#include "hash.h"
#include "log.h"
#include "verity-check-fs.h"
#include "verity-check-tree.h"

static const char signature[8] = { 'v', 'e', 'r', 'i', 't', 'y', 0, 0 };

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
static uint64_t le64(const uint8_t *p) {
        return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32;
}
static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
        for (unsigned i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static bool is_pow2(uint64_t v) {
        return v != 0 && (v & (v - 1)) == 0;
}

static const char *const area_table[_VERITY_AREA_MAX] = {
        [VERITY_AREA_DATA] = "data",
        [VERITY_AREA_HASH] = "hash",
        [VERITY_AREA_SUPERBLOCK] = "superblock",
};

const char *verity_area_to_string(VerityArea a) {
        if (a < 0 || a >= _VERITY_AREA_MAX)
                return NULL;
        return area_table[a];
}

_printf_(3, 4) static int reasonf(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        if (!buf || size == 0)
                return 0;
        va_start(ap, fmt);
        (void) vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        return 0;
}

int verity_digest_size(const char *algorithm) {
        /* The kernel's names; cryptsetup accepts what the kernel crypto API has, Flatcar uses sha256. */
        static const char *const allowed[] = { "sha1", "sha256", "sha512" };
        const EVP_MD *md;
        bool ok = false;

        for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                ok = ok || streq(algorithm, allowed[i]);
        if (!ok)
                return -EOPNOTSUPP;
        md = EVP_get_digestbyname(algorithm);
        if (!md)
                return -EOPNOTSUPP;
        return EVP_MD_get_size(md);
}

int verity_superblock_parse(const uint8_t *buf, size_t size, VeritySuperblock *ret, char *reason,
                            size_t reason_size) {
        VeritySuperblock sb = {};
        int digest;

        if (size < VERITY_SUPERBLOCK_SIZE)
                return reasonf(reason, reason_size, "superblock truncated (%zu bytes)", size), -EBADMSG;
        if (memcmp(buf, signature, sizeof signature) != 0)
                return reasonf(reason, reason_size, "no \"verity\" signature"), -EBADMSG;

        sb.version = le32(buf + 8);
        sb.hash_type = le32(buf + 12);
        memcpy(sb.uuid, buf + 16, 16);
        memcpy(sb.algorithm, buf + 32, 32);
        sb.data_block_size = le32(buf + 64);
        sb.hash_block_size = le32(buf + 68);
        sb.data_blocks = le64(buf + 72);
        sb.salt_size = le16(buf + 80);

        if (sb.version != 1)
                return reasonf(reason, reason_size, "superblock version %" PRIu32 " (only 1 exists)", sb.version),
                       -EOPNOTSUPP;
        if (sb.hash_type == 0)
                return reasonf(reason, reason_size, "hash type 0 (Chrome OS format) is not supported"), -EOPNOTSUPP;
        if (sb.hash_type != 1)
                return reasonf(reason, reason_size, "unknown hash type %" PRIu32, sb.hash_type), -EBADMSG;
        if (memchr(buf + 32, 0, 32) == NULL || sb.algorithm[0] == 0)
                return reasonf(reason, reason_size, "hash algorithm name is not a NUL-terminated string"), -EBADMSG;
        digest = verity_digest_size(sb.algorithm);
        if (digest < 0)
                return reasonf(reason, reason_size, "unsupported hash algorithm \"%.32s\"", sb.algorithm),
                       -EOPNOTSUPP;
        if (!is_pow2(sb.data_block_size) || sb.data_block_size < VERITY_BLOCK_SIZE_MIN ||
            sb.data_block_size > VERITY_BLOCK_SIZE_MAX)
                return reasonf(reason, reason_size, "invalid data block size %" PRIu32, sb.data_block_size), -EBADMSG;
        if (!is_pow2(sb.hash_block_size) || sb.hash_block_size < VERITY_BLOCK_SIZE_MIN ||
            sb.hash_block_size > VERITY_BLOCK_SIZE_MAX)
                return reasonf(reason, reason_size, "invalid hash block size %" PRIu32, sb.hash_block_size), -EBADMSG;
        if (sb.data_blocks == 0)
                return reasonf(reason, reason_size, "zero data blocks"), -EBADMSG;
        if (sb.data_blocks > UINT64_MAX / sb.data_block_size)
                return reasonf(reason, reason_size, "data block count %" PRIu64 " overflows", sb.data_blocks),
                       -EBADMSG;
        if (sb.salt_size > VERITY_SALT_MAX)
                return reasonf(reason, reason_size, "salt size %u exceeds the maximum of %u bytes",
                               (unsigned) sb.salt_size, VERITY_SALT_MAX),
                       -EBADMSG;
        memcpy(sb.salt, buf + 88, sb.salt_size);

        if (ret)
                *ret = sb;
        return 0;
}

void verity_superblock_build(const VeritySuperblock *sb, uint8_t ret[VERITY_SUPERBLOCK_SIZE]) {
        memset(ret, 0, VERITY_SUPERBLOCK_SIZE);
        memcpy(ret, signature, sizeof signature);
        put32(ret + 8, sb->version);
        put32(ret + 12, sb->hash_type);
        memcpy(ret + 16, sb->uuid, 16);
        memcpy(ret + 32, sb->algorithm, strnlen(sb->algorithm, 31));
        put32(ret + 64, sb->data_block_size);
        put32(ret + 68, sb->hash_block_size);
        put64(ret + 72, sb->data_blocks);
        put16(ret + 80, sb->salt_size);
        memcpy(ret + 88, sb->salt, MIN((size_t) sb->salt_size, (size_t) VERITY_SALT_MAX));
}

int verity_geometry_compute(uint64_t data_blocks, uint32_t data_block_size, uint32_t hash_block_size,
                            uint32_t digest_size, uint64_t hash_offset, VerityGeometry *ret) {
        VerityGeometry g = {
                .data_blocks = data_blocks,
                .data_block_size = data_block_size,
                .hash_block_size = hash_block_size,
                .digest_size = digest_size,
                .hash_offset = hash_offset,
        };
        unsigned bits = 0;
        uint64_t pos = 0;

        if (data_blocks == 0 || !is_pow2(data_block_size) || !is_pow2(hash_block_size) || digest_size == 0 ||
            digest_size > VERITY_DIGEST_MAX)
                return -EINVAL;
        g.digest_size_full = 1;
        while (g.digest_size_full < digest_size)
                g.digest_size_full <<= 1;
        if (hash_block_size / g.digest_size_full < 2)
                return -EINVAL;
        g.hashes_per_block = hash_block_size / g.digest_size_full;
        while ((1u << bits) < g.hashes_per_block)
                bits++;

        /* As many levels as it takes for one block to cover every data block. */
        while (bits * g.levels < 64 && ((data_blocks - 1) >> (bits * g.levels)) != 0)
                g.levels++;
        if (g.levels > VERITY_LEVELS_MAX)
                return -EOVERFLOW;

        for (int i = (int) g.levels - 1; i >= 0; i--) {
                unsigned shift = bits * (unsigned) (i + 1);
                uint64_t n = shift >= 64 ? 1 : (data_blocks >> shift) + ((data_blocks & ((UINT64_C(1) << shift) - 1)) != 0);
                g.level_start[i] = pos;
                g.level_blocks[i] = n;
                pos += n;
        }
        g.tree_blocks = pos;

        if (hash_offset > UINT64_MAX - VERITY_SUPERBLOCK_SIZE - hash_block_size)
                return -EOVERFLOW;
        g.tree_offset = (hash_offset + VERITY_SUPERBLOCK_SIZE + hash_block_size - 1) / hash_block_size * hash_block_size;
        if (g.tree_blocks > VERITY_TREE_MAX / hash_block_size)
                return -EFBIG;
        if (g.tree_offset > UINT64_MAX - g.tree_blocks * hash_block_size)
                return -EOVERFLOW;
        g.end_offset = g.tree_offset + g.tree_blocks * hash_block_size;

        *ret = g;
        return 0;
}

uint64_t verity_geometry_hash_block(const VerityGeometry *g, unsigned level, uint64_t index) {
        return g->tree_offset / g->hash_block_size + g->level_start[level] + index;
}

uint64_t verity_max_data_blocks(uint64_t slot_size, uint32_t block_size, uint32_t digest_size) {
        uint64_t lo = 0, hi = slot_size / block_size;

        /* Binary search for the largest n whose data + superblock block + tree fits. */
        while (lo < hi) {
                uint64_t mid = lo + (hi - lo + 1) / 2;
                VerityGeometry g;
                if (verity_geometry_compute(mid, block_size, block_size, digest_size, mid * block_size, &g) >= 0 &&
                    g.end_offset <= slot_size)
                        lo = mid;
                else
                        hi = mid - 1;
        }
        return lo;
}

unsigned verity_default_threads(void) {
        cpu_set_t set;
        long n = 0;

        if (sched_getaffinity(0, sizeof set, &set) == 0)
                n = CPU_COUNT(&set);
        if (n <= 0)
                n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n <= 0)
                n = 1;
        /* Two per CPU: a thread waiting for its next read leaves the CPU to one that hashes. */
        return (unsigned) MIN(2 * n, 64L);
}

static int slot_fill(int fd, uint64_t offset, uint64_t size, VeritySlot *ret) {
        struct stat st;
        uint64_t total;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISBLK(st.st_mode)) {
                if (ioctl(fd, BLKGETSIZE64, &total) < 0)
                        return -errno;
        } else if (S_ISREG(st.st_mode))
                total = (uint64_t) st.st_size;
        else
                return -EBADFD;

        if (offset > total || (size != UINT64_MAX && size > total - offset))
                return -ERANGE;
        *ret = (VeritySlot) {
                .fd = fd,
                .offset = offset,
                .size = size == UINT64_MAX ? total - offset : size,
                .growable = S_ISREG(st.st_mode) && size == UINT64_MAX,
        };
        return 0;
}

int verity_slot_from_fd(int fd, uint64_t offset, uint64_t size, VeritySlot *ret) {
        return slot_fill(fd, offset, size, ret);
}

int verity_slot_open(const char *path, bool writable, uint64_t offset, uint64_t size, VeritySlot *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int flags = O_CLOEXEC | O_NOCTTY | (writable ? O_RDWR : O_RDONLY);
        int r;

        if (stat(path, &st) < 0)
                return -errno;
        if (writable && S_ISBLK(st.st_mode))
                flags |= O_EXCL; /* refused by the kernel while the device is mounted or mapped */
        fd = open(path, flags);
        if (fd < 0)
                return -errno;
        r = slot_fill(fd, offset, size, ret);
        if (r < 0)
                return r;
        ret->fd = TAKE_FD(fd);
        return 0;
}

static ssize_t loop_pread(int fd, void *buf, size_t size, off_t pos) {
        size_t done = 0;
        while (done < size) {
                ssize_t n = pread(fd, (uint8_t *) buf + done, size - done, pos + (off_t) done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

static ssize_t loop_pwrite(int fd, const void *buf, size_t size, off_t pos) {
        size_t done = 0;
        while (done < size) {
                ssize_t n = pwrite(fd, (const uint8_t *) buf + done, size - done, pos + (off_t) done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

static int read_exact(const VeritySlot *s, void *buf, size_t size, uint64_t pos) {
        ssize_t n;

        if (pos > s->size || size > s->size - pos)
                return -ESPIPE;
        n = loop_pread(s->fd, buf, size, (off_t) (s->offset + pos));
        if (n < 0)
                return (int) n;
        if ((size_t) n != size)
                return -ENODATA;
        return 0;
}

/* ---- hashing ---- */

typedef struct Hasher {
        EVP_MD *md;
        uint8_t salt[VERITY_SALT_MAX];
        size_t salt_size;
        uint32_t digest_size;
} Hasher;

static void hasher_done(Hasher *h) {
        EVP_MD_free(h->md);
        h->md = NULL;
}

static int hasher_init(Hasher *h, const char *algorithm, const uint8_t *salt, size_t salt_size) {
        *h = (Hasher) {};
        if (salt_size > VERITY_SALT_MAX)
                return -EINVAL;
        /* Fetched once: EVP_sha256() in every EVP_DigestInit would look the implementation up each time. */
        h->md = EVP_MD_fetch(NULL, algorithm, NULL);
        if (!h->md)
                return -EOPNOTSUPP;
        h->digest_size = (uint32_t) EVP_MD_get_size(h->md);
        memcpy(h->salt, salt, salt_size);
        h->salt_size = salt_size;
        return 0;
}

static int hash_block(const Hasher *h, EVP_MD_CTX *ctx, const void *block, size_t size, uint8_t *ret) {
        if (EVP_DigestInit_ex2(ctx, h->md, NULL) != 1 || EVP_DigestUpdate(ctx, h->salt, h->salt_size) != 1 ||
            EVP_DigestUpdate(ctx, block, size) != 1 || EVP_DigestFinal_ex(ctx, ret, NULL) != 1)
                return -EIO;
        return 0;
}

static int hash_one(const Hasher *h, const void *block, size_t size, uint8_t *ret) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int r;
        if (!ctx)
                return -ENOMEM;
        r = hash_block(h, ctx, block, size, ret);
        EVP_MD_CTX_free(ctx);
        return r;
}

/* Where the digest of block i of a level lives in the level above it. */
static uint8_t *digest_slot(const VerityGeometry *g, uint8_t *parent, uint64_t i) {
        return parent + (i / g->hashes_per_block) * g->hash_block_size + (i % g->hashes_per_block) * g->digest_size_full;
}

/* One pass over the blocks of a level (the data, or a hash level held in memory), split over threads in
 * chunks handed out in increasing order, so the first bad block found overall is the lowest one. */
typedef struct Pass {
        const Hasher *hasher;
        const VerityGeometry *g;
        const VeritySlot *slot; /* source when mem is NULL */
        uint64_t src_pos;       /* byte position of block 0 in the slot */
        const uint8_t *mem;     /* source in memory */
        uint32_t block_size;
        uint64_t n_blocks;
        uint8_t *parent; /* digests: written when formatting, compared when verifying */
        bool verify;
        uint64_t chunk_blocks;
        unsigned threads;
        atomic_bool *cancel;

        atomic_uint_fast64_t next_chunk;
        atomic_uint_fast64_t done;
        atomic_uint_fast64_t first_bad; /* UINT64_MAX: none */
        atomic_bool stop;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned finished;
        int error;            /* first hard error, under lock */
        uint64_t error_block;
} Pass;

static void pass_fail(Pass *p, int error, uint64_t block) {
        pthread_mutex_lock(&p->lock);
        if (p->error == 0 || block < p->error_block) {
                p->error = error;
                p->error_block = block;
        }
        pthread_mutex_unlock(&p->lock);
        atomic_store(&p->stop, true);
}

static void pass_mark_bad(Pass *p, uint64_t block) {
        uint64_t cur = atomic_load(&p->first_bad);
        while (block < cur && !atomic_compare_exchange_weak(&p->first_bad, &cur, block))
                ;
}

static void *pass_worker(void *userdata) {
        Pass *p = userdata;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t *buf = NULL;
        uint8_t digest[VERITY_DIGEST_MAX];

        if (!ctx)
                pass_fail(p, -ENOMEM, 0);
        if (ctx && !p->mem) {
                buf = malloc(p->chunk_blocks * p->block_size);
                if (!buf)
                        pass_fail(p, -ENOMEM, 0);
        }

        while (!atomic_load(&p->stop) && !(p->cancel && atomic_load(p->cancel))) {
                uint64_t chunk = atomic_fetch_add(&p->next_chunk, 1);
                uint64_t first = chunk * p->chunk_blocks, n;
                const uint8_t *src;

                if (first >= p->n_blocks || first > atomic_load(&p->first_bad))
                        break;
                n = MIN(p->chunk_blocks, p->n_blocks - first);
                if (p->mem)
                        src = p->mem + first * p->block_size;
                else {
                        /* Ask for the chunk this thread will probably take next while it hashes this one. */
                        uint64_t ahead = first + (uint64_t) p->threads * p->chunk_blocks;
                        if (ahead < p->n_blocks)
                                (void) posix_fadvise(p->slot->fd,
                                                     (off_t) (p->slot->offset + p->src_pos + ahead * p->block_size),
                                                     (off_t) (MIN(p->chunk_blocks, p->n_blocks - ahead) * p->block_size),
                                                     POSIX_FADV_WILLNEED);
                        int r = read_exact(p->slot, buf, n * p->block_size, p->src_pos + first * p->block_size);
                        if (r < 0) {
                                pass_fail(p, r, first);
                                break;
                        }
                        src = buf;
                }

                for (uint64_t i = 0; i < n; i++) {
                        uint64_t b = first + i;
                        uint8_t *slot_digest = digest_slot(p->g, p->parent, b);
                        if (hash_block(p->hasher, ctx, src + i * p->block_size, p->block_size, digest) < 0) {
                                pass_fail(p, -EIO, b);
                                break;
                        }
                        if (!p->verify)
                                memcpy(slot_digest, digest, p->hasher->digest_size);
                        else if (memcmp(slot_digest, digest, p->hasher->digest_size) != 0) {
                                pass_mark_bad(p, b);
                                break;
                        }
                }
                atomic_fetch_add(&p->done, n);
        }

        free(buf);
        EVP_MD_CTX_free(ctx);
        pthread_mutex_lock(&p->lock);
        p->finished++;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

typedef struct ProgressState {
        VerityProgress cb;
        void *userdata;
        uint64_t base;  /* blocks done by earlier passes */
        uint64_t total; /* blocks of every pass */
} ProgressState;

/* Runs the pass; returns 0, or the first hard error (with *ret_error_block), or the callback's error.
 * Bad blocks are reported through p->first_bad. */
static int pass_run(Pass *p, unsigned threads, ProgressState *progress, uint64_t *ret_error_block) {
        pthread_t tids[256];
        unsigned started = 0;
        int r = 0;

        atomic_init(&p->next_chunk, 0);
        atomic_init(&p->done, 0);
        atomic_init(&p->first_bad, UINT64_MAX);
        atomic_init(&p->stop, false);
        p->finished = 0;
        p->error = 0;
        p->error_block = 0;
        if (p->chunk_blocks == 0)
                p->chunk_blocks = MAX((uint64_t) 1, (UINT64_C(1) << 20) / p->block_size);
        threads = MAX(1u, MIN(threads, (unsigned) ELEMENTSOF(tids)));
        if ((uint64_t) threads > DIV_ROUND_UP(p->n_blocks, p->chunk_blocks))
                threads = (unsigned) MAX((uint64_t) 1, DIV_ROUND_UP(p->n_blocks, p->chunk_blocks));
        p->threads = threads;
        if (!p->mem)
                (void) posix_fadvise(p->slot->fd, (off_t) (p->slot->offset + p->src_pos),
                                     (off_t) (p->n_blocks * p->block_size), POSIX_FADV_SEQUENTIAL);
        if (pthread_mutex_init(&p->lock, NULL) != 0)
                return -ENOMEM;
        if (pthread_cond_init(&p->cond, NULL) != 0) {
                pthread_mutex_destroy(&p->lock);
                return -ENOMEM;
        }

        for (; started < threads; started++) {
                int e = pthread_create(&tids[started], NULL, pass_worker, p);
                if (e != 0) {
                        if (started == 0)
                                r = -e;
                        break;
                }
        }

        pthread_mutex_lock(&p->lock);
        while (p->finished < started) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 250 * 1000 * 1000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                (void) pthread_cond_timedwait(&p->cond, &p->lock, &ts);
                if (p->finished < started && progress && progress->cb) {
                        uint64_t done = atomic_load(&p->done);
                        pthread_mutex_unlock(&p->lock);
                        int k = progress->cb(progress->base + done, progress->total, progress->userdata);
                        if (k < 0 && r == 0) {
                                r = k;
                                atomic_store(&p->stop, true);
                        }
                        pthread_mutex_lock(&p->lock);
                }
        }
        pthread_mutex_unlock(&p->lock);

        for (unsigned i = 0; i < started; i++)
                pthread_join(tids[i], NULL);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);

        if (r == 0 && p->cancel && atomic_load(p->cancel))
                r = -ECANCELED;
        if (r == 0 && p->error < 0) {
                r = p->error;
                if (ret_error_block)
                        *ret_error_block = p->error_block;
        }
        if (progress) {
                progress->base += p->n_blocks;
                if (r == 0 && progress->cb) {
                        int k = progress->cb(progress->base, progress->total, progress->userdata);
                        if (k < 0)
                                r = k;
                }
        }
        return r;
}

/* ---- verify ---- */

_printf_(2, 3) static int fail(VerityFailure *f, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(f->message, sizeof f->message, fmt, ap);
        va_end(ap);
        return 0;
}

static int load_superblock(const VeritySlot *slot, uint64_t hash_offset, VeritySuperblock *ret, VerityFailure *f) {
        uint8_t buf[VERITY_SUPERBLOCK_SIZE];
        char reason[256];
        int r;

        if (hash_offset > slot->size || slot->size - hash_offset < VERITY_SUPERBLOCK_SIZE) {
                f->kind = VERITY_FAILURE_BAD_SUPERBLOCK;
                return fail(f, "hash offset %" PRIu64 " is beyond the end of the device (%" PRIu64 " bytes)",
                            hash_offset, slot->size),
                       -ERANGE;
        }
        r = read_exact(slot, buf, sizeof buf, hash_offset);
        if (r < 0) {
                f->kind = VERITY_FAILURE_IO;
                return fail(f, "failed to read the superblock at offset %" PRIu64 ": %s", hash_offset, strerror(-r)), r;
        }
        r = verity_superblock_parse(buf, sizeof buf, ret, reason, sizeof reason);
        if (r < 0) {
                f->kind = VERITY_FAILURE_BAD_SUPERBLOCK;
                f->area = VERITY_AREA_SUPERBLOCK;
                return fail(f, "no valid verity superblock at offset %" PRIu64 ": %s", hash_offset, reason), r;
        }
        return 0;
}

static void result_fill(VerityVerifyResult *res, const VeritySuperblock *sb, const VerityGeometry *g,
                        const uint8_t *root, size_t root_size) {
        char u[33];
        hex_encode(root, root_size, res->root_hash);
        res->data_blocks = g->data_blocks;
        res->data_block_size = g->data_block_size;
        res->hash_offset = g->hash_offset;
        res->end_offset = g->end_offset;
        snprintf(res->algorithm, sizeof res->algorithm, "%s", sb->algorithm);
        hex_encode(sb->salt, sb->salt_size, res->salt);
        hex_encode(sb->uuid, 16, u);
        snprintf(res->uuid, sizeof res->uuid, "%.8s-%.4s-%.4s-%.4s-%.12s", u, u + 8, u + 12, u + 16, u + 20);
}

static int check_layout(const VeritySlot *slot, const VeritySuperblock *sb, uint64_t hash_offset, VerityGeometry *ret,
                        VerityFailure *f) {
        int digest = verity_digest_size(sb->algorithm), r;

        f->kind = VERITY_FAILURE_BAD_SUPERBLOCK;
        if (digest < 0)
                return fail(f, "unsupported hash algorithm %s", sb->algorithm), -EOPNOTSUPP;
        r = verity_geometry_compute(sb->data_blocks, sb->data_block_size, sb->hash_block_size, (uint32_t) digest,
                                    hash_offset, ret);
        if (r < 0)
                return fail(f, "impossible hash tree for %" PRIu64 " data blocks of %" PRIu32 " bytes: %s",
                            sb->data_blocks, sb->data_block_size, strerror(-r)),
                       r;
        if (sb->data_blocks * sb->data_block_size > hash_offset)
                return fail(f, "data area (%" PRIu64 " blocks, %" PRIu64 " bytes) overlaps the hash area at offset %" PRIu64,
                            sb->data_blocks, sb->data_blocks * sb->data_block_size, hash_offset),
                       -EBADMSG;
        if (ret->end_offset > slot->size)
                return fail(f, "hash tree shorter than the data: %" PRIu64 " data blocks need a tree up to byte %" PRIu64
                            " but the device ends at %" PRIu64,
                            sb->data_blocks, ret->end_offset, slot->size),
                       -EBADMSG;
        f->kind = VERITY_FAILURE_NONE;
        return 0;
}

static int find_superblock(const VeritySlot *slot, const VerityVerifyOptions *opts, uint64_t *ret_offset,
                           VeritySuperblock *ret_sb, char *ret_source, size_t source_size, VerityFailure *f) {
        uint8_t head[FS_PROBE_SIZE] = {};
        uint64_t fs_size, derived;
        FsType type;
        int r;

        if (opts->hash_offset != UINT64_MAX) {
                snprintf(ret_source, source_size, "explicit");
                *ret_offset = opts->hash_offset;
                if (opts->hash_offset % 512 != 0) {
                        f->kind = VERITY_FAILURE_BAD_SUPERBLOCK;
                        return fail(f, "hash offset %" PRIu64 " is not a multiple of 512", opts->hash_offset), -EINVAL;
                }
                return load_superblock(slot, opts->hash_offset, ret_sb, f);
        }

        r = read_exact(slot, head, MIN((uint64_t) sizeof head, slot->size), 0);
        if (r < 0) {
                f->kind = VERITY_FAILURE_IO;
                return fail(f, "failed to read the start of the slot: %s", strerror(-r)), r;
        }
        r = fs_probe_size(head, MIN((uint64_t) sizeof head, slot->size), &type, &fs_size);
        if (r >= 0) {
                derived = ALIGN_TO(fs_size, (uint64_t) 4096);
                snprintf(ret_source, source_size, "%s", fs_type_to_string(type));
                *ret_offset = derived;
                r = load_superblock(slot, derived, ret_sb, f);
                if (r >= 0 || derived == VERITY_FLATCAR_HASH_OFFSET)
                        return r;
                /* The filesystem may be smaller than its partition's data area; Flatcar's fixed offset next. */
                VerityFailure f2 = {};
                if (load_superblock(slot, VERITY_FLATCAR_HASH_OFFSET, ret_sb, &f2) >= 0) {
                        *f = (VerityFailure) {};
                        *ret_offset = VERITY_FLATCAR_HASH_OFFSET;
                        snprintf(ret_source, source_size, "flatcar-default");
                        return 0;
                }
                return fail(f, "no verity superblock at the end of the %s filesystem (offset %" PRIu64
                            ") nor at Flatcar's hash offset %" PRIu64,
                            fs_type_to_string(type), derived, VERITY_FLATCAR_HASH_OFFSET),
                       r;
        }
        snprintf(ret_source, source_size, "flatcar-default");
        *ret_offset = VERITY_FLATCAR_HASH_OFFSET;
        return load_superblock(slot, VERITY_FLATCAR_HASH_OFFSET, ret_sb, f);
}

/* The root hash did not match. Tell a wrong expected hash from a damaged top block or salt by looking
 * at whether the levels below still agree with the top block and with each other. */
static int classify_root_mismatch(const VeritySlot *slot, const Hasher *h, const VerityGeometry *g, uint8_t *tree,
                                  VerityFailure *f) {
        const unsigned top = g->levels - 1;
        uint8_t *top_block = tree + g->level_start[top] * g->hash_block_size;
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t d[VERITY_DIGEST_MAX];
        uint64_t n_children, bad = 0;
        int r;

        buf = malloc(MAX(g->data_block_size, g->hash_block_size));
        if (!buf)
                return -ENOMEM;

        n_children = top == 0 ? g->data_blocks : g->level_blocks[top - 1];
        n_children = MIN(n_children, (uint64_t) g->hashes_per_block);
        for (uint64_t i = 0; i < n_children; i++) {
                const uint8_t *child;
                if (top == 0) {
                        r = read_exact(slot, buf, g->data_block_size, i * g->data_block_size);
                        if (r < 0)
                                return r;
                        child = buf;
                } else
                        child = tree + (g->level_start[top - 1] + i) * g->hash_block_size;
                r = hash_one(h, child, top == 0 ? g->data_block_size : g->hash_block_size, d);
                if (r < 0)
                        return r;
                if (memcmp(d, digest_slot(g, top_block, i), g->digest_size) != 0)
                        bad++;
        }

        /* The top block's unused space is zeros; only the root hash covers it. */
        for (uint64_t i = 0; i < g->hashes_per_block && bad == 0; i++) {
                const uint8_t *s = digest_slot(g, top_block, i);
                size_t from = i < n_children ? g->digest_size : 0;
                for (size_t k = from; k < g->digest_size_full; k++)
                        if (s[k] != 0) {
                                bad = 1;
                                break;
                        }
        }

        if (bad == 0) {
                f->kind = VERITY_FAILURE_ROOT_HASH_MISMATCH;
                return 0;
        }

        f->kind = VERITY_FAILURE_CORRUPTED;
        f->area = VERITY_AREA_HASH;
        f->level = (int) top;
        f->index = 0;
        f->block = verity_geometry_hash_block(g, top, 0);
        if (bad == n_children && top >= 1) {
                /* Every child disagrees with the top block. If the first child also disagrees with its own
                 * first child, hashing itself is off: the salt in the superblock is not the one the tree
                 * was made with. */
                const uint8_t *child = tree + g->level_start[top - 1] * g->hash_block_size;
                const uint8_t *grandchild;
                size_t gsize;
                if (top == 1) {
                        r = read_exact(slot, buf, g->data_block_size, 0);
                        if (r < 0)
                                return r;
                        grandchild = buf;
                        gsize = g->data_block_size;
                } else {
                        grandchild = tree + g->level_start[top - 2] * g->hash_block_size;
                        gsize = g->hash_block_size;
                }
                r = hash_one(h, grandchild, gsize, d);
                if (r < 0)
                        return r;
                if (memcmp(d, child, g->digest_size) != 0) {
                        f->area = VERITY_AREA_SUPERBLOCK;
                        f->level = -1;
                        f->block = g->hash_offset / g->hash_block_size;
                        return fail(f, "no block of the hash tree matches the salt in the superblock (hash block %" PRIu64
                                    "): the salt is damaged or does not belong to this tree",
                                    f->block);
                }
        }
        return fail(f, "top hash block %" PRIu64 " (level %u) does not match the root hash and its children",
                    f->block, top);
}

int verity_verify(const VeritySlot *slot, const VerityVerifyOptions *opts, VerityVerifyResult *ret,
                  VerityFailure *ret_failure) {
        VerityFailure dummy, *f = ret_failure ?: &dummy;
        VerityVerifyResult res = {};
        _cleanup_free_ uint8_t *tree = NULL;
        VeritySuperblock sb;
        VerityGeometry g;
        uint8_t root[VERITY_DIGEST_MAX];
        uint64_t hash_offset, err_block = 0;
        unsigned threads = opts->threads ?: verity_default_threads();
        ProgressState progress;
        Hasher h = {};
        int r;

        *f = (VerityFailure) { .level = -1 };

        if (!opts->expected_root)
                return -EINVAL;

        r = find_superblock(slot, opts, &hash_offset, &sb, res.hash_offset_source, sizeof res.hash_offset_source, f);
        if (r < 0)
                return r;
        r = check_layout(slot, &sb, hash_offset, &g, f);
        if (r < 0)
                return r;
        if (opts->expected_root_size != g.digest_size) {
                f->kind = VERITY_FAILURE_BAD_SUPERBLOCK;
                return fail(f, "expected root hash has %zu bytes but %s digests have %" PRIu32, opts->expected_root_size,
                            sb.algorithm, g.digest_size),
                       -EINVAL;
        }

        r = hasher_init(&h, sb.algorithm, sb.salt, sb.salt_size);
        if (r < 0) {
                f->kind = VERITY_FAILURE_BAD_SUPERBLOCK;
                return fail(f, "hash algorithm %s is not available", sb.algorithm), r;
        }

        progress = (ProgressState) { .cb = opts->progress, .userdata = opts->userdata, .total = g.data_blocks };

        if (g.levels == 0) {
                /* A single data block: its digest is the root hash. */
                _cleanup_free_ uint8_t *blk = malloc(g.data_block_size);
                if (!blk) {
                        hasher_done(&h);
                        return -ENOMEM;
                }
                r = read_exact(slot, blk, g.data_block_size, 0);
                if (r >= 0)
                        r = hash_one(&h, blk, g.data_block_size, root);
                hasher_done(&h);
                if (r < 0) {
                        f->kind = VERITY_FAILURE_IO;
                        return fail(f, "failed to read data block 0: %s", strerror(-r)), r;
                }
                result_fill(&res, &sb, &g, root, g.digest_size);
                snprintf(f->actual_root, sizeof f->actual_root, "%s", res.root_hash);
                if (memcmp(root, opts->expected_root, g.digest_size) != 0) {
                        f->kind = VERITY_FAILURE_ROOT_HASH_MISMATCH;
                        return fail(f, "root hash is %s, expected another", res.root_hash), -EKEYREJECTED;
                }
                if (ret)
                        *ret = res;
                return 0;
        }

        tree = malloc(g.tree_blocks * g.hash_block_size);
        if (!tree) {
                hasher_done(&h);
                return -ENOMEM;
        }
        r = read_exact(slot, tree, g.tree_blocks * g.hash_block_size, g.tree_offset);
        if (r < 0) {
                hasher_done(&h);
                f->kind = VERITY_FAILURE_IO;
                return fail(f, "failed to read the hash tree (%" PRIu64 " bytes at offset %" PRIu64 "): %s",
                            g.tree_blocks * g.hash_block_size, g.tree_offset, strerror(-r)),
                       r;
        }

        r = hash_one(&h, tree + g.level_start[g.levels - 1] * g.hash_block_size, g.hash_block_size, root);
        if (r < 0) {
                hasher_done(&h);
                return r;
        }
        result_fill(&res, &sb, &g, root, g.digest_size);
        snprintf(f->actual_root, sizeof f->actual_root, "%s", res.root_hash);
        if (memcmp(root, opts->expected_root, g.digest_size) != 0) {
                r = classify_root_mismatch(slot, &h, &g, tree, f);
                hasher_done(&h);
                if (r < 0) {
                        f->kind = VERITY_FAILURE_IO;
                        return fail(f, "failed to read the slot: %s", strerror(-r)), r;
                }
                if (f->kind == VERITY_FAILURE_ROOT_HASH_MISMATCH) {
                        char expected[VERITY_DIGEST_MAX * 2 + 1];
                        hex_encode(opts->expected_root, g.digest_size, expected);
                        fail(f, "root hash of the tree is %s, expected %s", res.root_hash, expected);
                        return -EKEYREJECTED;
                }
                return -EBADMSG;
        }

        /* Top down: each hash level against the one above it, then the data against the leaves. */
        for (int level = (int) g.levels - 2; level >= -1; level--) {
                uint8_t *parent = tree + g.level_start[level + 1] * g.hash_block_size;
                Pass p = {
                        .hasher = &h,
                        .g = &g,
                        .slot = slot,
                        .parent = parent,
                        .verify = true,
                        .cancel = opts->cancel,
                };
                if (level >= 0) {
                        p.mem = tree + g.level_start[level] * g.hash_block_size;
                        p.block_size = g.hash_block_size;
                        p.n_blocks = g.level_blocks[level];
                } else {
                        p.src_pos = 0;
                        p.block_size = g.data_block_size;
                        p.n_blocks = g.data_blocks;
                }
                r = pass_run(&p, threads, level < 0 ? &progress : NULL, &err_block);
                if (r < 0) {
                        hasher_done(&h);
                        if (r == -ECANCELED || p.error == 0)
                                return fail(f, "verification stopped: %s", strerror(-r)), r;
                        f->kind = VERITY_FAILURE_IO;
                        f->area = level >= 0 ? VERITY_AREA_HASH : VERITY_AREA_DATA;
                        f->block = err_block;
                        return fail(f, "failed to read %s block %" PRIu64 ": %s", level >= 0 ? "hash" : "data", err_block,
                                    strerror(-r)),
                               r;
                }
                uint64_t bad = atomic_load(&p.first_bad);
                if (bad != UINT64_MAX) {
                        hasher_done(&h);
                        f->kind = VERITY_FAILURE_CORRUPTED;
                        if (level >= 0) {
                                f->area = VERITY_AREA_HASH;
                                f->level = level;
                                f->index = bad;
                                f->block = verity_geometry_hash_block(&g, (unsigned) level, bad);
                                return fail(f, "hash block %" PRIu64 " (level %d, index %" PRIu64
                                            ") does not match its digest in level %d",
                                            f->block, level, bad, level + 1),
                                       -EBADMSG;
                        }
                        f->area = VERITY_AREA_DATA;
                        f->block = bad;
                        f->index = bad;
                        return fail(f, "data block %" PRIu64 " does not match its digest in the hash tree", bad), -EBADMSG;
                }
        }
        hasher_done(&h);

        if (ret)
                *ret = res;
        return 0;
}

/* ---- format ---- */

int verity_format(const VeritySlot *slot, const VerityFormatOptions *opts, VerityVerifyResult *ret,
                  VerityFailure *ret_failure) {
        VerityFailure dummy, *f = ret_failure ?: &dummy;
        const uint32_t bs = opts->block_size ?: VERITY_DEFAULT_BLOCK_SIZE;
        unsigned threads = opts->threads ?: verity_default_threads();
        VeritySuperblock sb = { .version = 1, .hash_type = 1, .data_block_size = bs, .hash_block_size = bs };
        VerityVerifyResult res = {};
        _cleanup_free_ uint8_t *tree = NULL, *head = NULL;
        uint64_t data_blocks = opts->data_blocks, hash_offset = opts->hash_offset, err_block = 0;
        uint8_t root[VERITY_DIGEST_MAX];
        ProgressState progress;
        VerityGeometry g;
        Hasher h = {};
        int r;

        *f = (VerityFailure) { .level = -1, .kind = VERITY_FAILURE_BAD_SUPERBLOCK };
        snprintf(sb.algorithm, sizeof sb.algorithm, "sha256");

        if (!is_pow2(bs) || bs < VERITY_BLOCK_SIZE_MIN || bs > VERITY_BLOCK_SIZE_MAX)
                return fail(f, "invalid block size %" PRIu32, bs), -EINVAL;
        if (opts->salt && opts->salt_size > VERITY_SALT_MAX)
                return fail(f, "salt of %zu bytes is longer than the maximum of %u", opts->salt_size, VERITY_SALT_MAX),
                       -EINVAL;

        if (data_blocks == UINT64_MAX && hash_offset != UINT64_MAX) {
                data_blocks = hash_offset / bs;
                snprintf(res.hash_offset_source, sizeof res.hash_offset_source, "explicit");
        } else if (data_blocks != UINT64_MAX && hash_offset == UINT64_MAX) {
                if (data_blocks > UINT64_MAX / bs)
                        return fail(f, "%" PRIu64 " data blocks overflow", data_blocks), -EOVERFLOW;
                hash_offset = data_blocks * bs;
                snprintf(res.hash_offset_source, sizeof res.hash_offset_source, "data-blocks");
        } else if (data_blocks == UINT64_MAX) {
                uint64_t fs_size;
                FsType type;

                head = calloc(1, FS_PROBE_SIZE);
                if (!head)
                        return -ENOMEM;
                r = read_exact(slot, head, MIN((uint64_t) FS_PROBE_SIZE, slot->size), 0);
                if (r < 0) {
                        f->kind = VERITY_FAILURE_IO;
                        return fail(f, "failed to read the start of the slot: %s", strerror(-r)), r;
                }
                bool have_fs = fs_probe_size(head, MIN((uint64_t) FS_PROBE_SIZE, slot->size), &type, &fs_size) >= 0;
                if (slot->size == VERITY_FLATCAR_SLOT_SIZE && bs == VERITY_DEFAULT_BLOCK_SIZE) {
                        /* Flatcar's initrd opens the tree at this fixed offset whatever the filesystem's size. */
                        if (have_fs && fs_size > VERITY_FLATCAR_HASH_OFFSET)
                                return fail(f, "the %s filesystem (%" PRIu64 " bytes) is larger than Flatcar's data area (%" PRIu64 " bytes)",
                                            fs_type_to_string(type), fs_size, VERITY_FLATCAR_HASH_OFFSET),
                                       -ENOSPC;
                        data_blocks = VERITY_FLATCAR_DATA_BLOCKS;
                        snprintf(res.hash_offset_source, sizeof res.hash_offset_source, "flatcar");
                } else if (have_fs) {
                        data_blocks = DIV_ROUND_UP(fs_size, (uint64_t) bs);
                        snprintf(res.hash_offset_source, sizeof res.hash_offset_source, "%s", fs_type_to_string(type));
                } else {
                        data_blocks = verity_max_data_blocks(slot->size, bs, SHA256_DIGEST_SIZE);
                        snprintf(res.hash_offset_source, sizeof res.hash_offset_source, "fill-slot");
                }
                hash_offset = data_blocks * bs;
        } else
                snprintf(res.hash_offset_source, sizeof res.hash_offset_source, "explicit");

        if (data_blocks == 0)
                return fail(f, "no room for data blocks in a slot of %" PRIu64 " bytes", slot->size), -EINVAL;
        if (hash_offset % 512 != 0)
                return fail(f, "hash offset %" PRIu64 " is not a multiple of 512", hash_offset), -EINVAL;
        if (data_blocks > UINT64_MAX / bs || data_blocks * bs > hash_offset)
                return fail(f, "data area (%" PRIu64 " blocks) overlaps the hash area at offset %" PRIu64, data_blocks,
                            hash_offset),
                       -EINVAL;
        r = verity_geometry_compute(data_blocks, bs, bs, SHA256_DIGEST_SIZE, hash_offset, &g);
        if (r < 0)
                return fail(f, "impossible hash tree for %" PRIu64 " data blocks: %s", data_blocks, strerror(-r)), r;
        if (data_blocks * bs > slot->size)
                return fail(f, "%" PRIu64 " data blocks need %" PRIu64 " bytes but the slot has %" PRIu64, data_blocks,
                            data_blocks * bs, slot->size),
                       -ERANGE;
        if (g.end_offset > slot->size && !slot->growable)
                return fail(f, "the hash tree ends at byte %" PRIu64 " but the slot has only %" PRIu64 " bytes",
                            g.end_offset, slot->size),
                       -ENOSPC;

        sb.data_blocks = data_blocks;
        if (opts->salt) {
                memcpy(sb.salt, opts->salt, opts->salt_size);
                sb.salt_size = (uint16_t) opts->salt_size;
        } else {
                sb.salt_size = VERITY_DEFAULT_SALT_SIZE;
                if (RAND_bytes(sb.salt, VERITY_DEFAULT_SALT_SIZE) != 1)
                        return fail(f, "no random bytes for the salt"), -EIO;
        }
        if (opts->uuid)
                memcpy(sb.uuid, opts->uuid, 16);
        else {
                if (RAND_bytes(sb.uuid, 16) != 1)
                        return fail(f, "no random bytes for the UUID"), -EIO;
                sb.uuid[6] = (sb.uuid[6] & 0x0F) | 0x40;
                sb.uuid[8] = (sb.uuid[8] & 0x3F) | 0x80;
        }

        r = hasher_init(&h, sb.algorithm, sb.salt, sb.salt_size);
        if (r < 0)
                return fail(f, "sha256 is not available"), r;

        *f = (VerityFailure) { .level = -1 };
        progress = (ProgressState) { .cb = opts->progress, .userdata = opts->userdata, .total = g.data_blocks };

        if (g.levels == 0) {
                _cleanup_free_ uint8_t *blk = malloc(bs);
                r = blk ? read_exact(slot, blk, bs, 0) : -ENOMEM;
                if (r >= 0)
                        r = hash_one(&h, blk, bs, root);
                hasher_done(&h);
                if (r < 0) {
                        f->kind = VERITY_FAILURE_IO;
                        return fail(f, "failed to hash data block 0: %s", strerror(-r)), r;
                }
        } else {
                tree = calloc(g.tree_blocks, g.hash_block_size);
                if (!tree) {
                        hasher_done(&h);
                        return -ENOMEM;
                }
                /* Bottom up: the data into the leaves, then each level into the one above. */
                for (int level = -1; level <= (int) g.levels - 2; level++) {
                        Pass p = {
                                .hasher = &h,
                                .g = &g,
                                .slot = slot,
                                .parent = tree + g.level_start[level + 1] * g.hash_block_size,
                                .verify = false,
                        };
                        if (level >= 0) {
                                p.mem = tree + g.level_start[level] * g.hash_block_size;
                                p.block_size = g.hash_block_size;
                                p.n_blocks = g.level_blocks[level];
                        } else {
                                p.block_size = g.data_block_size;
                                p.n_blocks = g.data_blocks;
                        }
                        r = pass_run(&p, threads, level < 0 ? &progress : NULL, &err_block);
                        if (r < 0) {
                                hasher_done(&h);
                                f->kind = VERITY_FAILURE_IO;
                                f->block = err_block;
                                return fail(f, "failed to hash %s block %" PRIu64 ": %s", level >= 0 ? "hash" : "data",
                                            err_block, strerror(-r)),
                                       r;
                        }
                }
                r = hash_one(&h, tree + g.level_start[g.levels - 1] * g.hash_block_size, g.hash_block_size, root);
                hasher_done(&h);
                if (r < 0)
                        return r;
        }

        /* The superblock, zeros up to the tree, then the tree. */
        {
                size_t head_size = (size_t) (g.tree_offset - g.hash_offset);
                _cleanup_free_ uint8_t *sbblock = calloc(1, head_size);
                ssize_t n;
                if (!sbblock)
                        return -ENOMEM;
                verity_superblock_build(&sb, sbblock);
                n = loop_pwrite(slot->fd, sbblock, head_size, (off_t) (slot->offset + g.hash_offset));
                if (n >= 0 && tree)
                        n = loop_pwrite(slot->fd, tree, g.tree_blocks * g.hash_block_size,
                                        (off_t) (slot->offset + g.tree_offset));
                if (n < 0) {
                        f->kind = VERITY_FAILURE_IO;
                        return fail(f, "failed to write the hash area: %s", strerror((int) -n)), (int) n;
                }
                if (fdatasync(slot->fd) < 0 && errno != EINVAL) {
                        f->kind = VERITY_FAILURE_IO;
                        return fail(f, "failed to sync the hash area: %m"), -errno;
                }
        }

        result_fill(&res, &sb, &g, root, g.digest_size);
        if (ret)
                *ret = res;
        return 0;
}
