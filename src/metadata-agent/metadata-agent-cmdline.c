/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "metadata-agent-cmdline.h"

static char *strndup_trimmed(const char *s, size_t n) {
        while (n > 0 && strchr(" \t\r\n", *s)) {
                s++;
                n--;
        }
        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
                n--;
        return strndup(s, n);
}

int cmdline_get_value(const char *cmdline, const char *key, char **ret) {
        size_t klen = strlen(key);

        for (const char *p = cmdline;;) {
                size_t n = strcspn(p, " ");
                const char *eq = memchr(p, '=', n);

                if (eq && (size_t) (eq - p) == klen && strncmp(p, key, klen) == 0) {
                        char *v = strndup_trimmed(eq + 1, n - klen - 1);
                        if (!v)
                                return -ENOMEM;
                        if (*v) {
                                *ret = v;
                                return 1;
                        }
                        free(v);
                }
                if (p[n] == '\0')
                        break;
                p += n + 1;
        }
        *ret = NULL;
        return 0;
}

int cmdline_get_platform(const char *cmdline, char **ret) {
        static const char *const keys[] = { "flatcar.oem.id", "coreos.oem.id", "ignition.platform.id" };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                int r = cmdline_get_value(cmdline, keys[i], ret);
                if (r != 0)
                        return r;
        }
        *ret = NULL;
        return 0;
}

bool cmdline_has_ip_arg(const char *cmdline) {
        for (const char *p = cmdline;;) {
                p += strspn(p, " \t\n");
                if (*p == '\0')
                        return false;
                if (startswith(p, "ip="))
                        return true;
                p += strcspn(p, " \t\n");
        }
}
