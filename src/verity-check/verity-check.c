/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sys/stat.h>
#include <time.h>

#include "fileio.h"
#include "hash.h"
#include "log.h"
#include "verity-check-status.h"
#include "verity-check-varlink.h"
#include "verity-check-roothash.h"
#include "verity-check-tree.h"

static uint64_t arg_offset = 0;
static uint64_t arg_size = UINT64_MAX;
static uint64_t arg_hash_offset = UINT64_MAX;
static uint64_t arg_data_blocks = UINT64_MAX;
static const char *arg_root_hash = NULL;
static const char *arg_kernel = NULL;
static KernelArch arg_arch = _KERNEL_ARCH_INVALID;
static bool arg_cmdline = false;
static const char *arg_cmdline_path = NULL;
static const char *arg_slot = NULL;
static const char *arg_esp = NULL;
static const char *arg_root = NULL;
static unsigned arg_threads = 0;
static const char *arg_salt = NULL;
static const char *arg_uuid = NULL;
static const char *arg_embed_into = NULL;
static const char *arg_listen = NULL;
static int arg_data_fd = -1;
static bool arg_json = false;
static int arg_progress = -1; /* -1: on a terminal */

static int help(void) {
        printf("%s [OPTIONS...] COMMAND ...\n\n"
               "Checks an A/B /usr slot against its dm-verity hash tree, formats trees like Flatcar's\n"
               "image build (veritysetup format 1), and finds the expected root hash.\n\n"
               "Commands:\n"
               "  verify [SLOT]           Check every data block of SLOT (file or block device;\n"
               "                          with --slot=a|b, default /dev/disk/by-partlabel/USR-A|B)\n"
               "  format SLOT             Write superblock and hash tree, print the root hash\n"
               "  root-hash               Print the expected root hash (--kernel, --cmdline or --slot)\n"
               "  status                  Is /usr verity-mapped, with which hash, does it match the kernel?\n"
               "  varlink                 Serve io.switchyard.Verity (socket activation or --listen)\n\n"
               "Slot:\n"
               "     --offset=BYTES       Slot starts this far into the file (default 0)\n"
               "     --size=BYTES         Slot size (default: to the end of the file or device)\n"
               "     --data-fd=FD         Use this open descriptor instead of a SLOT path\n"
               "     --hash-offset=BYTES  Superblock position (default: end of the filesystem at the\n"
               "                          start of the slot, else Flatcar's 1065345024)\n"
               "     --threads=N          Hashing threads (default: two per CPU)\n\n"
               "Expected root hash (verify, root-hash; exactly one):\n"
               "     --root-hash=HEX      Given directly\n"
               "     --kernel=FILE        Embedded in a kernel image (byte 64 amd64, 512 arm64)\n"
               "     --arch=ARCH          amd64 or arm64 (default: from the kernel header, else native)\n"
               "     --cmdline[=FILE]     verity.usrhash= of the kernel command line (/proc/cmdline)\n"
               "     --slot=a|b           The slot's kernel on the ESP: ESP/flatcar/vmlinuz-a|b\n"
               "     --esp=DIR            Where the ESP is mounted (default /boot)\n\n"
               "Format:\n"
               "     --data-blocks=N      Data blocks covered (default: Flatcar's 260094 in a 1 GiB\n"
               "                          slot, else the filesystem's size, else as many as fit)\n"
               "     --salt=HEX|-         Salt (default: 32 random bytes; - for none)\n"
               "     --uuid=UUID          Superblock UUID (default: random)\n"
               "     --embed-into=KERNEL  Also write the root hash into this kernel image\n\n"
               "Other:\n"
               "     --root=DIR           Look for /proc, /dev, /sys and the ESP below DIR (status)\n"
               "     --listen=PATH        varlink: listen on PATH instead of socket activation\n"
               "     --json               Machine-readable output\n"
               "     --no-progress        No progress bar\n"
               "  -h --help               Show this help\n"
               "     --version            Show the version\n",
               program_invocation_short_name);
        return 0;
}

