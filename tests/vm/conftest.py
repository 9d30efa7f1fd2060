# SPDX-License-Identifier: LGPL-2.1-or-later
"""The VM proof: a Debian 12 guest under QEMU, laid out like Flatcar, updating itself with the suite.

Run on its own: /usr/bin/python3 -m pytest tests/vm
The images are built (debootstrap, Debian's kernel package, the suite built with meson for /usr)
and cached under $SWITCHYARD_VM_CACHE (default ~/.cache/switchyard-vm); see tools/vm/vmlib.py.
Console logs of failed scenarios stay under pytest's tmp dir; their paths are printed.
"""
import os
import shutil
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tools/vm"))
# Test helpers (omaha_server.py) from the same checkout the guest's suite is built from.
sys.path.insert(0, os.path.join(os.environ.get("SWITCHYARD_VM_SOURCE") or SOURCE, "tests/lib"))

import qemu  # noqa: E402
import vmlib  # noqa: E402


def _why_not():
    err = qemu.qemu_available()
    if err:
        return err
    if os.geteuid() != 0:
        return "building the guest image needs root (debootstrap, file ownership in the image)"
    for tool, pkg in [("debootstrap", "debootstrap"), ("mksquashfs", "squashfs-tools"),
                      ("veritysetup", "cryptsetup-bin"), ("mkfs.vfat", "dosfstools"), ("mcopy", "mtools"),
                      ("cpio", "cpio"), ("depmod", "kmod"), ("sfdisk", "fdisk"), ("mkfs.ext4", "e2fsprogs")]:
        if not shutil.which(tool, path=os.environ["PATH"] + ":/usr/sbin:/sbin"):
            return f"{tool} is missing (Debian package {pkg})"
    if not os.path.exists("/bin/busybox"):
        return "/bin/busybox is missing (Debian package busybox-static)"
    if os.environ.get("SWITCHYARD_VM_SKIP"):
        return "SWITCHYARD_VM_SKIP is set"
    return None


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def vm():
    """Everything built: disk with 1.0.0 in USR-A, kernel, initramfs, the suite's install tree."""
    why = _why_not()
    if why:
        pytest.skip(f"VM proof cannot run here: {why}")
    res = vmlib.build_all(("1.0.0",))
    res["programs"] = vmlib.suite_programs(res["suite"])
    res["accel"] = qemu.probe_accel(res["vmlinuz"])
    return res


def need(vm, *programs):
    missing = [p for p in programs if p not in vm["programs"]]
    if missing:
        pytest.skip("not in this build of the suite yet: " + ", ".join(missing))


@pytest.fixture
def guest(vm, request, tmp_path):
    """Makes guests (each on its own copy of the disk); shuts them down, keeps failed consoles."""
    made = []

    def make(server_port=None, append=""):
        g = qemu.Guest(str(tmp_path / f"guest{len(made)}"), vm["disk"], vm["vmlinuz"], vm["initramfs"],
                       server_port=server_port, append=append, accel=vm["accel"])
        made.append(g)
        return g

    yield make
    failed = getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed
    for g in made:
        if failed and g.running():
            # What the suite's services logged in the guest, next to the console log.
            try:
                journal = g.out("journalctl -b --no-pager -o short-monotonic -u 'omaha-client*' "
                                "-u 'slot-manager*' -u 'payload-writer*' -u 'verity-check*' | tail -n 400; "
                                "omaha-client status; slot-manager status", timeout=60)
                with open(os.path.join(g.workdir, "journal.txt"), "w") as f:
                    f.write(journal)
                print(f"\nguest journal of the suite's services: {g.workdir}/journal.txt")
            except Exception as e:  # noqa: BLE001
                print(f"\n(no guest journal: {e})")
        g.shutdown()
        if failed:
            # pytest keeps only its last few tmp dirs, and other suites run as the same user: keep
            # a copy of the logs in the cache too.
            keep = os.path.join(vmlib.cache_dir(), "failed", f"{request.node.name}-{int(time.time())}-{len(made)}")
            os.makedirs(keep, exist_ok=True)
            for n in os.listdir(g.workdir):
                if n.endswith((".log", ".txt")):
                    shutil.copy2(os.path.join(g.workdir, n), keep)
            print(f"\nserial console of the failed scenario: {g.console} (copy in {keep})")
        else:
            os.unlink(g.disk)  # keep the log, drop the 1.3 GiB (sparse) disk copy


BAD_HEALTH_FILES = {
    # A health check that fails: ordered before boot-complete.target and required by it, shipped in
    # the bad release's /usr (enabled there, so it exists only when that /usr is booted).
    "lib/systemd/system/switchyard-vm-health.service": """[Unit]
Description=switchyard VM proof: health check of the bad release (always fails)
DefaultDependencies=no
Before=boot-complete.target
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "SWITCHYARD-VM: health check failed" >/dev/kmsg; exit 1'
""",
    "lib/systemd/system/boot-complete.target.requires/switchyard-vm-health.service":
        ["symlink", "../switchyard-vm-health.service"],
}


@pytest.fixture(scope="session")
def release(vm):
    """release(version, bad=False) -> /usr image info with 'payload' made by payload-writer generate."""
    cache = {}

    def make(version, bad=False):
        need(vm, "payload-writer")
        k = (version, bad)
        if k not in cache:
            with vmlib.cache_lock():
                info = vmlib.build_usr(vm["base"], vm["kdir"], vm["suite"], vm["suite_hash"], version,
                                   BAD_HEALTH_FILES if bad else None)
                info["payload"] = vmlib.build_payload(info, vm["suite_build"])
            cache[k] = info
        return cache[k]

    return make


@pytest.fixture
def omaha():
    """omaha(payload, version) -> a running OmahaServer on 127.0.0.1 whose URLs name the guest's view."""
    try:
        from omaha_server import OmahaServer
    except ImportError:
        pytest.skip("tests/lib/omaha_server.py is not in this tree yet")
    servers = []

    def make(payload, version):
        srv = OmahaServer(payload=payload, version=version, host="127.0.0.1")
        srv.start()
        srv.codebase = f"http://{vmlib.GUEST_SERVER}/payloads/"
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()
