/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/statvfs.h>
#include <time.h>

#include "fileio.h"
#include "hash.h"
#include "http.h"
#include "log.h"
#include "omaha-client-check.h"
#include "omaha-client-download.h"
#include "omaha-client-job.h"
#include "omaha-client-marker.h"
#include "omaha-client-peers.h"
#include "omaha-client-report.h"
#include "omaha-client-response.h"
#include "omaha-client-schedule.h"

static const char *strna(const char *s) {
        return s ?: "n/a";
}
/* A full payload carries the slot's blocks plus header, manifest and signatures; this is more than
 * enough room for the latter. */
#define PAYLOAD_OVERHEAD_MAX (64u * 1024u * 1024u)

typedef struct Job {
        OmahaConfig *c;
        OmahaState *s;
        StatusBox *box;
        bool interactive;
        uint32_t flags;
        OmahaStatusCode settle; /* where the status returns after this job */
        uint64_t size;          /* payload size, for progress */
        OmahaDownload *download;
} Job;

/* Every change goes to the daemon as one line; a daemon that went away does not stop the job. */
static void status_box_send(StatusBox *b) {
        int r;

        if (b->fd < 0)
                return;
        r = omaha_report_write_status(b->fd, &b->status);
        if (r < 0) {
                log_warning_errno(r, "Could not report the status to the daemon: %m");
                b->fd = -EBADF; /* not ours to close */
        }
}

static void status_box_set_code(StatusBox *b, OmahaStatusCode code) {
        b->status.code = code;
        if (code != OMAHA_STATUS_DOWNLOADING && code != OMAHA_STATUS_VERIFYING) {
                b->status.progress = 0;
                b->status.bytes_done = b->status.bytes_total = 0;
        }
        status_box_send(b);
}

static void status_set_progress(StatusBox *b, uint64_t done, uint64_t total) {
        b->status.bytes_done = done;
        b->status.bytes_total = total;
        b->status.progress = total > 0 ? MIN(1.0, (double) done / (double) total) : 0.0;
        status_box_send(b);
}

static void status_set_offer(StatusBox *b, const char *version, uint64_t size) {
        snprintf(b->status.new_version, sizeof b->status.new_version, "%s", version);
        b->status.new_size = size;
        status_box_send(b);
}

/* POSTs a request to the server. Returns 0 with the body of a 2xx answer, or < 0 with *ret_status the
 * HTTP status (0 = no answer). */
static int job_post(Job *j, const char *xml, char **ret_body, size_t *ret_size, long *ret_status) {
        HttpRequest req = {
                .url = j->c->server,
                .https_only = startswith(j->c->server, "https://"),
                .body = xml,
                .body_size = strlen(xml),
                .content_type = "text/xml",
                .ca_file = j->c->ca_file,
                .max_body_size = OMAHA_RESPONSE_MAX,
                .total_timeout_sec = 300,
        };
        HttpResponse resp = {};
        char *body = NULL;
        size_t size = 0;
        int r;

        log_debug("Omaha request:\n%s", xml);
        r = http_fetch(&req, &body, &size, &resp);
        *ret_status = resp.status;
        if (r < 0) {
                log_warning_errno(r, "Omaha request to %s failed: %s", j->c->server, resp.error[0] ? resp.error : "%m");
                http_response_done(&resp);
                return r;
        }
        http_response_done(&resp);
        if (*ret_status < 200 || *ret_status > 299) {
                free(body);
                log_warning("Omaha server %s answered HTTP status %ld.", j->c->server, *ret_status);
                return -EIO;
        }
        *ret_body = body;
        *ret_size = size;
        return 0;
}

/* Events are fire-and-forget (spec §1.6): a failure to deliver one is only logged. */
static void job_event(Job *j, const OmahaEvent *e) {
        _cleanup_free_ char *xml = NULL, *body = NULL;
        size_t size;
        long status;

        if (omaha_build_event(j->c, j->s, j->interactive, e, &xml) < 0) {
                log_oom();
                return;
        }
        if (job_post(j, xml, &body, &size, &status) < 0)
                log_warning("Could not deliver event %u/%u.", e->type, e->result);
}

