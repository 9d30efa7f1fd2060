/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "fileio.h"
#include "hash.h"
#include "log.h"
#include "payload-writer-apply.h"
#include "payload-writer-generate.h"
#include "payload-writer-inspect.h"
#include "payload-writer-keys.h"
#include "payload-writer-varlink.h"

#define MAX_KEYS 16

static struct {
        const char *target, *kernel, *pcr_policy, *checkpoint, *expected_sha256, *listen, *root;
        int target_fd, kernel_fd, payload_fd;
        uint64_t target_offset, target_size, expected_size;
        char *keys[MAX_KEYS];
        size_t n_keys;
        char *signing_keys[MAX_KEYS];
        size_t n_signing_keys;
        bool insecure, json, no_progress, varlink;
        ResumeInput resume_input;
        bool resume_input_set;
        /* generate */
        const char *image, *output;
        uint64_t chunk_size;
        uint32_t block_size;
        Compression compression;
} arg = {
        .target_fd = -1,
        .kernel_fd = -1,
        .payload_fd = -1,
        .target_size = UINT64_MAX,
        .expected_size = UINT64_MAX,
        .chunk_size = 1024 * 1024,
        .block_size = 4096,
        .compression = COMPRESSION_BZ2,
};

static void help(void) {
        printf("Usage: payload-writer [OPTIONS] VERB [ARGS]\n\n"
               "Streams, verifies and writes CrAU update payloads; generates, signs and inspects them.\n\n"
               "Verbs:\n"
               "  apply [PAYLOAD|-]          Write a payload to --target (and --kernel)\n"
               "  generate --image=IMG       Write a full payload to --output\n"
               "  sign --key=K.pem IN        Sign (or re-sign) a payload into --output\n"
               "  inspect PAYLOAD            Show header, manifest, sizes, hashes and signatures\n"
               "  varlink                    Serve io.switchyard.PayloadWriter (socket activation or --listen;\n"
               "                             also --varlink)\n\n"
               "Apply options:\n"
               "  --target=PATH              /usr target: image file or block device\n"
               "  --target-fd=N              /usr target as an inherited file descriptor\n"
               "  --target-offset=BYTES      byte offset of the slot inside the target\n"
               "  --target-size=BYTES        writable bytes from the offset\n"
               "  --kernel=PATH              kernel target file (created, truncated)\n"
               "  --kernel-fd=N              kernel target as an inherited file descriptor\n"
               "  --pcr-policy=PATH          PCR policy target file\n"
               "  --payload-fd=N             read the payload from an inherited file descriptor\n"
               "  --checkpoint=PATH          checkpoint file for resuming (JSON, see the man page)\n"
               "  --resume-input=ranged|full what the input holds when resuming (default: full for a\n"
               "                             PAYLOAD path, ranged for stdin/--payload-fd)\n"
               "  --expected-size=BYTES      refuse unless the payload has this size (error 11)\n"
               "  --expected-sha256=BASE64   refuse unless the payload has this hash (error 10)\n"
               "  --keys=PATH                trusted public key PEM file or directory (repeatable; default\n"
               "                             " PAYLOAD_DEFAULT_KEY " and\n"
               "                             " PAYLOAD_DEFAULT_KEY_DIR "/)\n"
               "  --root=DIR                 look for the default keys below DIR\n"
               "  --insecure-no-signature    apply without checking the signature\n"
               "  --no-progress              no progress bar\n\n"
               "Generate/sign options:\n"
               "  --image=PATH --kernel=PATH --pcr-policy=PATH --output=PATH (-o)\n"
               "  --chunk-size=SIZE          bytes per operation (default 1M)\n"
               "  --block-size=BYTES         manifest block size (default 4096)\n"
               "  --compress=bz2|xz|none|best (default bz2; xz payloads need a client that knows REPLACE_XZ)\n"
               "  --key=PATH                 RSA private key PEM (repeatable, up to 3)\n\n"
               "  --json                     machine-readable output\n"
               "  -h --help  --version\n");
}

enum {
        ARG_VERSION = 0x100,
        ARG_TARGET,
        ARG_TARGET_FD,
        ARG_TARGET_OFFSET,
        ARG_TARGET_SIZE,
        ARG_KERNEL,
        ARG_KERNEL_FD,
        ARG_PCR_POLICY,
        ARG_PAYLOAD_FD,
        ARG_CHECKPOINT,
        ARG_RESUME_INPUT,
        ARG_EXPECTED_SIZE,
        ARG_EXPECTED_SHA256,
        ARG_KEYS,
        ARG_INSECURE,
        ARG_NO_PROGRESS,
        ARG_IMAGE,
        ARG_CHUNK_SIZE,
        ARG_BLOCK_SIZE,
        ARG_COMPRESS,
        ARG_KEY,
        ARG_JSON,
        ARG_LISTEN,
        ARG_VARLINK,
        ARG_ROOT,
};

