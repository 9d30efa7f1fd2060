/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "hash.h"
#include "log.h"
#include "payload-writer-apply.h"
#include "payload-writer-interface.h"
#include "payload-writer-keys.h"
#include "payload-writer-varlink.h"
#include "varlink-service.h"
#include "varlink.h"

#define IDLE_USEC (30ULL * 1000000ULL)
#define ERROR_PAYLOAD "io.switchyard.PayloadWriter.PayloadError"
#define ERROR_BUSY "io.switchyard.PayloadWriter.Busy"

/* One Apply at a time runs on a worker thread, so the event loop keeps streaming progress (and noticing
 * a vanished caller) while the thread blocks on reads and writes. The thread publishes its latest
 * progress under a mutex and pokes an eventfd; the loop turns that into varlink replies. */
typedef struct Job {
        VarlinkCall *call;
        bool more;
        int fds[5]; /* payload, target, kernel, checkpoint, pcr */
        PayloadApplyOptions options;
        char *expected_sha256;
        TrustedKeys *keys;
        pthread_t thread;
        int eventfd;
        sd_event_source *source;
        pthread_mutex_t lock;
        PayloadProgress progress;
        bool progress_new, done;
        int cancel; /* atomic */
        int r;
        PayloadResult result;
        PayloadError error;
} Job;

typedef struct Service {
        sd_event *event;
        const char *root;
        char *const *key_paths;
        size_t n_keys;
        Job *job;
} Service;

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        sd_event_source_disable_unref(j->source);
        safe_close(j->eventfd);
        for (size_t i = 0; i < ELEMENTSOF(j->fds); i++)
                safe_close(j->fds[i]);
        varlink_call_unref(j->call);
        trusted_keys_free(j->keys);
        free(j->expected_sha256);
        pthread_mutex_destroy(&j->lock);
        return mfree(j);
}

static void job_progress(const PayloadProgress *p, void *userdata) {
        Job *j = userdata;
        uint64_t one = 1;
        pthread_mutex_lock(&j->lock);
        j->progress = *p;
        j->progress_new = true;
        pthread_mutex_unlock(&j->lock);
        (void) write(j->eventfd, &one, sizeof one);
}

static void *job_thread(void *userdata) {
        Job *j = userdata;
        uint64_t one = 1;
        int r = payload_apply(&j->options, &j->result, &j->error);
        pthread_mutex_lock(&j->lock);
        j->r = r;
        j->done = true;
        pthread_mutex_unlock(&j->lock);
        (void) write(j->eventfd, &one, sizeof one);
        return NULL;
}

static int job_finish(Service *s, Job *j) {
        char b64[SHA256_BASE64_SIZE], part[SHA256_BASE64_SIZE];
        json_t *reply;

        (void) pthread_join(j->thread, NULL);
        if (j->r < 0) {
                log_warning("Apply failed: error %d (%s): %s", j->error.code,
                            payload_error_code_to_string(j->error.code), j->error.message);
                (void) varlink_call_error(j->call, ERROR_PAYLOAD,
                                          json_pack("{s:i, s:s, s:s}", "code", j->error.code, "name",
                                                    payload_error_code_to_string(j->error.code), "message",
                                                    j->error.message));
        } else {
                base64_encode(j->result.payload_sha256, 32, b64);
                base64_encode(j->result.new_partition_sha256, 32, part);
                reply = json_pack("{s:I, s:s, s:I, s:s, s:I}", "new_partition_size",
                                  (json_int_t) j->result.new_partition_size, "new_partition_sha256", part,
                                  "payload_size", (json_int_t) j->result.payload_size, "payload_sha256", b64,
                                  "resumed_at_operation", (json_int_t) j->result.resumed_at_operation);
                if (reply && j->result.has_kernel)
                        json_object_set_new(reply, "kernel_size", json_integer((json_int_t) j->result.kernel_size));
                log_info("Applied payload %s (%" PRIu64 " bytes).", b64, j->result.payload_size);
                (void) varlink_call_reply(j->call, reply);
        }
        s->job = job_free(j);
        return 0;
}