_printf_(3, 4) static void job_fail(Job *j, int code, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        OmahaEvent e;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        log_error("Update failed (error %d): %s", code, msg);

        j->box->status.last_error = code;
        snprintf(j->box->status.last_error_message, sizeof j->box->status.last_error_message, "%s", msg);
        status_box_set_code(j->box, OMAHA_STATUS_REPORTING_ERROR_EVENT);

        e = omaha_event_error((uint32_t) code, j->flags);
        job_event(j, &e);
        if (j->settle == OMAHA_STATUS_IDLE)
                status_set_offer(j->box, "0.0.0", 0);
        status_box_set_code(j->box, j->settle);
}

static void on_apply_progress(uint64_t done, uint64_t total, void *userdata) {
        Job *j = userdata;
        /* The download's own count is what users expect to see; payload-writer's reply is the tick. */
        status_set_progress(j->box, j->download ? omaha_download_received(j->download) : done,
                            j->download ? j->size : total);
}

static void on_verify_progress(uint64_t done, uint64_t total, void *userdata) {
        Job *j = userdata;
        status_set_progress(j->box, done, total);
}

static int open_checkpoint(Job *j) {
        _cleanup_free_ char *p = omaha_state_checkpoint_path(j->s);
        int fd;

        if (!p)
                return -ENOMEM;
        fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", p);
        return fd;
}

static void forget_resume_point(Job *j, int checkpoint_fd) {
        if (checkpoint_fd >= 0)
                (void) ftruncate(checkpoint_fd, 0);
        (void) omaha_state_set_string(&j->s->resume_sha256, NULL);
        (void) omaha_state_set_string(&j->s->resume_version, NULL);
        (void) omaha_state_save(j->s);
}

static bool code_is_transfer_error(int code) {
        return code == OMAHA_ERROR_DOWNLOAD_TRANSFER || code == OMAHA_ERROR_GENERIC || code == 20 || code == 37;
}

/* Downloads and writes the payload into the inactive slot, resuming after transfer failures. On success
 * the slot stays open in *slot. Returns 0 or the Omaha error code (after job_fail). */
