/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <systemd/sd-event.h>

#include "hash.h"
#include "log.h"
#include "varlink-service.h"
#include "varlink.h"
#include "verity-check-varlink.h"
#include "verity-check-roothash.h"
#include "verity-check-tree.h"
#include "verity-varlink-idl.h"

#define IDLE_EXIT_USEC (30ULL * 1000000ULL)

/* Hashing a slot takes seconds; it runs on its own thread (which spreads the work over every CPU) and
 * reports through a pipe, so the event loop keeps serving other calls and streams progress. */
typedef struct Job {
        VarlinkCall *call;
        bool more;
        int data_fd;
        VeritySlot slot;
        uint8_t root[SHA256_DIGEST_SIZE];
        char root_hex[ROOT_HASH_HEX_LEN + 1];
        uint64_t hash_offset;
        int pipe[2];
        sd_event_source *source;
        pthread_t thread;
        bool thread_started;
        atomic_bool cancel;

        int r;
        VerityVerifyResult res;
        VerityFailure failure;
} Job;

typedef struct ProgressMsg {
        uint64_t done, total;
        bool final;
} ProgressMsg;

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        if (j->thread_started) {
                atomic_store(&j->cancel, true);
                pthread_join(j->thread, NULL);
        }
        sd_event_source_unref(j->source);
        safe_close(j->pipe[0]);
        safe_close(j->pipe[1]);
        safe_close(j->data_fd);
        varlink_call_unref(j->call);
        return mfree(j);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Job *, job_free);

static int job_progress(uint64_t done, uint64_t total, void *userdata) {
        Job *j = userdata;
        ProgressMsg m = { .done = done, .total = total };
        /* Non-blocking: a slow client loses intermediate updates, never the work. */
        (void) write(j->pipe[1], &m, sizeof m);
        return atomic_load(&j->cancel) ? -ECANCELED : 0;
}

static void *job_thread(void *userdata) {
        Job *j = userdata;
        ProgressMsg m = { .final = true };
        VerityVerifyOptions opts = {
                .hash_offset = j->hash_offset,
                .expected_root = j->root,
                .expected_root_size = sizeof j->root,
                .progress = j->more ? job_progress : NULL,
                .userdata = j,
                .cancel = &j->cancel,
        };

        j->r = verity_verify(&j->slot, &opts, &j->res, &j->failure);
        /* The final message must arrive: the pipe is drained by the loop, so block for it if need be. */
        int fl = fcntl(j->pipe[1], F_GETFL);
        if (fl >= 0)
                (void) fcntl(j->pipe[1], F_SETFL, fl & ~O_NONBLOCK);
        (void) write(j->pipe[1], &m, sizeof m);
        return NULL;
}

static int job_reply(Job *j) {
        VerityFailure *f = &j->failure;

        if (j->r >= 0) {
                log_info("Verified slot: root hash %s, %" PRIu64 " data blocks, hash offset %" PRIu64 ".", j->res.root_hash,
                         j->res.data_blocks, j->res.hash_offset);
                return varlink_call_reply(j->call,
                                          json_pack("{s:s, s:I, s:I, s:s}", "root_hash", j->res.root_hash, "data_blocks",
                                                    (json_int_t) j->res.data_blocks, "hash_offset",
                                                    (json_int_t) j->res.hash_offset, "hash_offset_source",
                                                    j->res.hash_offset_source));
        }

        log_warning("Verification failed: %s", f->message[0] ? f->message : strerror(-j->r));
        switch (f->kind) {
        case VERITY_FAILURE_CORRUPTED: {
                json_t *p = json_pack("{s:I, s:s, s:s}", "block", (json_int_t) f->block, "area",
                                      verity_area_to_string(f->area), "message", f->message);
                if (p && f->level >= 0)
                        json_object_set_new(p, "level", json_integer(f->level));
                return varlink_call_error(j->call, "io.switchyard.Verity.Corrupted", p);
        }
        case VERITY_FAILURE_ROOT_HASH_MISMATCH:
                return varlink_call_error(j->call, "io.switchyard.Verity.RootHashMismatch",
                                          json_pack("{s:s, s:s}", "expected", j->root_hex, "actual", f->actual_root));
        case VERITY_FAILURE_BAD_SUPERBLOCK:
                return varlink_call_error(j->call, "io.switchyard.Verity.BadSuperblock",
                                          json_pack("{s:s}", "reason", f->message));
        case VERITY_FAILURE_IO:
                return varlink_call_error(j->call, "io.switchyard.Verity.IOError", json_pack("{s:s}", "message", f->message));
        default:
                return varlink_call_error_errno(j->call, j->r);
        }
}

