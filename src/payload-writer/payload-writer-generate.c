/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <bzlib.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <lzma.h>
#include <sys/stat.h>

#include "fileio.h"
#include "hash.h"
#include "log.h"
#include "payload-writer-format.h"
#include "payload-writer-generate.h"
#include "payload-writer-keys.h"
#include "payload-writer-workers.h"

Compression compression_from_string(const char *s) {
        if (streq(s, "none"))
                return COMPRESSION_NONE;
        if (streq(s, "bz2") || streq(s, "bzip2"))
                return COMPRESSION_BZ2;
        if (streq(s, "xz"))
                return COMPRESSION_XZ;
        if (streq(s, "best"))
                return COMPRESSION_BEST;
        return _COMPRESSION_INVALID;
}

typedef struct OpList {
        InstallOperation **ops;
        size_t n;
} OpList;

static void op_free(InstallOperation *op) {
        if (!op)
                return;
        for (size_t i = 0; i < op->n_dst_extents; i++)
                free(op->dst_extents[i]);
        free(op->dst_extents);
        free(op->data_sha256_hash.data);
        free(op);
}

static void op_list_done(OpList *l) {
        for (size_t i = 0; i < l->n; i++)
                op_free(l->ops[i]);
        l->ops = mfree(l->ops);
        l->n = 0;
}

static InstallOperation *op_new(int type, uint64_t offset, uint64_t length, const uint8_t *hash, uint64_t start_block,
                                uint64_t num_blocks) {
        InstallOperation *op = calloc(1, sizeof *op);
        Extent *x = calloc(1, sizeof *x);
        Extent **xs = calloc(1, sizeof *xs);

        if (!op || !x || !xs) {
                free(op);
                free(x);
                free(xs);
                return NULL;
        }
        chromeos_update_engine__install_operation__init(op);
        chromeos_update_engine__extent__init(x);
        op->type = type;
        if (length > 0) {
                op->has_data_offset = op->has_data_length = true;
                op->data_offset = (uint32_t) offset;
                op->data_length = (uint32_t) length;
        }
        if (hash) {
                op->data_sha256_hash.data = malloc(32);
                if (!op->data_sha256_hash.data) {
                        free(op);
                        free(x);
                        free(xs);
                        return NULL;
                }
                memcpy(op->data_sha256_hash.data, hash, 32);
                op->data_sha256_hash.len = 32;
                op->has_data_sha256_hash = true;
        }
        x->has_start_block = x->has_num_blocks = true;
        x->start_block = start_block;
        x->num_blocks = num_blocks;
        xs[0] = x;
        op->dst_extents = xs;
        op->n_dst_extents = 1;
        return op;
}

static int op_list_add(OpList *l, InstallOperation *op) {
        InstallOperation **n;
        if (!op)
                return -ENOMEM;
        n = realloc(l->ops, (l->n + 1) * sizeof *n);
        if (!n) {
                op_free(op);
                return -ENOMEM;
        }
        l->ops = n;
        l->ops[l->n++] = op;
        return 0;
}

/* Picks the smallest encoding allowed; compressed only when strictly smaller than the raw chunk. */
static int encode_chunk(const uint8_t *in, size_t size, Compression c, uint8_t *scratch, uint8_t *out, int *ret_type,
                        const uint8_t **ret_data, size_t *ret_size) {
        int type = OP_REPLACE;
        const uint8_t *best = in;
        size_t best_size = size;

        if (size == 0)
                goto done;
        if (c == COMPRESSION_BZ2 || c == COMPRESSION_BEST) {
                unsigned n = (unsigned) size - 1;
                int r = BZ2_bzBuffToBuffCompress((char *) scratch, &n, (char *) in, (unsigned) size, 9, 0, 0);
                if (r == BZ_OK && n < best_size) {
                        type = OP_REPLACE_BZ;
                        best = scratch;
                        best_size = n;
                } else if (r != BZ_OK && r != BZ_OUTBUFF_FULL)
                        return log_error_errno(SYNTHETIC_ERRNO(EIO), "bzip2 compression failed (%d).", r);
        }
        if (c == COMPRESSION_XZ || c == COMPRESSION_BEST) {
                size_t pos = 0;
                lzma_ret r = lzma_easy_buffer_encode(LZMA_PRESET_DEFAULT, LZMA_CHECK_CRC32, NULL, in, size, out, &pos,
                                                     best_size - 1);
                if (r == LZMA_OK && pos < best_size) {
                        type = OP_REPLACE_XZ;
                        best = out;
                        best_size = pos;
                } else if (r != LZMA_OK && r != LZMA_BUF_ERROR)
                        return log_error_errno(SYNTHETIC_ERRNO(EIO), "xz compression failed (%d).", (int) r);
        }
done:
        *ret_type = type;
        *ret_data = best;
        *ret_size = best_size;
        return 0;
}

