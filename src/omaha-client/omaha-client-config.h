/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Everything omaha-client reads before it talks to a server: Flatcar's update.conf chain (spec §2.1),
 * the release identity, machine and boot id, OEM id/version, and switchyard's own settings from
 * /etc/switchyard/omaha-client.conf (intervals, peer sockets, state directory, downgrade policy). */

#include "macro.h"

#define OMAHA_PRODUCTION_SERVER "https://public.update.flatcar-linux.net/v1/update/"
#define OMAHA_FLATCAR_APPID "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
#define OMAHA_UPDATER_VERSION "update_engine-0.4.10"

#define OMAHA_DEFAULT_STATE_DIR "/var/lib/switchyard/omaha-client"
#define OMAHA_DEFAULT_RUNTIME_DIR "/run/switchyard/omaha-client"
#define OMAHA_DEFAULT_SLOTS_ADDRESS "/run/switchyard/io.switchyard.Slots"
#define OMAHA_DEFAULT_PAYLOAD_WRITER_ADDRESS "/run/switchyard/io.switchyard.PayloadWriter"
#define OMAHA_DEFAULT_VERITY_ADDRESS "/run/switchyard/io.switchyard.Verity"
#define OMAHA_DEFAULT_ADDRESS "/run/switchyard/io.switchyard.Omaha"

typedef struct OmahaConfig {
        char *root; /* NULL or "/" = the host */

        /* update.conf chain */
        char *server;          /* never NULL */
        bool server_disabled;  /* SERVER=disabled or not an http(s) URL */
        char *group;           /* GROUP, default "stable" */
        char *machine_alias;   /* may be "" */
        char *download_user, *download_password; /* NULL when unset */
        char *version, *board, *appid;

        /* identity */
        char *machine_id; /* 32 lower-case hex */
        char *boot_id;    /* {8-4-4-4-12} lower-case */
        char *oem_id, *oem_version;
        char *arch;       /* uname -m */
        bool dev_mode;    /* /root/.dev_mode exists */

        /* /etc/switchyard/omaha-client.conf */
        bool allow_downgrade;
        char *ca_file;
        char *state_dir, *runtime_dir;
        char *slots_address, *payload_writer_address, *verity_address;
        uint64_t first_check_delay_sec, first_check_fuzz_sec;
        uint64_t check_interval_sec, check_fuzz_sec;
        uint64_t min_interval_sec, min_interval_fuzz_sec;
        uint64_t max_backoff_sec;
        uint64_t payload_backoff_unit_sec; /* one "day" of payload backoff (86400; shorter in tests) */
        uint64_t retry_delay_sec;          /* wait between resume attempts of an interrupted download */
        uint64_t no_network_retry_sec;     /* wait before asking again when the server did not answer */
        unsigned max_resume_attempts;
        uint64_t min_free_bytes;           /* reserve that must stay free on the slot (0 = none) */
} OmahaConfig;

int omaha_config_load(const char *root, OmahaConfig **ret);
OmahaConfig *omaha_config_free(OmahaConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(OmahaConfig *, omaha_config_free);

/* Overrides from the command line; NULL keeps what the config said. */
int omaha_config_set_addresses(OmahaConfig *c, const char *slots, const char *payload_writer, const char *verity);

/* The flag bits of spec §1.6 that go with every error code sent by this machine. */
uint32_t omaha_config_error_flags(const OmahaConfig *c);

/* Reads a systemd-style id file (machine-id / boot_id) below root. format_uuid selects
 * "{xxxxxxxx-xxxx-…}" (boot id) over 32 plain hex characters (machine id). */
int omaha_read_id128(const char *root, const char *path, bool format_uuid, char **ret);