static int on_job_event(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Service *s = userdata;
        Job *j = s->job;
        PayloadProgress p;
        uint64_t v;
        bool news, done;

        (void) read(fd, &v, sizeof v);
        pthread_mutex_lock(&j->lock);
        p = j->progress;
        news = j->progress_new;
        j->progress_new = false;
        done = j->done;
        pthread_mutex_unlock(&j->lock);
        if (news && j->more && !__atomic_load_n(&j->cancel, __ATOMIC_RELAXED)) {
                int r = varlink_call_notify(j->call,
                                            json_pack("{s:I, s:I, s:I, s:I, s:i}", "bytes", (json_int_t) p.bytes,
                                                      "total_bytes", (json_int_t) p.total_bytes, "operations",
                                                      (json_int_t) p.operations, "total_operations",
                                                      (json_int_t) p.total_operations, "percent", (int) p.percent));
                if (r == -ENOTCONN)
                        __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
        }
        if (done)
                return job_finish(s, j);
        return 0;
}

static void on_disconnect(VarlinkCall *c, void *userdata) {
        Job *j = userdata;
        log_info("Caller went away, stopping the apply after the current operation.");
        __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
}

/* fd parameter → our own fd, or -EBADF when absent; -EINVAL when malformed. */
static int take_fd_param(VarlinkCall *c, json_t *params, const char *name, bool required, int *ret) {
        int64_t idx = -1;
        int r = json_get_int(params, name, &idx), fd;
        if (r < 0 || (idx < 0 && required) || (idx != -1 && (idx < 0 || idx >= VARLINK_FDS_MAX)))
                return -EINVAL;
        if (idx < 0) {
                *ret = -EBADF;
                return 0;
        }
        fd = varlink_call_take_fd(c, (size_t) idx);
        if (fd < 0)
                return -EINVAL;
        *ret = fd;
        return 0;
}

static int method_apply(VarlinkCall *c, json_t *params, VarlinkCallFlags flags, void *userdata) {
        Service *s = userdata;
        Job *j;
        static const char *const fd_names[] = { "payload", "target", "kernel", "checkpoint", "pcr_policy" };
        const char *sha = NULL, *resume = NULL;
        int64_t expected_size = -1, target_offset = 0, target_size = -1;
        bool insecure = false;
        struct stat st;
        int r;

        if (s->job)
                return varlink_call_error(c, ERROR_BUSY, NULL);
        if (json_get_int(params, "expected_size", &expected_size) < 0 || expected_size < -1)
                return varlink_call_error_invalid_parameter(c, "expected_size");
        if (json_get_string(params, "expected_sha256", &sha) < 0) 
                return varlink_call_error_invalid_parameter(c, "expected_sha256");
        if (sha) {
                uint8_t d[32];
                if (base64_decode(sha, d, sizeof d) != 32)
                        return varlink_call_error_invalid_parameter(c, "expected_sha256");
        }
        if (json_get_bool(params, "insecure_no_signature", &insecure) < 0)
                return varlink_call_error_invalid_parameter(c, "insecure_no_signature");
        if (json_get_int(params, "target_offset", &target_offset) < 0 || target_offset < 0)
                return varlink_call_error_invalid_parameter(c, "target_offset");
        if (json_get_int(params, "target_size", &target_size) < 0 || target_size < -1)
                return varlink_call_error_invalid_parameter(c, "target_size");
        if (json_get_string(params, "resume_input", &resume) < 0 ||
            (resume && !streq(resume, "ranged") && !streq(resume, "full")))
                return varlink_call_error_invalid_parameter(c, "resume_input");

        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->eventfd = -EBADF;
        for (size_t i = 0; i < ELEMENTSOF(j->fds); i++)
                j->fds[i] = -EBADF;
        pthread_mutex_init(&j->lock, NULL);
        for (size_t i = 0; i < ELEMENTSOF(fd_names); i++) {
                r = take_fd_param(c, params, fd_names[i], i < 2, &j->fds[i]);
                if (r < 0) {
                        job_free(j);
                        return varlink_call_error_invalid_parameter(c, fd_names[i]);
                }
        }
        if (fstat(j->fds[1], &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
                job_free(j);
                return varlink_call_error_invalid_parameter(c, "target");
        }
        if (j->fds[2] >= 0 && (fstat(j->fds[2], &st) < 0 || !S_ISREG(st.st_mode))) {
                job_free(j);
                return varlink_call_error_invalid_parameter(c, "kernel");
        }
        if (!insecure) {
                r = trusted_keys_load(s->root, s->key_paths, s->n_keys, &j->keys);
                if (r < 0) {
                        job_free(j);
                        return varlink_call_error(c, ERROR_PAYLOAD,
                                                  json_pack("{s:i, s:s, s:s}", "code", PAYLOAD_PUBKEY_VERIFICATION_ERROR,
                                                            "name", payload_error_code_to_string(PAYLOAD_PUBKEY_VERIFICATION_ERROR),
                                                            "message", "the trusted key set cannot be loaded"));
                }
        }
        if (sha) {
                j->expected_sha256 = strdup(sha);
                if (!j->expected_sha256) {
                        job_free(j);
                        return -ENOMEM;
                }
        }
        j->options = PAYLOAD_APPLY_OPTIONS_INIT;
        j->options.input_fd = j->fds[0];
        j->options.target_fd = j->fds[1];
        j->options.kernel_fd = j->fds[2];
        j->options.checkpoint_fd = j->fds[3];
        j->options.pcr_fd = j->fds[4];
        j->options.target_offset = (uint64_t) target_offset;
        j->options.target_size = target_size < 0 ? UINT64_MAX : (uint64_t) target_size;
        j->options.expected_size = expected_size < 0 ? UINT64_MAX : (uint64_t) expected_size;
        j->options.expected_sha256 = j->expected_sha256;
        j->options.resume_input = resume && streq(resume, "full") ? RESUME_INPUT_FULL : RESUME_INPUT_RANGED;
        j->options.keys = j->keys;
        j->options.insecure_no_signature = insecure;
        j->options.cancel = &j->cancel;
        j->options.progress = job_progress;
        j->options.userdata = j;
        const char *hook = getenv("SWITCHYARD_PAYLOAD_STOP_AFTER_OPS");
        if (hook)
                (void) safe_atou64(hook, &j->options.stop_after_operations);
        j->more = flags & VARLINK_CALL_MORE;
        j->call = varlink_call_ref(c);

        j->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->eventfd < 0) {
                r = -errno;
                job_free(j);
                return r;
        }
        r = sd_event_add_io(s->event, &j->source, j->eventfd, EPOLLIN, on_job_event, s);
        if (r < 0) {
                job_free(j);
                return r;
        }
        varlink_call_set_disconnect_handler(c, on_disconnect, j);
        r = pthread_create(&j->thread, NULL, job_thread, j);
        if (r != 0) {
                job_free(j);
                return -r;
        }
        s->job = j;
        log_info("Apply started%s%s.", sha ? " for payload " : "", sha ?: "");
        return 0;
}