typedef struct EncodeJob {
        WorkItem item; /* first */
        Compression compression;
        uint8_t *in, *scratch, *out;
        size_t n;
        int type, r;
        const uint8_t *data;
        size_t size;
        uint8_t hash[32];
} EncodeJob;

static void encode_job(WorkItem *item, unsigned worker _unused_) {
        EncodeJob *j = (EncodeJob *) item;
        j->r = encode_chunk(j->in, j->n, j->compression, j->scratch, j->out, &j->type, &j->data, &j->size);
        if (j->r >= 0 && sha256_buffer(j->data, j->size, j->hash) < 0)
                j->r = -EIO;
}

/* Appends a finished chunk's blob and operation. */
static int emit_chunk(EncodeJob *j, uint64_t index, const GenerateOptions *o, OpList *l, int blob_fd,
                      uint64_t *blob_offset) {
        uint64_t chunk_blocks = o->chunk_size / o->block_size;
        int r;

        if (j->r < 0)
                return j->r;
        if (*blob_offset + j->size > UINT32_MAX)
                return log_error_errno(SYNTHETIC_ERRNO(EFBIG),
                                       "Payload data would pass 4 GiB, which data_offset cannot address.");
        r = loop_write(blob_fd, j->data, j->size);
        if (r < 0)
                return log_error_errno(r, "Failed to write temporary blob file: %m");
        /* Like delta_generator, a short last chunk still declares a whole chunk of blocks; only the blocks
         * its data reaches are written. */
        r = op_list_add(l, op_new(j->type, *blob_offset, j->size, j->hash, index * chunk_blocks, chunk_blocks));
        if (r < 0)
                return log_oom();
        *blob_offset += j->size;
        return 0;
}

static void encode_jobs_free(EncodeJob *jobs, size_t n) {
        for (size_t i = 0; jobs && i < n; i++) {
                free(jobs[i].in);
                free(jobs[i].scratch);
                free(jobs[i].out);
        }
        free(jobs);
}

/* Chunks one input file into ops appended to l, blobs appended to blob_fd at *blob_offset. Chunks are
 * read and hashed here in order, compressed on the workers (a ring of 2 per thread bounds the memory),
 * and their blobs and ops appended here in order: the output does not depend on the thread count. */