static int job_write_slot(Job *j, const OmahaResponse *resp, const uint8_t sha256[32], InactiveSlot *slot) {
        char msg[512] = "";
        size_t url_index = 0;
        unsigned url_failures = 0;

        for (unsigned attempt = 0;; attempt++) {
                _cleanup_close_ int checkpoint_fd = -EBADF, pipe_r = -EBADF;
                int pipefd[2], r, apply_code = 0;
                OmahaDownload d = {};
                uint64_t metadata_size = 0, blob_offset = 0;
                bool resume = false;

                inactive_slot_done(slot);
                r = peer_open_inactive(j->c->slots_address, slot, msg, sizeof msg);
                if (r < 0) {
                        job_fail(j, OMAHA_ERROR_INSTALL_DEVICE_OPEN, "%s", msg);
                        return OMAHA_ERROR_INSTALL_DEVICE_OPEN;
                }
                if (slot->size > 0 && resp->size > slot->size + PAYLOAD_OVERHEAD_MAX) {
                        job_fail(j, OMAHA_ERROR_PAYLOAD_SIZE_MISMATCH,
                                 "payload of %" PRIu64 " bytes cannot be for slot %s of %" PRIu64 " bytes", resp->size,
                                 slot->slot, slot->size);
                        return OMAHA_ERROR_PAYLOAD_SIZE_MISMATCH;
                }
                if (slot->kernel_fd < 0) {
                        job_fail(j, OMAHA_ERROR_KERNEL_DEVICE_OPEN,
                                 "slot-manager did not hand out the kernel file of slot %s", slot->slot);
                        return OMAHA_ERROR_KERNEL_DEVICE_OPEN;
                }

                checkpoint_fd = open_checkpoint(j);
                if (checkpoint_fd < 0) {
                        job_fail(j, 20, "cannot open the checkpoint file: %s", strerror(-checkpoint_fd));
                        return 20;
                }
                if (streq_ptr(j->s->resume_sha256, resp->sha256) &&
                    omaha_checkpoint_read(checkpoint_fd, &metadata_size, &blob_offset) >= 0 &&
                    metadata_size + blob_offset <= resp->size)
                        resume = true;
                else {
                        if (ftruncate(checkpoint_fd, 0) < 0) {
                                job_fail(j, 20, "cannot truncate the checkpoint file: %s", strerror(errno));
                                return 20;
                        }
                        (void) omaha_state_set_string(&j->s->resume_sha256, resp->sha256);
                        (void) omaha_state_set_string(&j->s->resume_version, resp->version);
                        (void) omaha_state_save(j->s);
                }
                if (resume)
                        log_info("Resuming the download of %s at byte %" PRIu64 " (metadata %" PRIu64 " bytes).",
                                 resp->version, metadata_size + blob_offset, metadata_size);

                if (pipe2(pipefd, O_CLOEXEC) < 0) {
                        job_fail(j, OMAHA_ERROR_DOWNLOAD_WRITE, "pipe: %s", strerror(errno));
                        return OMAHA_ERROR_DOWNLOAD_WRITE;
                }
                pipe_r = pipefd[0];
                d = (OmahaDownload) {
                        .config = j->c,
                        .url = resp->urls[url_index % resp->n_urls],
                        .size = resp->size,
                        .resume = resume,
                        .metadata_size = metadata_size,
                        .blob_offset = blob_offset,
                        .pipe_fd = pipefd[1],
                };
                memcpy(d.sha256, sha256, 32);
                log_info("Downloading %s into slot %s.", d.url, slot->slot);
                status_box_set_code(j->box, OMAHA_STATUS_DOWNLOADING);
                r = omaha_download_start(&d);
                if (r < 0) {
                        job_fail(j, OMAHA_ERROR_DOWNLOAD_WRITE, "cannot start the download: %s", strerror(-r));
                        return OMAHA_ERROR_DOWNLOAD_WRITE;
                }
                j->download = &d;
                r = peer_apply(j->c->payload_writer_address,
                               &(ApplyArgs) { .payload_fd = pipe_r,
                                              .target_fd = slot->usr_fd,
                                              .kernel_fd = slot->kernel_fd,
                                              .checkpoint_fd = checkpoint_fd,
                                              .target_offset = slot->offset,
                                              .target_size = slot->size,
                                              .expected_size = resp->size,
                                              .expected_sha256 = resp->sha256 },
                               on_apply_progress, j, &apply_code, msg, sizeof msg);
                pipe_r = safe_close(pipe_r);
                /* After a successful Apply the download has ended (payload-writer read up to EOF); after a
                 * failed one it is stopped. Either way its verdict is final once joined. */
                omaha_download_finish(&d);
                j->download = NULL;

                if (r >= 0 && d.error >= 0) {
                        status_set_progress(j->box, resp->size, resp->size);
                        return 0;
                }

                /* A verdict of our own on size or hash wins: the payload is not the announced one. */
                if (d.omaha_code == OMAHA_ERROR_PAYLOAD_SIZE_MISMATCH || d.omaha_code == OMAHA_ERROR_PAYLOAD_HASH_MISMATCH) {
                        forget_resume_point(j, checkpoint_fd);
                        job_fail(j, d.omaha_code, "%s", d.message);
                        return d.omaha_code;
                }
                /* The download broke off on its own (not because payload-writer stopped reading): payload-writer's
                 * "truncated" verdict is only the consequence. Retry, resuming from the checkpoint. */
                if (d.error < 0 && d.error != -EPIPE && d.error != -ECANCELED && code_is_transfer_error(d.omaha_code)) {
                        url_failures++;
                        if (url_failures >= MAX(resp->max_failure_count_per_url, 1u)) {
                                url_index++;
                                url_failures = 0;
                        }
                        if (attempt + 1 > j->c->max_resume_attempts) {
                                job_fail(j, d.omaha_code, "%s (gave up after %u attempts)", d.message, attempt + 1);
                                return d.omaha_code;
                        }
                        log_warning("%s; retrying in %" PRIu64 " s (attempt %u of %u).", d.message,
                                    j->c->retry_delay_sec, attempt + 2, j->c->max_resume_attempts + 1);
                        (void) usleep((useconds_t) MIN(j->c->retry_delay_sec, 3600u) * 1000000u);
                        continue;
                }
                if (r < 0) {
                        /* payload-writer refused the payload: the resume point is worthless now. */
                        if (apply_code != OMAHA_ERROR_DOWNLOAD_TRANSFER)
                                forget_resume_point(j, checkpoint_fd);
                        job_fail(j, apply_code ?: OMAHA_ERROR_DOWNLOAD_WRITE, "%s", msg);
                        return apply_code ?: OMAHA_ERROR_DOWNLOAD_WRITE;
                }
                job_fail(j, d.omaha_code ?: OMAHA_ERROR_DOWNLOAD_TRANSFER, "%s", d.message);
                return d.omaha_code ?: OMAHA_ERROR_DOWNLOAD_TRANSFER;
        }
}

