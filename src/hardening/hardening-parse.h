/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Pure text parsers and editors for the files the hardening measures read or change: passwd/group,
 * sudoers, unit-file drop-ins, Flatcar's OEM grub.cfg, /etc/selinux/config, plus a small unified diff.
 * None of them touches the file system; every input is treated as hostile. */

#include "macro.h"

/* NULL-terminated string vectors. */
char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
size_t strv_length(char *const *l);
int strv_push(char ***l, const char *s); /* copies s */
bool strv_contains(char *const *l, const char *s);
/* Splits on whitespace and commas; empty input gives an empty vector. */
int strv_split_words(const char *s, char ***ret);

/* ---- passwd / group ---- */

/* Finds user's line in passwd text. Returns 1 and the shell (copied) when found, 0 when not, -EBADMSG
 * when the user's line does not have the 7 fields of passwd(5). */
int passwd_get_shell(const char *text, size_t size, const char *user, char **ret_shell);
/* Returns a copy of text where user's shell field is shell; everything else byte-identical.
 * -ENOENT if the user has no line, -EBADMSG if that line is malformed, -EINVAL for a bad shell. */
int passwd_set_shell(const char *text, size_t size, const char *user, const char *shell, char **ret_text);
/* True if group's member list in group(5) text names user. */
bool group_has_member(const char *text, size_t size, const char *group, const char *user);

/* ---- sudoers ---- */

typedef enum SudoersLineType {
        SUDOERS_LINE_EMPTY,     /* blank or comment */
        SUDOERS_LINE_INCLUDE,   /* #include, #includedir, @include, @includedir */
        SUDOERS_LINE_DEFAULTS,  /* Defaults... */
        SUDOERS_LINE_ALIAS,     /* User_Alias, Runas_Alias, Host_Alias, Cmnd_Alias */
        SUDOERS_LINE_USER_SPEC, /* user_list host_list = ... */
        _SUDOERS_LINE_TYPE_MAX,
        _SUDOERS_LINE_TYPE_INVALID = -EINVAL,
} SudoersLineType;

typedef struct SudoersLine {
        SudoersLineType type;
        char **users;  /* user spec: the user list (names, %group, ALL, aliases), as written */
        bool nopasswd; /* user spec: the last tag on the (first) command is NOPASSWD */
        bool passwd;   /* user spec: an explicit PASSWD tag, or no tag at all */
} SudoersLine;

void sudoers_line_done(SudoersLine *l);
/* Parses one logical line (continuations already joined). -EBADMSG for a user spec without '='. */
int sudoers_line_parse(const char *line, SudoersLine *ret);
typedef enum SudoersMatch {
        SUDOERS_MATCH_NONE,
        SUDOERS_MATCH_PASSWD,
        SUDOERS_MATCH_NOPASSWD,
} SudoersMatch;
/* Walks sudoers text (joining backslash continuations) and returns what the last user spec that matches
 * user (by name, ALL, or %group with user listed in group_text) says, since sudo applies the last match.
 * With after_include only specs after the first include line count (those come after sudoers.d). */
SudoersMatch sudoers_last_match(const char *text, size_t size, const char *user, const char *group_text,
                                size_t group_size, bool after_include);
/* sudo skips sudoers.d names that end in '~' or contain '.'. */
bool sudoers_dropin_name_is_read(const char *name);

/* ---- systemd unit files ---- */

/* Finds the last assignment of key in [section]. Returns 1 and the value (copied; may be empty), or 0. */
int unit_file_get(const char *text, size_t size, const char *section, const char *key, char **ret_value);

/* ---- sysctl.d ---- */

/* The last value sysctl.d text assigns to key ("key = value", "key=value", optional '-' prefix; '/' and
 * '.' separators are equivalent). Returns 1 and the value, or 0. */
int sysctl_file_get(const char *text, size_t size, const char *key, char **ret_value);

/* ---- Flatcar OEM grub.cfg ---- */

/* Collects the kernel arguments that `set linux_append="$linux_append ..."` lines add, in order. Other
 * lines are ignored. */
int grub_linux_append_args(const char *text, size_t size, char ***ret_args);
/* Which of wanted are not in effect in args: an argument "k=v" is in effect when the last argument
 * with key k is "k=v"; a bare flag when it appears. */
int kargs_missing(char *const *args, char *const *wanted, char ***ret_missing);

/* ---- /etc/selinux/config ---- */

/* Returns a copy of text with SELINUX=mode (and SELINUXTYPE=type unless type is NULL), replacing the
 * existing assignments in place or appending them. */
int selinux_config_set(const char *text, size_t size, const char *mode, const char *type, char **ret_text);
/* The value of key (SELINUX, SELINUXTYPE) in config text, or NULL. */
int selinux_config_get(const char *text, size_t size, const char *key, char **ret_value);

/* ---- diff ---- */

/* Unified diff (3 lines of context) between a and b; empty string when equal. Inputs beyond
 * DIFF_LINES_MAX lines are shown as a whole-file replacement. */
#define DIFF_LINES_MAX 4000
int unified_diff(const char *a, size_t a_size, const char *b, size_t b_size, const char *label_a,
                 const char *label_b, char **ret);