static int chunk_file(const char *path, const GenerateOptions *o, Workers *w, OpList *l, int blob_fd,
                      uint64_t *blob_offset, uint64_t *ret_size, uint8_t ret_hash[32]) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_(sha256_freep) Sha256 *whole = NULL;
        size_t n_jobs = 2 * (size_t) workers_threads(w), head = 0, tail = 0;
        EncodeJob *jobs = NULL;
        uint64_t total = 0, emitted = 0;
        bool eof = false;
        int r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", path);
        jobs = calloc(n_jobs, sizeof *jobs);
        if (!jobs || sha256_new(&whole) < 0) {
                free(jobs);
                return log_oom();
        }
        for (size_t i = 0; i < n_jobs; i++) {
                jobs[i].in = malloc(o->chunk_size);
                jobs[i].scratch = malloc(o->chunk_size);
                jobs[i].out = malloc(o->chunk_size);
                jobs[i].compression = o->compression;
                if (!jobs[i].in || !jobs[i].scratch || !jobs[i].out) {
                        encode_jobs_free(jobs, n_jobs);
                        return log_oom();
                }
        }
        /* head: chunks submitted; tail: chunks emitted. */
        while (r >= 0 && (!eof || tail < head)) {
                if (!eof && head - tail < n_jobs) {
                        EncodeJob *j = &jobs[head % n_jobs];
                        ssize_t n = loop_read(fd, j->in, o->chunk_size);
                        if (n < 0) {
                                r = log_error_errno(n, "Failed to read %s: %m", path);
                                break;
                        }
                        if (n == 0) {
                                eof = true;
                                continue;
                        }
                        (void) sha256_update(whole, j->in, (size_t) n);
                        total += (uint64_t) n;
                        j->n = (size_t) n;
                        workers_submit(w, &j->item, encode_job);
                        head++;
                        if ((size_t) n < o->chunk_size)
                                eof = true;
                        continue;
                }
                EncodeJob *j = &jobs[tail % n_jobs];
                workers_wait(w, &j->item);
                r = emit_chunk(j, emitted, o, l, blob_fd, blob_offset);
                if (r == -EIO && j->r == -EIO)
                        r = log_error_errno(r, "Compressing chunk %" PRIu64 " of %s failed.", emitted, path);
                tail++;
                emitted++;
        }
        /* On failure, let the workers finish with the buffers before they go. */
        for (; tail < head; tail++)
                workers_wait(w, &jobs[tail % n_jobs].item);
        encode_jobs_free(jobs, n_jobs);
        if (r < 0)
                return r;
        *ret_size = total;
        return sha256_final(whole, ret_hash);
}

static InstallInfo *info_new(uint64_t size, const uint8_t hash[32]) {
        InstallInfo *i = calloc(1, sizeof *i);
        if (!i)
                return NULL;
        chromeos_update_engine__install_info__init(i);
        i->has_size = i->has_hash = true;
        i->size = size;
        i->hash.data = malloc(32);
        if (!i->hash.data)
                return mfree(i);
        memcpy(i->hash.data, hash, 32);
        i->hash.len = 32;
        return i;
}

static void info_free(InstallInfo *i) {
        if (i)
                free(i->hash.data);
        free(i);
}

static int copy_hashing(int in, int out, uint64_t size, Sha256 *h) {
        _cleanup_free_ uint8_t *buf = malloc(1024 * 1024);
        if (!buf)
                return -ENOMEM;
        while (size > 0) {
                size_t want = (size_t) MIN(size, (uint64_t) 1024 * 1024);
                ssize_t n = loop_read(in, buf, want);
                int r;
                if (n < 0)
                        return (int) n;
                if ((size_t) n != want)
                        return -EPIPE;
                (void) sha256_update(h, buf, want);
                r = loop_write(out, buf, want);
                if (r < 0)
                        return r;
                size -= want;
        }
        return 0;
}

static int open_output(const char *output, char **ret_tmp) {
        _cleanup_free_ char *tmp = NULL;
        int fd;
        if (asprintf(&tmp, "%s.tmpXXXXXX", output) < 0)
                return log_oom();
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create %s: %m", tmp);
        (void) fchmod(fd, 0644);
        *ret_tmp = TAKE_PTR(tmp);
        return fd;
}

/* Writes header, manifest (with the signature fields and the signature noop op added when keys are
 * given), blob_size bytes of blobs from blob_fd, and the signature blob. The manifest's own noop list is
 * restored before returning. */
