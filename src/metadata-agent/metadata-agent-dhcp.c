/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <time.h>

#include "fileio.h"
#include "log.h"
#include "metadata-agent-dhcp.h"

static int lookup_once(const char *dir, const char *key, char **ret) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;
        size_t kl = strlen(key);

        while (d && (de = readdir(d))) {
                _cleanup_free_ char *path = NULL, *data = NULL;

                if (de->d_name[0] == '.' || asprintf(&path, "%s/%s", dir, de->d_name) < 0)
                        continue;
                if (read_full_file(path, 64 * 1024, &data, NULL) < 0)
                        continue;
                for (char *p = data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
                                size_t l = strcspn(p + kl + 1, "\n");
                                char *v = strndup(p + kl + 1, l);
                                if (!v)
                                        return -ENOMEM;
                                if (*v) {
                                        *ret = v;
                                        return 0;
                                }
                                free(v);
                        }
        }
        return -ENOENT;
}

int dhcp_lease_lookup(const char *key, char **ret) {
        const char *dir = getenv("SWITCHYARD_METADATA_LEASES_DIR") ?: "/run/systemd/netif/leases";
        const char *e = getenv("SWITCHYARD_METADATA_DHCP_RETRIES");
        unsigned attempts = 60, delay_ms = 50;
        uint32_t v;
        int r = -ENOENT;

        if (e && safe_atou32(e, &v) >= 0 && v > 0 && v <= 1000)
                attempts = v;
        for (unsigned i = 0; i < attempts; i++) {
                struct timespec ts;

                r = lookup_once(dir, key, ret);
                if (r != -ENOENT)
                        return r;
                if (i + 1 == attempts)
                        break;
                ts = (struct timespec) { .tv_sec = delay_ms / 1000, .tv_nsec = (long) (delay_ms % 1000) * 1000000L };
                (void) nanosleep(&ts, NULL);
                delay_ms = MIN(delay_ms * 2, 500u);
        }
        return log_debug_errno(r, "No %s in the DHCP leases under %s.", key, dir);
}