static int on_job_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Job *j = userdata;
        ProgressMsg m;

        for (;;) {
                ssize_t n = read(fd, &m, sizeof m);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != (ssize_t) sizeof m)
                        return 0;
                if (m.final)
                        break;
                if (j->more && !atomic_load(&j->cancel)) {
                        int r = varlink_call_notify(j->call,
                                                    json_pack("{s:I, s:I, s:i}", "blocks", (json_int_t) m.done,
                                                              "total_blocks", (json_int_t) m.total, "percent",
                                                              (int) (m.total ? m.done * 100 / m.total : 100)));
                        if (r == -ENOTCONN)
                                atomic_store(&j->cancel, true);
                }
        }

        pthread_join(j->thread, NULL);
        j->thread_started = false;
        (void) job_reply(j);
        job_free(j);
        return 0;
}

static void on_disconnect(VarlinkCall *c, void *userdata) {
        Job *j = userdata;
        log_info("Client left, stopping its verification.");
        atomic_store(&j->cancel, true);
}

static int method_verify(VarlinkCall *call, json_t *parameters, VarlinkCallFlags flags, void *userdata) {
        _cleanup_(job_freep) Job *j = NULL;
        const char *root_hash = NULL, *arch_s = NULL;
        int64_t data = -1, kernel = INT64_MIN; /* INT64_MIN: absent or null */
        uint64_t offset = 0, size = UINT64_MAX, hash_offset = UINT64_MAX;
        KernelArch arch = _KERNEL_ARCH_INVALID;
        sd_event *event = userdata;
        int fd, r;

        if (json_get_int(parameters, "data", &data) < 0 || data < 0)
                return varlink_call_error_invalid_parameter(call, "data");
        if (json_get_string(parameters, "root_hash", &root_hash) < 0 || (root_hash && root_hash_validate(root_hash) < 0))
                return varlink_call_error_invalid_parameter(call, "root_hash");
        if (json_get_int(parameters, "kernel", &kernel) < 0 || (kernel != INT64_MIN && kernel < 0))
                return varlink_call_error_invalid_parameter(call, "kernel");
        if (json_get_string(parameters, "arch", &arch_s) < 0 || (arch_s && (arch = kernel_arch_from_string(arch_s)) < 0))
                return varlink_call_error_invalid_parameter(call, "arch");
        if (json_get_uint(parameters, "hash_offset", &hash_offset) < 0 ||
            (hash_offset != UINT64_MAX && hash_offset % 512 != 0))
                return varlink_call_error_invalid_parameter(call, "hash_offset");
        if (json_get_uint(parameters, "offset", &offset) < 0)
                return varlink_call_error_invalid_parameter(call, "offset");
        if (json_get_uint(parameters, "size", &size) < 0 || size == 0)
                return varlink_call_error_invalid_parameter(call, "size");
        if (!root_hash == (kernel == INT64_MIN))
                return varlink_call_error(call, "io.switchyard.Verity.NoRootHash",
                                          json_pack("{s:s}", "reason", root_hash ? "give root_hash or kernel, not both"
                                                                                 : "give root_hash or kernel"));

        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->data_fd = j->pipe[0] = j->pipe[1] = -EBADF;
        j->more = flags & VARLINK_CALL_MORE;
        j->hash_offset = hash_offset;
        atomic_init(&j->cancel, false);

        if (kernel != INT64_MIN) {
                int kfd = varlink_call_peek_fd(call, (size_t) kernel);
                if (kfd < 0)
                        return varlink_call_error_invalid_parameter(call, "kernel");
                if (arch < 0 && kernel_detect_arch(kfd, &arch) < 0)
                        arch = kernel_arch_native();
                r = kernel_read_root_hash(kfd, arch, j->root_hex);
                if (r < 0) {
                        char reason[200];
                        snprintf(reason, sizeof reason, "%s at byte %" PRIu64 " of the kernel image (%s)",
                                 r == -ENODATA ? "no 64 lower-case hex characters" : "cannot read 64 bytes",
                                 kernel_arch_hash_offset(arch), kernel_arch_to_string(arch));
                        return varlink_call_error(call, "io.switchyard.Verity.NoRootHash", json_pack("{s:s}", "reason", reason));
                }
        } else
                for (size_t i = 0; i <= ROOT_HASH_HEX_LEN; i++)
                        j->root_hex[i] = (char) (root_hash[i] >= 'A' && root_hash[i] <= 'F' ? root_hash[i] + 32 : root_hash[i]);
        if (hex_decode(j->root_hex, j->root, sizeof j->root) < 0)
                return varlink_call_error_invalid_parameter(call, "root_hash");

        fd = varlink_call_peek_fd(call, (size_t) data);
        if (fd < 0)
                return varlink_call_error_invalid_parameter(call, "data");
        j->data_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (j->data_fd < 0)
                return varlink_call_error_errno(call, -errno);
        r = verity_slot_from_fd(j->data_fd, offset, size, &j->slot);
        if (r < 0) {
                char msg[200];
                snprintf(msg, sizeof msg, "the data descriptor %s",
                         r == -EBADFD   ? "is neither a regular file nor a block device"
                         : r == -ERANGE ? "is smaller than offset and size ask for"
                                        : strerror(-r));
                return varlink_call_error(call, "io.switchyard.Verity.IOError", json_pack("{s:s}", "message", msg));
        }

        if (pipe2(j->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return varlink_call_error_errno(call, -errno);
        r = sd_event_add_io(event, &j->source, j->pipe[0], EPOLLIN, on_job_io, j);
        if (r < 0)
                return varlink_call_error_errno(call, r);

        j->call = varlink_call_ref(call);
        varlink_call_set_disconnect_handler(call, on_disconnect, j);
        r = pthread_create(&j->thread, NULL, job_thread, j);
        if (r != 0) {
                varlink_call_set_disconnect_handler(call, NULL, NULL);
                return varlink_call_error_errno(call, -r);
        }
        j->thread_started = true;
        log_info("Verifying slot (%" PRIu64 " bytes) against root hash %s.", j->slot.size, j->root_hex);
        TAKE_PTR(j);
        return 0;
}

static const VarlinkMethod verity_methods[] = {
        { "Verify", method_verify },
};

static const VarlinkInterface verity_interface = {
        .name = "io.switchyard.Verity",
        .description = verity_varlink_idl,
        .methods = verity_methods,
        .n_methods = ELEMENTSOF(verity_methods),
};

int verity_varlink_run(const char *listen_path) {
        static const VarlinkServerInfo info = {
                .vendor = "switchyard",
                .product = "verity-check",
                .version = SWITCHYARD_VERSION,
                .url = "https://github.com/switchyard",
        };
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(varlink_server_freep) VarlinkServer *server = NULL;
        sd_event *loop = NULL;
        /* The handlers take the event loop as userdata: the thread's default one, which
         * varlink_service_open() sets up. SIGTERM/SIGINT are blocked there before any hashing thread
         * exists, so those threads inherit that. */
        int r = sd_event_default(&loop);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m");
        const VarlinkService svc = {
                .info = &info,
                .interface = &verity_interface,
                .userdata = loop,
                .listen_path = listen_path,
                .mode = 0600,
                .idle_usec = IDLE_EXIT_USEC,
        };
        r = varlink_service_open(&svc, &event, &server);
        sd_event_unref(loop); /* the same loop; event holds it now */
        if (r < 0)
                return r;
        r = sd_event_loop(event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}