static int write_payload(Manifest *m, int blob_fd, uint64_t blob_size, EVP_PKEY **keys, size_t n_keys,
                         const char *output) {
        _cleanup_free_ uint8_t *manifest = NULL, *sigblob = NULL;
        _cleanup_free_ InstallOperation **noops = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        InstallOperation **saved_noops = m->noop_operations, *sig_op = NULL;
        size_t saved_n = m->n_noop_operations, manifest_size, sig_size = 0;
        uint8_t header[PAYLOAD_HEADER_SIZE], digest[32];
        uint8_t *sigs[PAYLOAD_SIGNING_KEYS_MAX] = {};
        size_t sig_sizes[PAYLOAD_SIGNING_KEYS_MAX] = {};
        int r;

        if (n_keys > PAYLOAD_SIGNING_KEYS_MAX)
                return log_error_errno(SYNTHETIC_ERRNO(E2BIG), "At most %u signing keys are supported.",
                                       PAYLOAD_SIGNING_KEYS_MAX);
        m->has_signatures_offset = m->has_signatures_size = false;
        if (n_keys > 0) {
                /* The signature blob's size goes into the manifest the signature covers, so size it with
                 * placeholder signatures first: PKCS#1 v1.5 signatures are always exactly the modulus size. */
                uint8_t *placeholders[PAYLOAD_SIGNING_KEYS_MAX] = {};
                _cleanup_free_ uint8_t *packed = NULL;
                for (size_t i = 0; i < n_keys; i++) {
                        sig_sizes[i] = private_key_signature_size(keys[i]);
                        placeholders[i] = calloc(1, sig_sizes[i]);
                }
                r = 0;
                for (size_t i = 0; i < n_keys; i++)
                        if (!placeholders[i])
                                r = -ENOMEM;
                if (r == 0)
                        r = payload_signatures_pack((const uint8_t *const *) placeholders, sig_sizes, n_keys, &packed,
                                                    &sig_size);
                for (size_t i = 0; i < n_keys; i++)
                        free(placeholders[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to size the signature blob: %m");
                m->has_signatures_offset = m->has_signatures_size = true;
                m->signatures_offset = blob_size;
                m->signatures_size = sig_size;
                sig_op = op_new(OP_REPLACE, 0, 0, NULL, PAYLOAD_SPARSE_HOLE,
                                DIV_ROUND_UP(sig_size, (uint64_t) payload_manifest_block_size(m)));
                noops = calloc(saved_n + 1, sizeof *noops);
                if (!sig_op || !noops) {
                        op_free(sig_op);
                        return log_oom();
                }
                /* data_offset is a uint32; Flatcar's generator stores the blob's offset there too. */
                sig_op->has_data_offset = sig_op->has_data_length = true;
                sig_op->data_offset = (uint32_t) blob_size;
                sig_op->data_length = (uint32_t) sig_size;
                if (saved_n > 0)
                        memcpy(noops, saved_noops, saved_n * sizeof *noops);
                noops[saved_n] = sig_op;
                m->noop_operations = noops;
                m->n_noop_operations = saved_n + 1;
        }
        manifest_size = chromeos_update_engine__delta_archive_manifest__get_packed_size(m);
        manifest = malloc(manifest_size);
        if (manifest)
                chromeos_update_engine__delta_archive_manifest__pack(m, manifest);
        m->noop_operations = saved_noops;
        m->n_noop_operations = saved_n;
        op_free(sig_op);
        if (!manifest)
                return log_oom();

        payload_header_write(header, manifest_size);
        fd = open_output(output, &tmp);
        if (fd < 0)
                return fd;
        if (sha256_new(&h) < 0)
                return log_oom();
        (void) sha256_update(h, header, sizeof header);
        (void) sha256_update(h, manifest, manifest_size);
        r = loop_write(fd, header, sizeof header);
        if (r >= 0)
                r = loop_write(fd, manifest, manifest_size);
        if (r >= 0)
                r = copy_hashing(blob_fd, fd, blob_size, h);
        if (r < 0) {
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to write %s: %m", output);
        }
        (void) sha256_final(h, digest);
        if (n_keys > 0) {
                size_t got;
                for (size_t i = 0; i < n_keys && r >= 0; i++) {
                        r = private_key_sign(keys[i], digest, &sigs[i], &got);
                        if (r >= 0 && got != sig_sizes[i])
                                r = -EBADMSG;
                }
                if (r >= 0)
                        r = payload_signatures_pack((const uint8_t *const *) sigs, sig_sizes, n_keys, &sigblob, &got);
                for (size_t i = 0; i < n_keys; i++)
                        free(sigs[i]);
                if (r >= 0 && got != sig_size)
                        r = -EBADMSG;
                if (r >= 0)
                        r = loop_write(fd, sigblob, sig_size);
                if (r < 0) {
                        (void) unlink(tmp);
                        return log_error_errno(r, "Failed to sign %s: %m", output);
                }
        }
        if (fsync(fd) < 0 || rename(tmp, output) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to write %s: %m", output);
        }
        log_info("Wrote %s: %" PRIu64 " bytes of operation data, %zu signature(s).", output, blob_size, n_keys);
        return 0;
}

static int load_keys(char **paths, size_t n, EVP_PKEY **keys) {
        for (size_t i = 0; i < n; i++) {
                int r = private_key_load(paths[i], &keys[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void free_keys(EVP_PKEY **keys, size_t n) {
        for (size_t i = 0; i < n; i++)
                EVP_PKEY_free(keys[i]);
}

int payload_generate(const GenerateOptions *o) {
        Manifest m = CHROMEOS_UPDATE_ENGINE__DELTA_ARCHIVE_MANIFEST__INIT;
        InstallProcedure procs[2], *proc_ptrs[2];
        OpList part = {}, kernel = {}, pcr = {}, noops = {};
        EVP_PKEY *keys[PAYLOAD_SIGNING_KEYS_MAX] = {};
        InstallInfo *infos[3] = {};
        _cleanup_(workers_freep) Workers *w = NULL;
        _cleanup_close_ int blob_fd = -EBADF;
        _cleanup_free_ char *dir = NULL;
        uint64_t blob = 0, size;
        uint8_t hash[32];
        size_t n_procs = 0;
        int r;

        if (o->block_size == 0 || o->chunk_size == 0 || o->chunk_size % o->block_size != 0 ||
            o->chunk_size > PAYLOAD_OP_DATA_MAX)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "Chunk size must be a multiple of the block size (%" PRIu32 ") up to %u bytes.",
                                       o->block_size, PAYLOAD_OP_DATA_MAX);
        if (o->n_keys > PAYLOAD_SIGNING_KEYS_MAX)
                return log_error_errno(SYNTHETIC_ERRNO(E2BIG), "At most %u signing keys are supported.",
                                       PAYLOAD_SIGNING_KEYS_MAX);
        r = workers_new(o->threads, &w);
        if (r < 0)
                return log_error_errno(r, "Failed to start compressing threads: %m");
        r = load_keys(o->keys, o->n_keys, keys);
        if (r < 0)
                goto finish;
        dir = strdup(o->output);
        if (!dir) {
                r = log_oom();
                goto finish;
        }
        blob_fd = open(dirname(dir), O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
        if (blob_fd < 0) {
                r = log_error_errno(errno, "Failed to create a temporary file next to %s: %m", o->output);
                goto finish;
        }

        r = chunk_file(o->image, o, w, &part, blob_fd, &blob, &size, hash);
        if (r < 0)
                goto finish;
        infos[0] = info_new(size, hash);
        if (!infos[0]) {
                r = log_oom();
                goto finish;
        }
        m.has_block_size = true;
        m.block_size = o->block_size;
        m.partition_operations = part.ops;
        m.n_partition_operations = part.n;
        m.new_partition_info = infos[0];

        const struct {
                const char *path;
                int type;
                OpList *ops;
        } extra[] = {
                { o->kernel, PROC_KERNEL, &kernel },
                { o->pcr_policy, PROC_PCR_POLICY, &pcr },
        };
        for (size_t k = 0; k < ELEMENTSOF(extra); k++) {
                if (!extra[k].path)
                        continue;
                r = chunk_file(extra[k].path, o, w, extra[k].ops, blob_fd, &blob, &size, hash);
                if (r < 0)
                        goto finish;
                infos[1 + k] = info_new(size, hash);
                if (!infos[1 + k]) {
                        r = log_oom();
                        goto finish;
                }
                chromeos_update_engine__install_procedure__init(&procs[n_procs]);
                procs[n_procs].has_type = true;
                procs[n_procs].type = extra[k].type;
                procs[n_procs].operations = extra[k].ops->ops;
                procs[n_procs].n_operations = extra[k].ops->n;
                procs[n_procs].new_info = infos[1 + k];
                proc_ptrs[n_procs] = &procs[n_procs];
                n_procs++;
                /* Old clients read only partition and noop operations: make them skip this data. */
                for (size_t i = 0; i < extra[k].ops->n; i++) {
                        const InstallOperation *op = extra[k].ops->ops[i];
                        r = op_list_add(&noops, op_new(OP_REPLACE, op->data_offset, op->data_length,
                                                       op->data_sha256_hash.data, PAYLOAD_SPARSE_HOLE,
                                                       DIV_ROUND_UP((uint64_t) op->data_length, o->block_size)));
                        if (r < 0) {
                                r = log_oom();
                                goto finish;
                        }
                }
        }
        m.procedures = n_procs > 0 ? proc_ptrs : NULL;
        m.n_procedures = n_procs;
        m.noop_operations = noops.ops;
        m.n_noop_operations = noops.n;

        if (lseek(blob_fd, 0, SEEK_SET) < 0) {
                r = log_error_errno(errno, "Failed to rewind the temporary blob file: %m");
                goto finish;
        }
        r = write_payload(&m, blob_fd, blob, keys, o->n_keys, o->output);
finish:
        op_list_done(&part);
        op_list_done(&kernel);
        op_list_done(&pcr);
        op_list_done(&noops);
        for (size_t i = 0; i < ELEMENTSOF(infos); i++)
                info_free(infos[i]);
        free_keys(keys, o->n_keys);
        return r;
}

int payload_sign(const char *input, const char *output, char **key_paths, size_t n_keys) {
        _cleanup_(payload_manifest_freep) Manifest *m = NULL;
        _cleanup_free_ uint8_t *manifest = NULL;
        _cleanup_free_ InstallOperation **kept = NULL;
        _cleanup_close_ int fd = -EBADF;
        EVP_PKEY *keys[PAYLOAD_SIGNING_KEYS_MAX] = {};
        InstallOperation **orig;
        uint8_t header[PAYLOAD_HEADER_SIZE];
        uint64_t manifest_size, blob, old_sig = 0;
        PayloadError e = {};
        size_t orig_n, n_kept = 0;
        ssize_t n;
        int r;

        if (n_keys == 0 || n_keys > PAYLOAD_SIGNING_KEYS_MAX)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Give 1 to %u signing keys with --key.",
                                       PAYLOAD_SIGNING_KEYS_MAX);
        if (streq(input, "-"))
                fd = dup(STDIN_FILENO);
        else
                fd = open(input, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", input);
        n = loop_read(fd, header, sizeof header);
        if (n != (ssize_t) sizeof header)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: truncated header.", input);
        if (payload_header_parse(header, &manifest_size, &e) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: %s", input, e.message);
        manifest = malloc(manifest_size);
        if (!manifest)
                return log_oom();
        if (loop_read(fd, manifest, manifest_size) != (ssize_t) manifest_size)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: truncated manifest.", input);
        if (payload_manifest_parse(manifest, manifest_size, &m, &e) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "%s: %s", input, e.message);
        blob = payload_manifest_blob_size(m);
        if (m->has_signatures_size)
                old_sig = m->signatures_size;

        /* Drop the old signature noop op (the one pointing at the old signature blob) before adding ours. */
        orig = m->noop_operations;
        orig_n = m->n_noop_operations;
        kept = calloc(orig_n + 1, sizeof *kept);
        if (!kept)
                return log_oom();
        for (size_t i = 0; i < orig_n; i++) {
                const InstallOperation *op = orig[i];
                bool is_sig = m->has_signatures_offset && op->has_data_offset && op->data_offset == m->signatures_offset &&
                              op->n_dst_extents == 1 && op->dst_extents[0]->start_block == PAYLOAD_SPARSE_HOLE;
                if (!is_sig)
                        kept[n_kept++] = orig[i];
        }
        r = load_keys(key_paths, n_keys, keys);
        if (r >= 0) {
                m->noop_operations = kept;
                m->n_noop_operations = n_kept;
                r = write_payload(m, fd, blob, keys, n_keys, output);
                m->noop_operations = orig;
                m->n_noop_operations = orig_n;
        }
        free_keys(keys, n_keys);
        if (r < 0)
                return r;
        /* The old signature blob is discarded; the input must end right after it. */
        _cleanup_free_ uint8_t *rest = malloc(old_sig + 1);
        if (!rest)
                return log_oom();
        n = loop_read(fd, rest, old_sig + 1);
        if (n != (ssize_t) old_sig) {
                (void) unlink(output);
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG),
                                       "%s: %zd bytes follow the operation data, the manifest says %" PRIu64
                                       " (signature blob); not signing it.", input, n, old_sig);
        }
        return 0;
}