/* Returns 0 on success or the Omaha error code (after job_fail). */
static int job_update(Job *j, const OmahaResponse *resp, const uint8_t sha256[32]) {
        _cleanup_(inactive_slot_done) InactiveSlot slot = { .usr_fd = -EBADF, .kernel_fd = -EBADF };
        OmahaEvent e;
        char msg[512] = "";
        int r;

        e = (OmahaEvent) { .type = OMAHA_EVENT_DOWNLOAD_STARTED, .result = OMAHA_RESULT_SUCCESS,
                           .errorcode = OMAHA_NO_ERRORCODE };
        job_event(j, &e);

        r = job_write_slot(j, resp, sha256, &slot);
        if (r != 0)
                return r;

        e.type = OMAHA_EVENT_DOWNLOAD_FINISHED;
        job_event(j, &e);

        status_box_set_code(j->box, OMAHA_STATUS_VERIFYING);
        r = peer_verify(j->c->verity_address, slot.usr_fd, slot.offset, slot.size, slot.kernel_fd,
                        on_verify_progress, j, msg, sizeof msg);
        if (r < 0) {
                job_fail(j, OMAHA_ERROR_NEW_ROOTFS_VERIFICATION, "%s", msg);
                return OMAHA_ERROR_NEW_ROOTFS_VERIFICATION;
        }

        status_box_set_code(j->box, OMAHA_STATUS_FINALIZING);
        r = peer_set_next(j->c->slots_address, slot.slot, msg, sizeof msg);
        if (r < 0) {
                job_fail(j, OMAHA_ERROR_SET_BOOTABLE, "%s", msg);
                return OMAHA_ERROR_SET_BOOTABLE;
        }

        /* What Flatcar's postinst and update_engine do after a good install (spec §5). */
        r = omaha_pref_set(j->s, "previous-version", j->c->version, strlen(j->c->version));
        if (r < 0)
                log_warning_errno(r, "Rollback detection will not work for this update: %m");
        (void) omaha_state_set_string(&j->s->staged_version, resp->version);
        (void) omaha_state_set_string(&j->s->staged_slot, slot.slot);
        j->s->payload_attempts = 0;
        j->s->backoff_expiry = 0;
        forget_resume_point(j, -EBADF);
        r = omaha_marker_write(j->c);
        if (r < 0)
                log_warning_errno(r, "Failed to write the update-completed marker: %m");
        {
                _cleanup_free_ char *rr = path_join_root(j->c->root, "/run/reboot-required");
                if (rr && write_string_file_atomic(rr, "", 0644) < 0)
                        log_debug("Could not create %s.", rr);
        }

        e = (OmahaEvent) { .type = OMAHA_EVENT_UPDATE_COMPLETE, .result = OMAHA_RESULT_SUCCESS,
                           .errorcode = OMAHA_NO_ERRORCODE };
        job_event(j, &e);
        log_info("Update to %s written to slot %s and verified; reboot to use it.", resp->version, slot.slot);
        status_box_set_code(j->box, OMAHA_STATUS_UPDATED_NEED_REBOOT);
        return 0;
}

static bool enough_free_space(Job *j) {
        struct statvfs sv;

        if (j->c->min_free_bytes == 0)
                return true;
        if (statvfs(j->s->dir, &sv) < 0)
                return true; /* cannot tell; the write will say */
        return (uint64_t) sv.f_bavail * sv.f_frsize >= j->c->min_free_bytes;
}