static int parse_fd(const char *s, int *ret) {
        uint32_t v;
        if (safe_atou32(s, &v) < 0 || v > INT32_MAX)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid file descriptor number: %s", s);
        *ret = (int) v;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "target", required_argument, NULL, ARG_TARGET },
                { "target-fd", required_argument, NULL, ARG_TARGET_FD },
                { "target-offset", required_argument, NULL, ARG_TARGET_OFFSET },
                { "target-size", required_argument, NULL, ARG_TARGET_SIZE },
                { "kernel", required_argument, NULL, ARG_KERNEL },
                { "kernel-fd", required_argument, NULL, ARG_KERNEL_FD },
                { "pcr-policy", required_argument, NULL, ARG_PCR_POLICY },
                { "payload-fd", required_argument, NULL, ARG_PAYLOAD_FD },
                { "checkpoint", required_argument, NULL, ARG_CHECKPOINT },
                { "resume-input", required_argument, NULL, ARG_RESUME_INPUT },
                { "expected-size", required_argument, NULL, ARG_EXPECTED_SIZE },
                { "expected-sha256", required_argument, NULL, ARG_EXPECTED_SHA256 },
                { "keys", required_argument, NULL, ARG_KEYS },
                { "insecure-no-signature", no_argument, NULL, ARG_INSECURE },
                { "no-progress", no_argument, NULL, ARG_NO_PROGRESS },
                { "image", required_argument, NULL, ARG_IMAGE },
                { "output", required_argument, NULL, 'o' },
                { "chunk-size", required_argument, NULL, ARG_CHUNK_SIZE },
                { "block-size", required_argument, NULL, ARG_BLOCK_SIZE },
                { "compress", required_argument, NULL, ARG_COMPRESS },
                { "key", required_argument, NULL, ARG_KEY },
                { "json", no_argument, NULL, ARG_JSON },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "varlink", no_argument, NULL, ARG_VARLINK },
                { "root", required_argument, NULL, ARG_ROOT },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("payload-writer %s\n", SWITCHYARD_VERSION);
                        return 0;
                case ARG_TARGET: arg.target = optarg; break;
                case ARG_TARGET_FD: r = parse_fd(optarg, &arg.target_fd); if (r < 0) return r; break;
                case ARG_KERNEL_FD: r = parse_fd(optarg, &arg.kernel_fd); if (r < 0) return r; break;
                case ARG_PAYLOAD_FD: r = parse_fd(optarg, &arg.payload_fd); if (r < 0) return r; break;
                case ARG_TARGET_OFFSET:
                case ARG_TARGET_SIZE:
                case ARG_EXPECTED_SIZE: {
                        uint64_t v;
                        if (parse_size(optarg, &v) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid size: %s", optarg);
                        *(c == ARG_TARGET_OFFSET ? &arg.target_offset : c == ARG_TARGET_SIZE ? &arg.target_size
                                                                                              : &arg.expected_size) = v;
                        break;
                }
                case ARG_KERNEL: arg.kernel = optarg; break;
                case ARG_PCR_POLICY: arg.pcr_policy = optarg; break;
                case ARG_CHECKPOINT: arg.checkpoint = optarg; break;
                case ARG_RESUME_INPUT:
                        if (streq(optarg, "ranged"))
                                arg.resume_input = RESUME_INPUT_RANGED;
                        else if (streq(optarg, "full"))
                                arg.resume_input = RESUME_INPUT_FULL;
                        else
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--resume-input= takes ranged or full.");
                        arg.resume_input_set = true;
                        break;
                case ARG_EXPECTED_SHA256: {
                        uint8_t d[32];
                        if (base64_decode(optarg, d, sizeof d) != 32)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "--expected-sha256= takes a base64 SHA-256 (44 characters).");
                        arg.expected_sha256 = optarg;
                        break;
                }
                case ARG_KEYS:
                        if (arg.n_keys >= MAX_KEYS)
                                return log_error_errno(SYNTHETIC_ERRNO(E2BIG), "Too many --keys=.");
                        arg.keys[arg.n_keys++] = optarg;
                        break;
                case ARG_KEY:
                        if (arg.n_signing_keys >= MAX_KEYS)
                                return log_error_errno(SYNTHETIC_ERRNO(E2BIG), "Too many --key=.");
                        arg.signing_keys[arg.n_signing_keys++] = optarg;
                        break;
                case ARG_INSECURE: arg.insecure = true; break;
                case ARG_NO_PROGRESS: arg.no_progress = true; break;
                case ARG_IMAGE: arg.image = optarg; break;
                case 'o': arg.output = optarg; break;
                case ARG_CHUNK_SIZE:
                        if (parse_size(optarg, &arg.chunk_size) < 0 || arg.chunk_size == 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid chunk size: %s", optarg);
                        break;
                case ARG_BLOCK_SIZE:
                        if (safe_atou32(optarg, &arg.block_size) < 0 || arg.block_size == 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid block size: %s", optarg);
                        break;
                case ARG_COMPRESS:
                        arg.compression = compression_from_string(optarg);
                        if (arg.compression < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "--compress= takes bz2, xz, none or best, not %s.", optarg);
                        break;
                case ARG_JSON: arg.json = true; break;
                case ARG_LISTEN: arg.listen = optarg; break;
                case ARG_VARLINK: arg.varlink = true; break;
                case ARG_ROOT: arg.root = optarg; break;
                default:
                        return -EINVAL;
                }
        }
        return 1;
}

