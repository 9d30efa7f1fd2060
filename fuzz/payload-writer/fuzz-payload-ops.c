/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/mman.h>

#include "log.h"
#include "payload-writer-apply.h"
#include "payload-writer-ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TARGET_MAX (16u * 1024u * 1024u)

static int memfd_with(const void *data, size_t size) {
        int fd = memfd_create("fuzz", MFD_CLOEXEC);
        if (fd < 0)
                abort();
        if (size > 0 && write(fd, data, size) != (ssize_t) size)
                abort();
        (void) lseek(fd, 0, SEEK_SET);
        return fd;
}

/* Keeps read-back of absurd sizes out of the fuzzer's time budget; apply itself bounds the rest. */
static bool plausible(const uint8_t *data, size_t size) {
        _cleanup_(payload_manifest_freep) Manifest *m = NULL;
        uint64_t manifest_size;
        PayloadError e = {};

        if (size < PAYLOAD_HEADER_SIZE || payload_header_parse(data, &manifest_size, &e) < 0 ||
            manifest_size > size - PAYLOAD_HEADER_SIZE)
                return true; /* rejected early anyway */
        if (payload_manifest_parse(data + PAYLOAD_HEADER_SIZE, manifest_size, &m, &e) < 0)
                return true;
        for (size_t i = 0; i < m->n_procedures; i++)
                if (m->procedures[i]->new_info && m->procedures[i]->new_info->size > TARGET_MAX)
                        return false;
        return true;
}

/* Input "OP" u8 block-size-log2, u16 LE length, InstallOperation protobuf, data: the operation runs
 * directly, past the hash check a whole payload would need to get through (decoders, extents, bounds). */
static int run_operation(const uint8_t *data, size_t size) {
        InstallOperation *op;
        PayloadTarget t = { .size = TARGET_MAX, .name = "fuzz" };
        PayloadError e = {};
        static OpDecoder *decoder; /* kept across inputs, as apply's threads keep theirs */
        OpOutput out = {};
        size_t op_len;
        uint32_t bs;

        if (size < 5)
                return 0;
        bs = 1u << (data[2] % 17); /* 1 .. 64 KiB */
        op_len = data[3] | (size_t) data[4] << 8;
        if (op_len > size - 5)
                return 0;
        op = chromeos_update_engine__install_operation__unpack(NULL, op_len, data + 5);
        if (!op)
                return 0;
        if (!decoder && op_decoder_new(&decoder) < 0)
                abort();
        t.fd = memfd_with(NULL, 0);
        if (payload_op_decode(op, bs, data + 5 + op_len, size - 5 - op_len, decoder, &out, "fuzz", &e) >= 0)
                (void) payload_op_write(op, bs, out.data, out.size, &t, "fuzz", &e);
        if (e.code != 0 && e.message[0] == '\0')
                abort();
        op_buffer_done(&out.buf);
        close(t.fd);
        chromeos_update_engine__install_operation__free_unpacked(op, NULL);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        PayloadApplyOptions o = PAYLOAD_APPLY_OPTIONS_INIT;
        PayloadResult res;
        PayloadError e = {};
        int input, target, kernel, pcr;

        log_set_target(LOG_TARGET_NULL);
        if (size >= 2 && data[0] == 'O' && data[1] == 'P')
                return run_operation(data, size);
        if (!plausible(data, size))
                return 0;
        input = memfd_with(data, size);
        target = memfd_with(NULL, 0);
        kernel = memfd_with(NULL, 0);
        pcr = memfd_with(NULL, 0);
        o.input_fd = input;
        o.target_fd = target;
        o.target_size = TARGET_MAX;
        o.kernel_fd = kernel;
        o.pcr_fd = pcr;
        o.insecure_no_signature = true;
        (void) payload_apply(&o, &res, &e);
        /* Every refusal names a spec code and says why. */
        if (e.code != 0 && e.message[0] == '\0')
                abort();
        close(input);
        close(target);
        close(kernel);
        close(pcr);
        return 0;
}