static void job_handle_offer(Job *j, const OmahaResponse *resp) {
        uint8_t sha256[32];
        bool staged = j->settle == OMAHA_STATUS_UPDATED_NEED_REBOOT;
        uint64_t now = (uint64_t) time(NULL);
        _cleanup_free_ char *sig = NULL;

        if (base64_decode(resp->sha256, sha256, sizeof sha256) != 32)
                return job_fail(j, OMAHA_ERROR_RESPONSE_INVALID,
                                "the postinstall action's sha256 \"%s\" is not the base64 of a SHA-256", resp->sha256);

        if (staged) {
                if (j->s->staged_version && omaha_version_compare(resp->version, j->s->staged_version) <= 0) {
                        log_info("Version %s is already staged; nothing to do before the reboot.", j->s->staged_version);
                        status_box_set_code(j->box, j->settle);
                        return;
                }
                log_notice("Version %s replaces the staged, not yet booted %s.", resp->version,
                           strna(j->s->staged_version));
        }
        if (omaha_state_is_rolled_back(j->s, resp->version))
                return job_fail(j, OMAHA_ERROR_IGNORED_PER_POLICY,
                                "version %s rolled back on this machine before; not installing it again",
                                resp->version);
        if (omaha_version_compare(resp->version, j->c->version) <= 0 && !j->c->allow_downgrade)
                return job_fail(j, OMAHA_ERROR_IGNORED_PER_POLICY,
                                "offered version \"%s\" is not newer than the running %s (set ALLOW_DOWNGRADE=yes "
                                "in omaha-client.conf to allow this)", resp->version, j->c->version);

        if (omaha_response_signature(resp, &sig) < 0)
                return job_fail(j, OMAHA_ERROR_GENERIC, "out of memory");
        if (!streq_ptr(sig, j->s->response_signature)) {
                /* A different payload: per-payload retry state starts over (spec §1.4 item 10). */
                j->s->payload_attempts = 0;
                j->s->backoff_expiry = 0;
                (void) omaha_state_set_string(&j->s->response_signature, sig);
                (void) omaha_state_save(j->s);
        }
        if (!resp->disable_payload_backoff && !j->interactive && now < j->s->backoff_expiry)
                return job_fail(j, OMAHA_ERROR_DEFERRED_FOR_BACKOFF,
                                "downloads of this payload are backed off for %" PRIu64 " more seconds",
                                j->s->backoff_expiry - now);
        if (!enough_free_space(j))
                return job_fail(j, 20, "less than %" PRIu64 " bytes free in %s", j->c->min_free_bytes, j->s->dir);

        status_set_offer(j->box, resp->version, resp->size);
        status_box_set_code(j->box, OMAHA_STATUS_UPDATE_AVAILABLE);
        j->size = resp->size;

        if (staged) {
                /* The staged slot is about to be overwritten: it is no longer a finished update. */
                _cleanup_free_ char *m = omaha_marker_path(j->c);
                if (m)
                        (void) unlink(m);
                (void) omaha_state_set_string(&j->s->staged_version, NULL);
                (void) omaha_state_save(j->s);
                j->settle = OMAHA_STATUS_IDLE;
        }

        if (job_update(j, resp, sha256) != 0) {
                j->s->payload_attempts++;
                if (!resp->disable_payload_backoff)
                        j->s->backoff_expiry = now + omaha_payload_backoff_sec(j->c, j->s->payload_attempts,
                                                                               omaha_random_u64());
                (void) omaha_state_save(j->s);
        }
}

