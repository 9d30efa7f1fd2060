/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The text parsers and editors on arbitrary bytes. The first byte picks the parser; for the diff the
 * rest is split at the first NUL into the two sides. */
#include "hardening-parse.h"
#include "hardening-fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *t;
        char *out = NULL, **l = NULL, **missing = NULL;
        char *wanted[] = {(char *)"mitigations=auto,nosmt", (char *)"tsx=auto", (char *)"nosmt", NULL};
        SudoersLine sl = {};

        if (size < 1 || size > 65536)
                return 0;
        t = (const char *)data + 1;
        size--;
        switch (data[0] % 8) {
        case 0:
                if (passwd_get_shell(t, size, "core", &out) > 0)
                        out = mfree(out);
                if (passwd_set_shell(t, size, "core", "/sbin/nologin", &out) >= 0)
                        out = mfree(out);
                (void)group_has_member(t, size, "wheel", "core");
                break;
        case 1:
                (void)sudoers_last_match(t, size, "core", "wheel:x:10:core\n", 16, data[0] & 0x80);
                break;
        case 2: {
                char *z = strndup(t, size);
                if (z && sudoers_line_parse(z, &sl) >= 0)
                        sudoers_line_done(&sl);
                free(z);
                break;
        }
        case 3:
                if (unit_file_get(t, size, "Socket", "SocketGroup", &out) > 0)
                        out = mfree(out);
                if (sysctl_file_get(t, size, "kernel.kptr_restrict", &out) > 0)
                        out = mfree(out);
                break;
        case 4:
                if (grub_linux_append_args(t, size, &l) >= 0 && kargs_missing(l, wanted, &missing) >= 0)
                        strv_free(missing);
                strv_free(l);
                break;
        case 5:
                if (selinux_config_set(t, size, "enforcing", data[0] & 0x80 ? "mcs" : NULL, &out) >= 0)
                        out = mfree(out);
                if (selinux_config_get(t, size, "SELINUXTYPE", &out) > 0)
                        out = mfree(out);
                break;
        case 6: {
                const char *nul = memchr(t, '\0', size);
                size_t a = nul ? (size_t)(nul - t) : size / 2;
                const char *b = nul ? nul + 1 : t + a;
                if (unified_diff(t, a, b, size - (size_t)(b - t), "a", "b", &out) >= 0)
                        out = mfree(out);
                break;
        }
        case 7: {
                char *z = strndup(t, size), *target;
                if (z && (target = strchr(z, ' '))) {
                        *target++ = '\0';
                        if (symlink_resolve_lexically(z, target, &out) >= 0)
                                out = mfree(out);
                }
                if (z && strv_split_words(z, &l) >= 0)
                        l = strv_free(l);
                free(z);
                break;
        }
        }
        return 0;
}