enum {
        ARG_VERSION = 0x100,
        ARG_OFFSET,
        ARG_SIZE,
        ARG_HASH_OFFSET,
        ARG_DATA_BLOCKS,
        ARG_ROOT_HASH,
        ARG_KERNEL,
        ARG_ARCH,
        ARG_CMDLINE,
        ARG_SLOT,
        ARG_ESP,
        ARG_ROOT,
        ARG_THREADS,
        ARG_SALT,
        ARG_UUID,
        ARG_EMBED_INTO,
        ARG_LISTEN,
        ARG_DATA_FD,
        ARG_JSON,
        ARG_NO_PROGRESS,
};

static int parse_bytes(const char *opt, const char *s, uint64_t *ret) {
        int r = parse_size(s, ret);
        if (r < 0)
                return log_error_errno(r, "Invalid value for %s: '%s' (expected a byte count).", opt, s);
        return 0;
}

/* A root hash as given on the command line: sha256 for Flatcar, but sha1/sha512 trees exist too. */
static bool valid_digest_hex(const char *s) {
        size_t n = strlen(s);
        if (n != 40 && n != 64 && n != 128)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("0123456789abcdefABCDEF", s[i]))
                        return false;
        return true;
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "offset", required_argument, NULL, ARG_OFFSET },
                { "size", required_argument, NULL, ARG_SIZE },
                { "hash-offset", required_argument, NULL, ARG_HASH_OFFSET },
                { "data-blocks", required_argument, NULL, ARG_DATA_BLOCKS },
                { "root-hash", required_argument, NULL, ARG_ROOT_HASH },
                { "kernel", required_argument, NULL, ARG_KERNEL },
                { "arch", required_argument, NULL, ARG_ARCH },
                { "cmdline", optional_argument, NULL, ARG_CMDLINE },
                { "slot", required_argument, NULL, ARG_SLOT },
                { "esp", required_argument, NULL, ARG_ESP },
                { "root", required_argument, NULL, ARG_ROOT },
                { "threads", required_argument, NULL, ARG_THREADS },
                { "salt", required_argument, NULL, ARG_SALT },
                { "uuid", required_argument, NULL, ARG_UUID },
                { "embed-into", required_argument, NULL, ARG_EMBED_INTO },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "data-fd", required_argument, NULL, ARG_DATA_FD },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-progress", no_argument, NULL, ARG_NO_PROGRESS },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        return help();
                case ARG_VERSION:
                        puts("verity-check " SWITCHYARD_VERSION);
                        return 0;
                case ARG_OFFSET:
                        r = parse_bytes("--offset", optarg, &arg_offset);
                        if (r < 0)
                                return r;
                        break;
                case ARG_SIZE:
                        r = parse_bytes("--size", optarg, &arg_size);
                        if (r < 0)
                                return r;
                        break;
                case ARG_HASH_OFFSET:
                        r = parse_bytes("--hash-offset", optarg, &arg_hash_offset);
                        if (r < 0)
                                return r;
                        break;
                case ARG_DATA_BLOCKS:
                        r = safe_atou64(optarg, &arg_data_blocks);
                        if (r < 0 || arg_data_blocks == 0 || arg_data_blocks == UINT64_MAX)
                                return log_error_errno(r < 0 ? r : -EINVAL, "Invalid --data-blocks: '%s'.", optarg);
                        break;
                case ARG_ROOT_HASH:
                        if (!valid_digest_hex(optarg))
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "Invalid --root-hash: '%s' is not 64 hex characters "
                                                       "(sha256; 40 for sha1, 128 for sha512 trees).",
                                                       optarg);
                        arg_root_hash = optarg;
                        break;
                case ARG_KERNEL:
                        arg_kernel = optarg;
                        break;
                case ARG_ARCH:
                        arg_arch = kernel_arch_from_string(optarg);
                        if (arg_arch < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "Unknown --arch '%s' (amd64 or arm64).", optarg);
                        break;
                case ARG_CMDLINE:
                        arg_cmdline = true;
                        arg_cmdline_path = optarg;
                        break;
                case ARG_SLOT:
                        if (!streq(optarg, "a") && !streq(optarg, "b") && !streq(optarg, "A") && !streq(optarg, "B"))
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid --slot '%s' (a or b).", optarg);
                        arg_slot = optarg;
                        break;
                case ARG_ESP:
                        arg_esp = optarg;
                        break;
                case ARG_ROOT:
                        arg_root = optarg;
                        break;
                case ARG_THREADS: {
                        uint32_t t;
                        r = safe_atou32(optarg, &t);
                        if (r < 0 || t == 0 || t > 256)
                                return log_error_errno(r < 0 ? r : -EINVAL, "Invalid --threads '%s' (1-256).", optarg);
                        arg_threads = t;
                        break;
                }
                case ARG_SALT:
                        arg_salt = optarg;
                        break;
                case ARG_UUID:
                        arg_uuid = optarg;
                        break;
                case ARG_EMBED_INTO:
                        arg_embed_into = optarg;
                        break;
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case ARG_DATA_FD: {
                        uint32_t fd;
                        r = safe_atou32(optarg, &fd);
                        if (r < 0 || fd > INT32_MAX)
                                return log_error_errno(r < 0 ? r : -EINVAL, "Invalid --data-fd '%s'.", optarg);
                        arg_data_fd = (int) fd;
                        break;
                }
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_NO_PROGRESS:
                        arg_progress = 0;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        }
        if (arg_progress < 0)
                arg_progress = !arg_json && isatty(STDERR_FILENO);
        return 1;
}