static void job_check(Job *j, OmahaJobResult *ret) {
        _cleanup_(omaha_response_freep) OmahaResponse *resp = NULL;
        _cleanup_free_ char *xml = NULL, *body = NULL, *reason = NULL;
        bool rollback = false;
        size_t size = 0;
        int r, code = 0;

        status_box_set_code(j->box, OMAHA_STATUS_CHECKING_FOR_UPDATE);
        if (j->settle == OMAHA_STATUS_UPDATED_NEED_REBOOT)
                /* Asks whether something newer than the staged version exists; no event, the update was
                 * already reported. */
                r = omaha_aleph_version(j->c, j->s, &body) < 0
                            ? -ENOMEM
                            : omaha_request_build(j->c,
                                                  &(OmahaRequest) { .interactive = j->interactive, .ping = true,
                                                                    .updatecheck = true, .alephversion = body },
                                                  &xml);
        else
                r = omaha_build_updatecheck(j->c, j->s, j->interactive, true, &xml, &rollback);
        body = mfree(body);
        if (r < 0)
                return job_fail(j, OMAHA_ERROR_OMAHA_REQUEST, "cannot build the request: %s", strerror(-r));

        if (rollback) {
                log_warning("Rollback detected: still running %s after applying %s.", j->c->version,
                            strna(j->s->staged_version));
                if (j->s->staged_version)
                        (void) omaha_state_add_rolled_back(j->s, j->s->staged_version);
        }
        if (j->settle == OMAHA_STATUS_IDLE && j->s->staged_version) {
                /* No update is waiting for a reboot any more: it booted, or it rolled back. */
                (void) omaha_state_set_string(&j->s->staged_version, NULL);
                (void) omaha_state_set_string(&j->s->staged_slot, NULL);
        }
        (void) omaha_state_save(j->s);

        r = job_post(j, xml, &body, &size, &ret->http_status);
        /* No answer at all: update_engine tries again a few times before giving up (spec §1.1). */
        for (unsigned i = 0; r < 0 && ret->http_status == 0 && i < (j->interactive ? 1u : 3u) &&
                             j->c->no_network_retry_sec > 0; i++) {
                log_info("No answer from %s; trying again in %" PRIu64 " s.", j->c->server,
                         j->c->no_network_retry_sec);
                (void) usleep((useconds_t) MIN(j->c->no_network_retry_sec, 600u) * 1000000u);
                r = job_post(j, xml, &body, &size, &ret->http_status);
        }
        if (r < 0) {
                long st = ret->http_status;
                return job_fail(j, OMAHA_ERROR_HTTP_BASE + (int) (st < 0 || st >= 1000 ? 999 : st),
                                "update check at %s failed: %s", j->c->server,
                                st > 0 ? "HTTP error status" : "no response");
        }
        (void) omaha_pref_set(j->s, "full-response", body, size);

        r = omaha_response_parse(body, size, &resp, &code, &reason);
        if (r < 0)
                return job_fail(j, code, "bad response from %s: %s", j->c->server, strna(reason));
        ret->poll_interval = resp->poll_interval;

        j->box->status.last_checked_time = (int64_t) time(NULL);

        if (!resp->update) {
                log_info("No update available (running %s).", j->c->version);
                status_box_set_code(j->box, j->settle);
                return;
        }
        log_info("Update offered: %s (%" PRIu64 " bytes).", resp->version, resp->size);
        job_handle_offer(j, resp);
}

void omaha_job_run(const OmahaJobArgs *a, StatusBox *box, OmahaJobResult *ret) {
        _cleanup_(omaha_config_freep) OmahaConfig *c = NULL;
        _cleanup_(omaha_state_freep) OmahaState *s = NULL;
        Job j;
        int r;

        *ret = (OmahaJobResult) {};

        r = omaha_config_load(a->root, &c);
        if (r >= 0)
                r = omaha_config_set_addresses(c, a->slots_address, a->payload_writer_address, a->verity_address);
        if (r >= 0)
                r = omaha_state_load(c, &s);
        if (r < 0) {
                box->status.last_error = OMAHA_ERROR_GENERIC;
                snprintf(box->status.last_error_message, sizeof box->status.last_error_message,
                         "cannot load configuration or state: %s", strerror(-r));
                status_box_send(box);
                return;
        }
        if (c->server_disabled) {
                log_info("SERVER=%s: update checks are disabled.", c->server);
                return;
        }

        j = (Job) {
                .c = c,
                .s = s,
                .box = box,
                .interactive = a->interactive,
                .flags = omaha_config_error_flags(c),
                .settle = omaha_marker_exists(c) ? OMAHA_STATUS_UPDATED_NEED_REBOOT : OMAHA_STATUS_IDLE,
        };
        job_check(&j, ret);
}