typedef struct Bar {
        bool tty;
        bool line_open; /* the cursor sits at the end of a bar line */
} Bar;

static void progress_bar(const PayloadProgress *p, void *userdata) {
        Bar *b = userdata;
        char bar[41];
        unsigned fill = p->percent * 40 / 100;

        if (!b->tty)
                return;
        memset(bar, '#', fill);
        memset(bar + fill, '.', 40 - fill);
        bar[40] = '\0';
        fprintf(stderr, "\r[%s] %3u%%  %" PRIu64 "/%" PRIu64 " ops  %.1f/%.1f MiB", bar, p->percent, p->operations,
                p->total_operations, p->bytes / 1048576.0, p->total_bytes / 1048576.0);
        b->line_open = p->operations != p->total_operations;
        if (!b->line_open)
                fputc('\n', stderr);
}

static int open_rw(const char *path, bool create, int code, const char *what) {
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | (create ? O_CREAT : 0), 0644);
        if (fd < 0)
                return log_error_errno(errno, "error %d (%s): cannot open the %s %s: %m", code,
                                       payload_error_code_to_string(code), what, path);
        return fd;
}

static int verb_apply(int argc, char **argv) {
        _cleanup_(trusted_keys_freep) TrustedKeys *keys = NULL;
        _cleanup_close_ int input = -EBADF, target = -EBADF, kernel = -EBADF, pcr = -EBADF, checkpoint = -EBADF;
        PayloadApplyOptions o = PAYLOAD_APPLY_OPTIONS_INIT;
        PayloadResult res = {};
        PayloadError e = {};
        const char *payload = argc > 1 ? argv[1] : "-";
        const char *hook;
        Bar bar = { .tty = !arg.no_progress && !arg.json && isatty(STDERR_FILENO) };
        bool from_path = false;
        int r;

        if (argc > 2)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "apply takes one payload argument.");
        if (!arg.target && arg.target_fd < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "apply needs --target=PATH or --target-fd=N.");
        if (!arg.insecure) {
                r = trusted_keys_load(arg.root, arg.keys, arg.n_keys, &keys);
                if (r < 0)
                        return r;
        }
        if (arg.payload_fd >= 0)
                input = arg.payload_fd;
        else if (streq(payload, "-"))
                input = dup(STDIN_FILENO);
        else {
                input = open(payload, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                from_path = true;
        }
        if (input < 0)
                return log_error_errno(errno, "error 9 (DownloadTransferError): cannot open payload %s: %m", payload);
        target = arg.target_fd >= 0 ? arg.target_fd : open_rw(arg.target, true, 7, "target");
        if (target < 0)
                return target;
        if (arg.kernel_fd >= 0)
                kernel = arg.kernel_fd;
        else if (arg.kernel) {
                kernel = open_rw(arg.kernel, true, 8, "kernel target");
                if (kernel < 0)
                        return kernel;
        }
        if (arg.pcr_policy) {
                pcr = open_rw(arg.pcr_policy, true, 42, "PCR policy target");
                if (pcr < 0)
                        return pcr;
        }
        if (arg.checkpoint) {
                checkpoint = open(arg.checkpoint, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
                if (checkpoint < 0)
                        return log_error_errno(errno, "error 20 (DownloadStateInitializationError): cannot open "
                                               "checkpoint %s: %m", arg.checkpoint);
        }

        o.input_fd = input;
        o.target_fd = target;
        o.target_offset = arg.target_offset;
        o.target_size = arg.target_size;
        o.kernel_fd = kernel;
        o.pcr_fd = pcr;
        o.checkpoint_fd = checkpoint;
        o.resume_input = arg.resume_input_set ? arg.resume_input : from_path ? RESUME_INPUT_FULL : RESUME_INPUT_RANGED;
        o.expected_size = arg.expected_size;
        o.expected_sha256 = arg.expected_sha256;
        o.keys = keys;
        o.insecure_no_signature = arg.insecure;
        o.progress = progress_bar;
        o.userdata = &bar;
        hook = getenv("SWITCHYARD_PAYLOAD_STOP_AFTER_OPS");
        if (hook && safe_atou64(hook, &o.stop_after_operations) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid SWITCHYARD_PAYLOAD_STOP_AFTER_OPS=%s", hook);

        r = payload_apply(&o, &res, &e);
        if (bar.line_open)
                fputc('\n', stderr);
        if (r < 0) {
                if (arg.json) {
                        json_t *j = json_pack("{s:i, s:s, s:s}", "code", e.code, "name",
                                              payload_error_code_to_string(e.code), "message", e.message);
                        json_dumpf(j, stdout, JSON_COMPACT);
                        fputc('\n', stdout);
                        json_decref(j);
                }
                return log_error_errno(r, "error %d (%s): %s", e.code, payload_error_code_to_string(e.code), e.message);
        }
        if (arg.checkpoint)
                (void) unlink(arg.checkpoint);

        char b64[SHA256_BASE64_SIZE], part[SHA256_BASE64_SIZE];
        base64_encode(res.payload_sha256, 32, b64);
        base64_encode(res.new_partition_sha256, 32, part);
        if (arg.json) {
                json_t *j = json_pack("{s:I, s:s, s:I, s:s, s:I, s:I}", "payload_size", (json_int_t) res.payload_size,
                                      "payload_sha256", b64, "new_partition_size", (json_int_t) res.new_partition_size,
                                      "new_partition_sha256", part, "operations", (json_int_t) res.operations,
                                      "resumed_at_operation", (json_int_t) res.resumed_at_operation);
                if (res.has_kernel)
                        json_object_set_new(j, "kernel_size", json_integer((json_int_t) res.kernel_size));
                json_dumpf(j, stdout, JSON_COMPACT);
                fputc('\n', stdout);
                json_decref(j);
        } else
                log_info("Applied payload (%" PRIu64 " bytes, SHA-256 %s): %" PRIu64 " operations, /usr %" PRIu64
                         " bytes verified%s.", res.payload_size, b64, res.operations, res.new_partition_size,
                         res.has_kernel ? ", kernel verified" : "");
        return 0;
}

static int verb_generate(int argc, char **argv) {
        GenerateOptions o = {
                .image = arg.image,
                .kernel = arg.kernel,
                .pcr_policy = arg.pcr_policy,
                .chunk_size = arg.chunk_size,
                .block_size = arg.block_size,
                .compression = arg.compression,
                .keys = arg.signing_keys,
                .n_keys = arg.n_signing_keys,
                .output = arg.output,
        };
        if (argc > 1)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "generate takes no arguments.");
        if (!arg.image || !arg.output)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "generate needs --image= and --output=.");
        return payload_generate(&o);
}