static int print_json(json_t *v) {
        char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!s)
                return log_oom();
        puts(s);
        free(s);
        return 0;
}

static int progress_bar(uint64_t done, uint64_t total, void *userdata) {
        const char *what = userdata;
        unsigned pct = total ? (unsigned) (done * 100 / total) : 100;
        fprintf(stderr, "\r%s: %3u%% (%" PRIu64 "/%" PRIu64 " blocks)%s", what, pct, done, total, done == total ? "\n" : "");
        return 0;
}

static int read_kernel_hash(const char *path, KernelArch arch, char ret[ROOT_HASH_HEX_LEN + 1], const char **ret_arch) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        int r;

        if (fd < 0)
                return log_error_errno(errno, "Failed to open kernel image %s: %m", path);
        if (arch < 0 && kernel_detect_arch(fd, &arch) < 0)
                arch = kernel_arch_native();
        if (arch < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Cannot tell the architecture of %s, use --arch=.", path);
        r = kernel_read_root_hash(fd, arch, ret);
        if (r == -ENODATA)
                return log_error_errno(r, "No verity root hash in kernel %s: the 64 bytes at offset %" PRIu64
                                          " (%s) are not lower-case hex.",
                                       path, kernel_arch_hash_offset(arch), kernel_arch_to_string(arch));
        if (r < 0)
                return log_error_errno(r, "Failed to read the root hash at offset %" PRIu64 " of kernel %s: %s", kernel_arch_hash_offset(arch),
                                       path, r == -EIO ? "file too short" : strerror(-r));
        if (ret_arch)
                *ret_arch = kernel_arch_to_string(arch);
        return 0;
}

/* The expected hash from exactly one of the sources; ret_source describes it for output. */
static int expected_root_hash(char ret[VERITY_DIGEST_MAX * 2 + 1], char **ret_source) {
        unsigned n = !!arg_root_hash + !!arg_kernel + arg_cmdline + !!arg_slot;
        const char *arch = NULL;
        int r;

        if (n == 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "No expected root hash: give --root-hash=, --kernel=, --cmdline or --slot=.");
        if (n > 1)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "Give only one of --root-hash=, --kernel=, --cmdline and --slot=.");

        if (arg_root_hash) {
                for (size_t i = 0; i <= strlen(arg_root_hash); i++)
                        ret[i] = (char) (arg_root_hash[i] >= 'A' && arg_root_hash[i] <= 'F' ? arg_root_hash[i] + 32 : arg_root_hash[i]);
                *ret_source = strdup("argument");
        } else if (arg_kernel || arg_slot) {
                _cleanup_free_ char *path = NULL;
                if (arg_slot) {
                        _cleanup_free_ char *esp = path_join_root(arg_root, arg_esp ?: "/boot");
                        if (!esp || asprintf(&path, "%s/flatcar/vmlinuz-%c", esp, arg_slot[0] | 0x20) < 0)
                                return log_oom();
                } else if (!(path = strdup(arg_kernel)))
                        return log_oom();
                r = read_kernel_hash(path, arg_arch, ret, &arch);
                if (r < 0)
                        return r;
                if (asprintf(ret_source, "kernel:%s", path) < 0)
                        return log_oom();
        } else {
                _cleanup_free_ char *cmdline = NULL, *p = NULL;
                p = arg_cmdline_path ? strdup(arg_cmdline_path) : path_join_root(arg_root, "/proc/cmdline");
                if (!p)
                        return log_oom();
                r = read_full_file(p, 64 * 1024, &cmdline, NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to read kernel command line %s: %m", p);
                r = cmdline_get_usrhash(cmdline, ret);
                if (r == -ENOENT)
                        return log_error_errno(r, "No verity.usrhash= on the kernel command line (%s).", p);
                if (r == -EINVAL)
                        return log_error_errno(r, "verity.usrhash= on the kernel command line (%s) is not 64 hex characters.", p);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse the kernel command line: %m");
                if (asprintf(ret_source, "cmdline:%s", p) < 0)
                        return log_oom();
        }
        if (!*ret_source)
                return log_oom();
        return 0;
}