static const VarlinkMethod methods[] = {
        { "Apply", method_apply },
};

static const VarlinkInterface interface = {
        .name = "io.switchyard.PayloadWriter",
        .description = PAYLOAD_WRITER_INTERFACE_IDL,
        .methods = methods,
        .n_methods = ELEMENTSOF(methods),
};

int payload_writer_varlink_run(const char *listen, const char *root, char *const *key_paths, size_t n_keys) {
        _cleanup_(varlink_server_freep) VarlinkServer *server = NULL;
        sd_event *event = NULL;
        Service s = { .root = root, .key_paths = key_paths, .n_keys = n_keys };
        static const VarlinkServerInfo info = {
                .vendor = "switchyard",
                .product = "payload-writer",
                .version = SWITCHYARD_VERSION,
                .url = "https://github.com/switchyard",
        };
        const VarlinkService svc = {
                .info = &info,
                .interface = &interface,
                .userdata = &s,
                .listen_path = listen,
                .mode = 0600,
                .idle_usec = IDLE_USEC,
                .idle_when_listening = true,
        };
        int r;

        r = varlink_service_open(&svc, &event, &server);
        if (r < 0)
                return r;
        s.event = event;
        r = sd_event_loop(event);
        if (s.job) {
                bool done;
                __atomic_store_n(&s.job->cancel, 1, __ATOMIC_RELAXED);
                pthread_mutex_lock(&s.job->lock);
                done = s.job->done;
                pthread_mutex_unlock(&s.job->lock);
                if (!done) {
                        /* The thread may sit in a read() on a stalled payload stream; leave it to process
                         * exit. Its checkpoint only ever names durable work, so the next call resumes. */
                        log_warning("Stopping with an apply in progress.");
                        return r;
                }
                (void) pthread_join(s.job->thread, NULL);
                s.job = job_free(s.job);
        }
        server = varlink_server_free(server);
        sd_event_unref(event);
        return r;
}
