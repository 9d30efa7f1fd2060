"""The /proc a systemd unit gives its service (ProtectProc=, ProcSubset=), rebuilt with unshare(1)
and mount(8) so that tests can run the real programs in it."""
import os
import shutil

HIDEPID = ("invisible", "noaccess", "ptraceable")


def proc_mount_options(unit_text):
    """mount -t proc options equivalent to the unit's ProtectProc= and ProcSubset=."""
    opts = []
    for line in unit_text.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "ProtectProc" and value in HIDEPID:
            opts.append("hidepid=" + value)
        elif key == "ProcSubset" and value == "pid":
            opts.append("subset=pid")
    return ",".join(opts) or "defaults"


def unavailable():
    """Why the view cannot be built here, or None."""
    if os.geteuid() != 0:
        return "mounting a procfs in a new namespace needs root"
    if not shutil.which("unshare"):
        return "unshare(1) (util-linux) is not installed"
    return None


def prefix(options, kill_child=True):
    """argv prefix: own mount and pid namespaces with a procfs mounted with options over /proc.

    Only /proc is made private in the new namespace, not the whole tree (unshare's default), because
    in a chroot / is not a mount point and `--propagation private` fails there; /proc always is one.
    Either way the new procfs stays in the new namespace."""
    argv = ["unshare", "--mount", "--pid", "--fork", "--propagation", "unchanged"]
    if kill_child:
        argv.append("--kill-child")
    return argv + ["sh", "-c", 'mount --make-rprivate /proc && mount -t proc -o "$0" proc /proc && exec "$@"',
                   options]
