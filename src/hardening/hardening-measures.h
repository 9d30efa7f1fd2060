/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hardening measures: what each one wants on disk (computed from the root's current state),
 * what makes it not applicable, what conflicts with it, and how it reads in Butane. */

#include "config.h"
#include "hardening-fs.h"
#include "hardening-record.h"

typedef enum Profile {
        PROFILE_GUIDE,  /* Flatcar's hardening guide */
        PROFILE_STRICT, /* the guide plus the CIS/KSPP items of spec §2 that keep a container host working */
        _PROFILE_MAX,
        _PROFILE_INVALID = -EINVAL,
} Profile;

const char *profile_to_string(Profile p);
Profile profile_from_string(const char *s);

typedef struct Settings {
        Profile profile;
        char **measures;        /* selected measure names, in table order */
        char *user;             /* "core" */
        char *nologin_shell;    /* "/sbin/nologin" */
        char **sshd_listen;     /* empty: mask sshd.socket; else ListenStream= values */
        char **kernel_args;     /* the SMT arguments */
        char *grub_cfg;         /* Flatcar's OEM grub.cfg */
        bool grub_cfg_explicit; /* from GRUB_CFG=; otherwise /oem/grub.cfg is tried when /usr/share/oem is
                                   absent */
        char **modules;         /* for kernel-modules */
        char **sysctl_opt_in;   /* container-breaking sysctls the admin asked for */
        char **sysctl_exclude;
        char *selinux_type; /* NULL: keep the type the host has (mcs when there is none) */
} Settings;

void settings_done(Settings *s);
/* Fills s from a loaded hardening.conf (NULL = defaults); profile_override/measures_override come from
 * the command line (NULL = none). Unknown keys, measure names and bad values are errors naming them. */
int settings_load(Settings *s, const ConfFile *conf, const char *profile_override,
                  char *const *names_override);

typedef struct Change {
        char *path;
        Node want;
        bool edit;            /* edits a file the host owns (passwd, grub.cfg, selinux config) */
        bool replace_symlink; /* the host's node may be a symlink that this change replaces */
        char **undo;          /* for edits: how revert takes back just this edit (see RecordEntry) */
} Change;

typedef struct Plan {
        const struct Measure *measure;
        Change *changes;
        size_t n_changes;
        char **conflicts;     /* why the measure cannot be applied as is */
        char *not_applicable; /* why it does not apply to this root */
} Plan;

void plan_done(Plan *p);

typedef struct Context {
        int rootfd;
        const Settings *settings;
        const Record *record;
} Context;

/* A Butane document under construction. */
typedef struct ButaneFile {
        char *path, *contents;
        mode_t mode;
        bool overwrite;
} ButaneFile;

typedef struct ButaneUnit {
        char *name;
        bool mask;
        char *dropin_name, *dropin_contents;
} ButaneUnit;

typedef struct ButaneDoc {
        ButaneFile *files;
        size_t n_files;
        ButaneUnit *units;
        size_t n_units;
        char *user, *user_shell;
        char **kernel_args;
} ButaneDoc;

void butane_doc_done(ButaneDoc *d);
/* Renders the document as YAML for variant flatcar, version "1.0.0" or "1.1.0". */
int butane_doc_render(const ButaneDoc *d, const char *version, char **ret);

typedef struct Measure {
        const char *name;
        const char *description;
        Profile profile; /* the least strict profile that includes it */
        int (*plan)(Context *c, Plan *p);
        int (*butane)(const Settings *s, ButaneDoc *d);
} Measure;

extern const Measure measures[];
extern const size_t n_measures;
const Measure *measure_find(const char *name);