static int open_slot(const char *path, bool writable, VeritySlot *ret) {
        int r;

        if (arg_data_fd >= 0) {
                if (path)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Give either a SLOT path or --data-fd=, not both.");
                r = verity_slot_from_fd(arg_data_fd, arg_offset, arg_size, ret);
                if (r < 0)
                        return log_error_errno(r, "Failed to use fd %d as slot: %s", arg_data_fd,
                                               r == -EBADFD ? "not a regular file or block device" : strerror(-r));
                return 0;
        }
        if (!path)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Missing SLOT argument (file or block device).");
        r = verity_slot_open(path, writable, arg_offset, arg_size, ret);
        if (r == -EBUSY)
                return log_error_errno(r, "Refusing to format %s: it is in use (mounted or mapped).", path);
        if (r == -EBADFD)
                return log_error_errno(r, "Slot %s is neither a regular file nor a block device.", path);
        if (r == -ERANGE)
                return log_error_errno(r, "Slot %s is smaller than --offset/--size ask for.", path);
        if (r < 0)
                return log_error_errno(r, "Failed to open slot %s: %m", path);
        return 0;
}

static const char *failure_error_name(VerityFailureKind k) {
        switch (k) {
        case VERITY_FAILURE_BAD_SUPERBLOCK:
                return "BadSuperblock";
        case VERITY_FAILURE_ROOT_HASH_MISMATCH:
                return "RootHashMismatch";
        case VERITY_FAILURE_CORRUPTED:
                return "Corrupted";
        case VERITY_FAILURE_IO:
                return "IOError";
        default:
                return "Error";
        }
}