static int verb_sign(int argc, char **argv) {
        if (argc != 2)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "sign takes one payload argument.");
        if (!arg.output)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "sign needs --output=.");
        return payload_sign(argv[1], arg.output, arg.signing_keys, arg.n_signing_keys);
}

static int verb_inspect(int argc, char **argv) {
        _cleanup_(trusted_keys_freep) TrustedKeys *keys = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (argc != 2)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "inspect takes one payload argument.");
        r = trusted_keys_new(&keys);
        if (r < 0)
                return log_oom();
        for (size_t i = 0; i < arg.n_keys; i++) {
                r = trusted_keys_add_path(keys, arg.keys[i], false);
                if (r < 0)
                        return r;
        }
        fd = streq(argv[1], "-") ? dup(STDIN_FILENO) : open(argv[1], O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", argv[1]);
        return payload_inspect(fd, argv[1], keys, arg.json);
}

static int verb_varlink(int argc, char **argv) {
        return payload_writer_varlink_run(arg.listen, arg.root, arg.keys, arg.n_keys);
}

int main(int argc, char *argv[]) {
        static const struct {
                const char *name;
                int (*run)(int argc, char **argv);
        } verbs[] = {
                { "apply", verb_apply },     { "generate", verb_generate }, { "sign", verb_sign },
                { "inspect", verb_inspect }, { "varlink", verb_varlink },
        };
        int r;

        log_setup(argv[0]);
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (arg.varlink)
                return verb_varlink(0, NULL) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (optind >= argc) {
                log_error("No verb given; see --help.");
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name)) {
                        r = verbs[i].run(argc - optind, argv + optind);
                        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
                }
        log_error("Unknown verb %s; see --help.", argv[optind]);
        return EXIT_FAILURE;
}