static int verb_verify(const char *path) {
        VeritySlot slot = { .fd = -EBADF };
        _cleanup_close_ int owned = -EBADF;
        _cleanup_free_ char *source = NULL;
        char hex[VERITY_DIGEST_MAX * 2 + 1];
        uint8_t root[VERITY_DIGEST_MAX];
        size_t root_size;
        VerityVerifyResult res;
        VerityFailure f;
        struct timespec t0, t1;
        int r;

        r = expected_root_hash(hex, &source);
        if (r < 0)
                return r;
        root_size = strlen(hex) / 2;
        if (hex_decode(hex, root, root_size) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Expected root hash %s is not hex.", hex);
        /* "verify --slot=b": the partition labelled USR-B, checked against the kernel of slot B. */
        _cleanup_free_ char *by_label = NULL;
        if (!path && arg_data_fd < 0 && arg_slot) {
                char label[] = "/dev/disk/by-partlabel/USR-A";
                label[strlen(label) - 1] = (char) (arg_slot[0] & ~0x20);
                by_label = path_join_root(arg_root, label);
                if (!by_label)
                        return log_oom();
                path = by_label;
        }
        r = open_slot(path, false, &slot);
        if (r < 0)
                return r;
        if (arg_data_fd < 0)
                owned = slot.fd;

        VerityVerifyOptions opts = {
                .hash_offset = arg_hash_offset,
                .expected_root = root,
                .expected_root_size = root_size,
                .threads = arg_threads,
                .progress = arg_progress ? progress_bar : NULL,
                .userdata = (void *) "Verifying",
        };
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = verity_verify(&slot, &opts, &res, &f);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (arg_progress)
                fputc('\r', stderr);
        if (r < 0) {
                if (arg_json) {
                        json_t *j = json_pack("{s:b, s:s, s:s, s:s}", "verified", 0, "error", failure_error_name(f.kind),
                                              "message", f.message, "expected_root_hash", hex);
                        if (!j)
                                return log_oom();
                        if (f.kind == VERITY_FAILURE_CORRUPTED || f.kind == VERITY_FAILURE_IO) {
                                json_object_set_new(j, "area", json_string(verity_area_to_string(f.area)));
                                json_object_set_new(j, "block", json_integer((json_int_t) f.block));
                                if (f.level >= 0) {
                                        json_object_set_new(j, "level", json_integer(f.level));
                                        json_object_set_new(j, "index", json_integer((json_int_t) f.index));
                                }
                        }
                        if (f.actual_root[0])
                                json_object_set_new(j, "actual_root_hash", json_string(f.actual_root));
                        print_json(j);
                        json_decref(j);
                }
                if (f.message[0])
                        return log_error_errno(r, "Verification of %s failed: %s", path ?: "slot", f.message);
                return log_error_errno(r, "Verification of %s failed: %m", path ?: "slot");
        }

        double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (arg_json) {
                json_t *j = json_pack("{s:b, s:s, s:s, s:I, s:i, s:I, s:s, s:s, s:s, s:s, s:f}", "verified", 1,
                                      "root_hash", res.root_hash, "root_hash_source", source, "data_blocks",
                                      (json_int_t) res.data_blocks, "data_block_size", (int) res.data_block_size,
                                      "hash_offset", (json_int_t) res.hash_offset, "hash_offset_source",
                                      res.hash_offset_source, "algorithm", res.algorithm, "salt", res.salt, "uuid",
                                      res.uuid, "seconds", secs);
                if (!j)
                        return log_oom();
                print_json(j);
                json_decref(j);
        } else
                printf("%s: verified, root hash %s (%s), %" PRIu64 " data blocks, hash offset %" PRIu64 " (%s)\n",
                       path ?: "slot", res.root_hash, source, res.data_blocks, res.hash_offset, res.hash_offset_source);
        return 0;
}

static int parse_uuid(const char *s, uint8_t ret[16]) {
        char hex[33];
        size_t n = 0;

        for (; *s; s++) {
                if (*s == '-')
                        continue;
                if (n >= 32)
                        return -EINVAL;
                hex[n++] = *s;
        }
        hex[n] = 0;
        return n == 32 ? hex_decode(hex, ret, 16) : -EINVAL;
}

static int verb_format(const char *path) {
        VeritySlot slot = { .fd = -EBADF };
        _cleanup_close_ int owned = -EBADF, kfd = -EBADF;
        _cleanup_free_ uint8_t *salt = NULL;
        size_t salt_size = 0;
        uint8_t uuid[16];
        KernelArch arch = arg_arch;
        VerityVerifyResult res;
        VerityFailure f;
        int r;

        if (arg_salt) {
                if (streq(arg_salt, "-"))
                        salt = malloc(1);
                else {
                        size_t l = strlen(arg_salt);
                        if (l % 2 != 0 || l / 2 > VERITY_SALT_MAX)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "Invalid --salt: %zu hex characters, expected an even number up to %u.", l,
                                                       2 * VERITY_SALT_MAX);
                        salt_size = l / 2;
                        salt = malloc(salt_size + 1);
                        if (salt && hex_decode(arg_salt, salt, salt_size) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid --salt: '%s' is not hex.", arg_salt);
                }
                if (!salt)
                        return log_oom();
        }
        if (arg_uuid && parse_uuid(arg_uuid, uuid) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid --uuid: '%s'.", arg_uuid);

        /* Check the kernel before touching the slot, so that a typo does not leave a half-done job. */
        if (arg_embed_into) {
                kfd = open(arg_embed_into, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
                if (kfd < 0)
                        return log_error_errno(errno, "Failed to open kernel image %s for writing: %m", arg_embed_into);
                if (arch < 0 && kernel_detect_arch(kfd, &arch) < 0)
                        arch = kernel_arch_native();
                if (arch < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Cannot tell the architecture of %s, use --arch=.",
                                               arg_embed_into);
                struct stat st;
                if (fstat(kfd, &st) < 0)
                        return log_error_errno(errno, "Failed to stat %s: %m", arg_embed_into);
                if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size < kernel_arch_hash_offset(arch) + ROOT_HASH_HEX_LEN)
                        return log_error_errno(SYNTHETIC_ERRNO(ENOSPC),
                                               "Kernel image %s is too short to hold a root hash at offset %" PRIu64 ".",
                                               arg_embed_into, kernel_arch_hash_offset(arch));
        }

        r = open_slot(path, true, &slot);
        if (r < 0)
                return r;
        if (arg_data_fd < 0)
                owned = slot.fd;

        VerityFormatOptions opts = {
                .data_blocks = arg_data_blocks,
                .hash_offset = arg_hash_offset,
                .salt = salt,
                .salt_size = salt_size,
                .uuid = arg_uuid ? uuid : NULL,
                .threads = arg_threads,
                .progress = arg_progress ? progress_bar : NULL,
                .userdata = (void *) "Hashing",
        };
        r = verity_format(&slot, &opts, &res, &f);
        if (r < 0) {
                if (f.message[0])
                        return log_error_errno(r, "Failed to format %s: %s", path ?: "slot", f.message);
                return log_error_errno(r, "Failed to format %s: %m", path ?: "slot");
        }

        if (kfd >= 0) {
                r = kernel_write_root_hash(kfd, arch, res.root_hash);
                if (r < 0)
                        return log_error_errno(r, "Failed to write the root hash into %s: %m", arg_embed_into);
        }

        if (arg_json) {
                json_t *j = json_pack("{s:s, s:I, s:i, s:I, s:s, s:s, s:s, s:s}", "root_hash", res.root_hash, "data_blocks",
                                      (json_int_t) res.data_blocks, "data_block_size", (int) res.data_block_size,
                                      "hash_offset", (json_int_t) res.hash_offset, "hash_offset_source",
                                      res.hash_offset_source, "algorithm", res.algorithm, "salt", res.salt, "uuid", res.uuid);
                if (!j)
                        return log_oom();
                json_object_set_new(j, "hash_size", json_integer((json_int_t) (res.end_offset - res.hash_offset)));
                json_object_set_new(j, "end_offset", json_integer((json_int_t) res.end_offset));
                if (kfd >= 0) {
                        json_object_set_new(j, "embedded_into", json_string(arg_embed_into));
                        json_object_set_new(j, "arch", json_string(kernel_arch_to_string(arch)));
                        json_object_set_new(j, "kernel_offset", json_integer((json_int_t) kernel_arch_hash_offset(arch)));
                }
                print_json(j);
                json_decref(j);
        } else {
                puts(res.root_hash);
                log_info("%s: %" PRIu64 " data blocks, hash offset %" PRIu64 " (%s), salt %s, uuid %s%s%s", path ?: "slot",
                         res.data_blocks, res.hash_offset, res.hash_offset_source, res.salt[0] ? res.salt : "-", res.uuid,
                         kfd >= 0 ? ", root hash written into " : "", kfd >= 0 ? arg_embed_into : "");
        }
        return 0;
}

static int verb_root_hash(void) {
        _cleanup_free_ char *source = NULL;
        char hex[VERITY_DIGEST_MAX * 2 + 1];
        int r;

        if (arg_root_hash)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "root-hash reads the hash from --kernel=, --cmdline or --slot=.");
        r = expected_root_hash(hex, &source);
        if (r < 0)
                return r;
        if (arg_json) {
                json_t *j = json_pack("{s:s, s:s}", "root_hash", hex, "source", source);
                if (!j)
                        return log_oom();
                print_json(j);
                json_decref(j);
        } else
                puts(hex);
        return 0;
}

static json_t *json_string_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

static int verb_status(void) {
        _cleanup_(verity_status_freep) VerityStatus *s = NULL;
        const char *compare;
        int matches = -1;
        int r;

        r = verity_status_collect(arg_root, arg_cmdline_path, arg_esp, arg_slot, &s);
        if (r < 0)
                return log_error_errno(r, "Failed to collect verity status: %m");

        /* What the booted kernel carries should be what /usr is mapped with (or at least what GRUB passed). */
        compare = s->mapped_root_hash ?: s->cmdline_hash;
        if (s->kernel_hash && compare)
                matches = streq(s->kernel_hash, compare);

        if (arg_json) {
                json_t *j = json_object();
                if (!j)
                        return log_oom();
                json_object_set_new(j, "device_mapper", json_boolean(s->device_mapper));
                json_object_set_new(j, "device_mapper_error", json_string_or_null(s->dm_error));
                json_object_set_new(j, "mapped", json_boolean(s->mapped));
                json_object_set_new(j, "verity", json_boolean(s->mapped && s->is_verity));
                json_object_set_new(j, "verified", json_boolean(s->mapped && s->is_verity && !s->corrupted));
                json_object_set_new(j, "corrupted", json_boolean(s->corrupted));
                json_object_set_new(j, "root_hash", json_string_or_null(s->mapped_root_hash));
                json_object_set_new(j, "data_device", json_string_or_null(s->mapped_data_device));
                if (s->mapped && s->is_verity) {
                        json_object_set_new(j, "hash_offset", json_integer((json_int_t) s->mapped_hash_offset));
                        json_object_set_new(j, "data_blocks", json_integer((json_int_t) s->mapped_data_blocks));
                }
                json_object_set_new(j, "cmdline_root_hash", json_string_or_null(s->cmdline_hash));
                json_object_set_new(j, "usr", json_string_or_null(s->usr_spec));
                json_object_set_new(j, "booted_slot", json_string_or_null(s->booted_slot));
                json_object_set_new(j, "kernel", json_string_or_null(s->kernel_path));
                json_object_set_new(j, "kernel_root_hash", json_string_or_null(s->kernel_hash));
                json_object_set_new(j, "kernel_error", json_string_or_null(s->kernel_error));
                json_object_set_new(j, "kernel_matches", matches < 0 ? json_null() : json_boolean(matches));
                print_json(j);
                json_decref(j);
                return 0;
        }

        if (!s->device_mapper)
                printf("/usr: not verity-mapped (%s)\n", s->dm_error);
        else if (s->dm_error)
                printf("/usr: unknown (%s)\n", s->dm_error);
        else if (!s->mapped)
                printf("/usr: not verity-mapped (no \"usr\" device-mapper device)\n");
        else if (!s->is_verity)
                printf("/usr: \"usr\" is a device-mapper device but not dm-verity\n");
        else
                printf("/usr: dm-verity on %s, %s, root hash %s\n", s->mapped_data_device ?: "?",
                       s->corrupted ? "CORRUPTED blocks seen" : "verified", s->mapped_root_hash ?: "?");
        printf("command line hash: %s\n", s->cmdline_hash ?: "(none)");
        printf("booted slot: %s%s%s%s%s\n", s->booted_slot ? "USR-" : "(unknown)", s->booted_slot ?: "",
               s->usr_spec ? " (" : "", s->usr_spec ?: "", s->usr_spec ? ")" : "");
        if (s->kernel_hash)
                printf("kernel %s hash: %s (%s)\n", s->kernel_path, s->kernel_hash,
                       matches < 0 ? "nothing to compare with" : matches ? "matches" : "DOES NOT MATCH");
        else if (s->kernel_error)
                printf("kernel: %s\n", s->kernel_error);
        return 0;
}

int main(int argc, char *argv[]) {
        const char *verb;
        int r;

        log_setup(argv[0]);
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        if (optind >= argc) {
                log_error("Missing command (verify, format, root-hash, status, varlink); see --help.");
                return EXIT_FAILURE;
        }
        verb = argv[optind++];
        const char *operand = optind < argc ? argv[optind++] : NULL;
        if (optind < argc) {
                log_error("Too many arguments: '%s'.", argv[optind]);
                return EXIT_FAILURE;
        }
        if (operand && !streq(verb, "verify") && !streq(verb, "format")) {
                log_error("Command %s takes no argument, got '%s'.", verb, operand);
                return EXIT_FAILURE;
        }

        if (streq(verb, "verify"))
                r = verb_verify(operand);
        else if (streq(verb, "format"))
                r = verb_format(operand);
        else if (streq(verb, "root-hash"))
                r = verb_root_hash();
        else if (streq(verb, "status"))
                r = verb_status();
        else if (streq(verb, "varlink"))
                r = verity_varlink_run(arg_listen);
        else {
                log_error("Unknown command '%s'; see --help.", verb);
                return EXIT_FAILURE;
        }
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
