"""io.switchyard.Slots over varlink, called from the independent Python client (tests/lib/varlink.py),
including fd passing for OpenInactive and the peer-credential check."""
import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile

import pytest

import diskimage
varlink = pytest.importorskip("varlink", reason="tests/lib/varlink.py (varlink helper) is not on this branch yet")
from conftest import SOURCE_DIR, need_tool
from slot_helpers import (NO_LSAN_ENV, STRACE_CALLS, SlotManager, assert_only_gpt_writes, cgpt_fields,  # noqa: F401
                          image_digest, sm, small_image, strace_writes)

NOBODY = 65534


@pytest.fixture
def sockdir():
    # a directory an unprivileged client can reach (pytest's tmp_path is private to root)
    d = tempfile.mkdtemp(prefix="slots-")
    os.chmod(d, 0o755)
    yield d
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


class Service:
    def __init__(self, sm, sockdir, *extra, wrapper=()):
        self.path = os.path.join(sockdir, "io.switchyard.Slots")
        self.proc = subprocess.Popen([*wrapper, *sm.args("varlink", f"--listen={self.path}", *extra)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=NO_LSAN_ENV if wrapper else None)
        varlink.wait_for_socket(self.path, process=self.proc)

    def client(self):
        return varlink.Client(self.path)

    def call(self, method, params=None):
        with self.client() as c:
            return c.call(f"io.switchyard.Slots.{method}", params or {})

    def stop(self):
        # under a wrapper (strace) stop the service itself: strace detaches on SIGTERM, leaving it running
        try:
            children = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
        except OSError:
            children = []
        for pid in children:
            os.kill(int(pid), signal.SIGTERM)
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=30)
        return err


@pytest.fixture
def service(sm, sockdir):
    s = Service(sm, sockdir)
    yield s
    s.stop()


def error_of(service, method, params=None):
    with pytest.raises(varlink.VarlinkError) as e:
        service.call(method, params)
    return e.value


def test_get_status_matches_cli(sm, service):
    sm.boot("a")
    assert service.call("GetStatus") == sm.status()


def test_introspection(service):
    with service.client() as c:
        info = c.call("org.varlink.service.GetInfo", {})
        assert "io.switchyard.Slots" in info["interfaces"]
        desc = c.call("org.varlink.service.GetInterfaceDescription", {"interface": "io.switchyard.Slots"})
    assert "method OpenInactive(" in desc["description"]
    assert "method GetStatus()" in desc["description"]
    assert "method Repair()" in desc["description"]


def test_set_next_mark_good_rollback(sm, service):
    sm.boot("a")
    assert service.call("SetNext", {"slot": "USR-B"}) == {"slot": "b"}
    assert cgpt_fields(sm.image.path, 4) == (2, 1, 0)
    sm.run("boot-select")
    sm.boot("b")
    assert service.call("MarkGood") == {"slot": "b"}
    assert cgpt_fields(sm.image.path, 4) == (2, 0, 1)
    assert service.call("Rollback") == {"slot": "a"}
    assert service.call("GetStatus")["next"] == "a"


def test_errors(sm, service):
    sm.boot("a")
    before = image_digest(sm.image.path)
    e = error_of(service, "SetNext", {"slot": "a"})
    assert e.name == "io.switchyard.Slots.SlotBooted" and "booted slot" in e.parameters["message"]
    e = error_of(service, "SetNext", {"slot": "c"})
    assert e.name == "io.switchyard.Slots.NoSuchSlot" and e.parameters == {"slot": "c"}
    assert error_of(service, "SetNext", {}).name == "org.varlink.service.InvalidParameter"
    assert error_of(service, "SetNext", {"slot": 3}).name == "org.varlink.service.InvalidParameter"
    assert error_of(service, "SetNext", {"slot": "b", "x": 1}).name == "org.varlink.service.InvalidParameter"
    e = error_of(service, "Rollback")
    assert e.name == "io.switchyard.Slots.RollbackRefused" and "never marked good" in e.parameters["message"]
    assert error_of(service, "Frobnicate").name == "org.varlink.service.MethodNotFound"
    assert image_digest(sm.image.path) == before
    # still serving
    assert service.call("GetStatus")["booted"] == "a"


def test_repair(sm, service):
    """Repair over varlink: what it found and rewrote; nothing written when intact; both copies damaged is
    a DiskError that writes nothing; the service keeps serving."""
    sectors = sm.image.size // 512
    pristine = image_digest(sm.image.path)
    assert service.call("Repair") == {
        "disk": str(sm.image.path), "found": {"primary": "ok", "backup": "ok", "in_use": "primary"},
        "rewritten": [], "sectors_written": 0, "written": False}
    assert image_digest(sm.image.path) == pristine

    with open(sm.image.path, "r+b") as f:  # backup entries: USR-B's name
        f.seek((sectors - 33) * 512 + 3 * 128 + 60)
        f.write(b"X")
    reply = service.call("Repair")
    assert reply["found"]["primary"] == "ok" and "CRC32" in reply["found"]["backup"]
    assert reply["rewritten"] == ["backup"] and reply["sectors_written"] == 33 and reply["written"] is True
    assert image_digest(sm.image.path) == pristine
    assert error_of(service, "Repair", {"x": 1}).name == "org.varlink.service.InvalidParameter"

    for offset in (512 + 40, (sectors - 1) * 512 + 40):
        with open(sm.image.path, "r+b") as f:
            f.seek(offset)
            f.write(b"\xff")
    before = image_digest(sm.image.path)
    e = error_of(service, "Repair")
    assert e.name == "io.switchyard.Slots.DiskError" and "both GPT copies are damaged" in e.parameters["message"]
    assert image_digest(sm.image.path) == before
    assert error_of(service, "GetStatus").name == "io.switchyard.Slots.DiskError"


def test_open_inactive_passes_fds(sm, service):
    sm.boot("a")
    flatcar = sm.esp / "flatcar"
    flatcar.mkdir()
    (flatcar / "vmlinuz-a").write_bytes(b"booted kernel")
    (flatcar / "vmlinuz-b").write_bytes(b"old kernel b, longer than the new one")
    sm.run("set-next", "b")  # a stale pending update: must become unbootable before it is rewritten

    with service.client() as c:
        reply = c.call("io.switchyard.Slots.OpenInactive", {})
        fds = list(c.received_fds)
        c.received_fds = []
    try:
        b = sm.image.usr_b
        assert (reply["slot"], reply["label"], reply["partuuid"]) == ("b", "USR-B", diskimage.USR_B_PARTUUID)
        assert (reply["offset"], reply["size"]) == (b.offset, b.size)
        usr, kernel = fds[reply["usr"]], fds[reply["kernel"]]
        st, img = os.fstat(usr), os.stat(sm.image.path)
        assert (st.st_dev, st.st_ino) == (img.st_dev, img.st_ino)
        assert fcntl.fcntl(usr, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
        pattern = b"new usr " * 512
        os.pwrite(usr, pattern, reply["offset"])
        os.pwrite(usr, b"end", reply["offset"] + reply["size"] - 3)
        with open(sm.image.path, "rb") as f:
            f.seek(b.offset)
            assert f.read(len(pattern)) == pattern
        assert os.fstat(kernel).st_size == 0
        os.write(kernel, b"new kernel b")
    finally:
        for fd in fds:
            os.close(fd)
    assert (flatcar / "vmlinuz-b").read_bytes() == b"new kernel b"
    assert (flatcar / "vmlinuz-a").read_bytes() == b"booted kernel"
    # the slot being written is not bootable; the booted one is the boot loader's choice; GPT still intact
    assert cgpt_fields(sm.image.path, 4) == (0, 0, 0)
    assert cgpt_fields(sm.image.path, 3) == (1, 0, 1)
    st = service.call("GetStatus")
    assert st["next"] == "a" and st["gpt"]["backup"] == "ok"


def test_open_inactive_without_kernel_and_esp_missing(sm, service, tmp_path):
    sm.boot("b")
    sm.run("set", "b", "--priority=2", "--successful=1")
    with service.client() as c:
        reply = c.call("io.switchyard.Slots.OpenInactive", {"kernel": False})
        assert reply["slot"] == "a" and reply["kernel"] is None and len(c.received_fds) == 1
        assert reply["offset"] == sm.image.usr_a.offset
    # kernel requested but no ESP: a clear error
    sm.esp.rmdir()
    e = error_of(service, "OpenInactive")
    assert e.name == "io.switchyard.Slots.NoESP" and str(sm.esp) in e.parameters["message"]


def test_open_inactive_refusals(sm, service):
    before = image_digest(sm.image.path)
    e = error_of(service, "OpenInactive")
    assert e.name == "io.switchyard.Slots.BootedUnknown"
    # booted b is not bootable by itself (priority 0): clearing a would leave nothing to boot
    sm.boot("b")
    e = error_of(service, "OpenInactive")
    assert e.name == "io.switchyard.Slots.NotBootable" and "mark it good first" in e.parameters["message"]
    assert image_digest(sm.image.path) == before


def run_as_nobody(path, method, params, gid=NOBODY):
    script = (
        "import json, sys, varlink\n"
        "try:\n"
        f"    with varlink.Client({path!r}) as c:\n"
        f"        r = c.call({method!r}, {params!r})\n"
        "        print(json.dumps({'reply': r, 'fds': len(c.received_fds)}))\n"
        "except varlink.VarlinkError as e:\n"
        "    print(json.dumps({'error': e.name}))\n")
    env = dict(os.environ, PYTHONPATH=str(SOURCE_DIR / "tests" / "lib"))
    try:
        p = subprocess.run([sys.executable, "-c", script], user=NOBODY, group=gid, extra_groups=[], env=env,
                           capture_output=True, text=True, timeout=60)
    except PermissionError as e:
        # e.g. a chroot whose top directory is mode 0700: nobody cannot reach python at all.
        pytest.skip(f"uid {NOBODY} cannot run {sys.executable} on this machine: {e}")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_unauthorized_callers_refused(sm, service):
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another user")
    sm.boot("a")
    before = image_digest(sm.image.path)
    assert run_as_nobody(service.path, "io.switchyard.Slots.GetStatus", {})["reply"]["booted"] == "a"
    for method, params in (("OpenInactive", {}), ("SetNext", {"slot": "b"}), ("MarkGood", {}), ("Rollback", {}),
                           ("Repair", {})):
        assert run_as_nobody(service.path, f"io.switchyard.Slots.{method}", params) == \
            {"error": "org.varlink.service.PermissionDenied"}, method
    assert image_digest(sm.image.path) == before


@pytest.mark.parametrize("how", ["user-option", "group-config"])
def test_configured_caller_allowed(sm, sockdir, tmp_path, how):
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another user")
    sm.boot("a")
    if how == "user-option":
        s = Service(sm, sockdir, f"--allow-user={NOBODY}")
        gid = NOBODY
    else:
        root = tmp_path / "root"
        (root / "etc/switchyard").mkdir(parents=True)
        (root / "etc/switchyard/slot-manager.conf").write_text("# who may write slots\nALLOW_GROUPS=4242\n")
        s = Service(sm, sockdir, f"--root={root}")
        gid = 4242
        assert run_as_nobody(s.path, "io.switchyard.Slots.OpenInactive", {}, gid=NOBODY) == \
            {"error": "org.varlink.service.PermissionDenied"}
    try:
        r = run_as_nobody(s.path, "io.switchyard.Slots.OpenInactive", {}, gid=gid)
        assert r["reply"]["slot"] == "b" and r["fds"] == 2
    finally:
        s.stop()


def test_service_never_writes_booted_slot(sm, sockdir):
    """Ask the service for everything under strace: only GPT sectors of the disk and the inactive slot's
    kernel are opened or written; the booted slot's kernel never is, the fd handed out covers slot b."""
    strace = need_tool("strace")
    log = os.path.join(sockdir, "strace.log")
    sm.boot("a")
    (sm.esp / "flatcar").mkdir()
    (sm.esp / "flatcar" / "vmlinuz-a").write_bytes(b"booted kernel")
    s = Service(sm, sockdir, wrapper=(strace, "-f", "-y", "-qq", "-s", "0", "-e", f"trace={STRACE_CALLS}",
                                      "-o", log))
    try:
        s.call("GetStatus")
        s.call("Repair")
        # a damaged backup header: the next call repairs it first (GPT sectors only)
        with open(sm.image.path, "r+b") as f:
            f.seek(sm.image.size - 512 + 40)
            f.write(b"\xff")
        for method, params in (("Repair", {}), ("SetNext", {"slot": "a"}), ("SetNext", {"slot": "b"}), ("MarkGood", {"slot": "a"}),
                               ("Rollback", {}), ("MarkGood", {}), ("SetNext", {"slot": "b"})):
            try:
                s.call(method, params)
            except varlink.VarlinkError:
                pass
        with s.client() as c:
            reply = c.call("io.switchyard.Slots.OpenInactive", {})
            assert reply["slot"] == "b" and reply["offset"] == sm.image.usr_b.offset
    finally:
        s.stop()
    opens, writes = strace_writes(open(log).read(), sm.image.path)
    allowed = {str(sm.image.path), str(sm.esp / "flatcar" / "vmlinuz-b")}
    assert {path for path, _ in opens} == allowed, opens
    assert not any("vmlinuz-a" in path for path, _ in opens)
    assert_only_gpt_writes(writes, sm.image)
    assert (sm.esp / "flatcar" / "vmlinuz-a").read_bytes() == b"booted kernel"


def test_socket_activation_and_idle_exit(sm, sockdir):
    """Started by a systemd-style activator with the socket as fd 3; exits when idle and is started again."""
    import time
    from activator import Activator
    sm.boot("a")
    path = os.path.join(sockdir, "io.switchyard.Slots")
    log = os.path.join(sockdir, "service.log")
    with Activator(path, sm.args("varlink", "--idle-timeout=1"), log_path=log, mode=0o666) as a:
        with varlink.Client(path) as c:
            assert c.call("io.switchyard.Slots.GetStatus", {})["booted"] == "a"
            assert c.call("io.switchyard.Slots.SetNext", {"slot": "b"}) == {"slot": "b"}
        deadline = time.monotonic() + 20
        while not a.exit_codes and time.monotonic() < deadline:
            time.sleep(0.1)
        assert a.exit_codes == [0], open(log).read()
        with varlink.Client(path) as c:
            assert c.call("io.switchyard.Slots.GetStatus", {})["next"] == "b"
        assert a.starts == 2


@pytest.mark.loop
def test_open_inactive_on_block_device(sm, sockdir, tmp_path):
    """A block-device disk: OpenInactive hands out the partition's own device node (offset 0), exclusively.
    This kernel cannot scan partitions on loop devices, so partition 4 is a second loop device over the
    slot's byte range, announced in a stand-in /sys (SWITCHYARD_TEST_SYSFS_ROOT)."""
    losetup = need_tool("losetup")
    if os.geteuid() != 0 or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root and loop devices")
    b = sm.image.usr_b
    devs = []
    try:
        for extra in ([], ["--offset", str(b.offset), "--sizelimit", str(b.size)]):
            p = subprocess.run([losetup, "--find", "--show", *extra, str(sm.image.path)], capture_output=True,
                               text=True)
            if p.returncode != 0:
                pytest.skip(f"cannot set up a loop device: {p.stderr.strip()}")
            devs.append(p.stdout.strip())
        disk, part = devs
        d, pt = os.stat(disk).st_rdev, os.stat(part).st_rdev
        fake = tmp_path / "fakesys"
        pdir = fake / f"sys/dev/block/{os.major(d)}:{os.minor(d)}" / os.path.basename(part)
        pdir.mkdir(parents=True)
        (pdir / "partition").write_text("4\n")
        (pdir / "dev").write_text(f"{os.major(pt)}:{os.minor(pt)}\n")

        sm.boot("a")
        path = os.path.join(sockdir, "io.switchyard.Slots")
        env = dict(os.environ, SWITCHYARD_TEST_SYSFS_ROOT=str(fake))
        proc = subprocess.Popen([sm.binary, f"--disk={disk}", f"--cmdline={sm.cmdline}", f"--esp={sm.esp}",
                                 "varlink", f"--listen={path}"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            varlink.wait_for_socket(path, process=proc)
            with varlink.Client(path) as c:
                reply = c.call("io.switchyard.Slots.OpenInactive", {"kernel": False})
                fd = c.received_fds[reply["usr"]]
                assert (reply["slot"], reply["offset"], reply["size"]) == ("b", 0, b.size)
                st = os.fstat(fd)
                assert stat.S_ISBLK(st.st_mode) and st.st_rdev == pt
                assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
                os.pwrite(fd, b"written through the partition", 0)
                os.fsync(fd)
                # held exclusively: a second hand-out fails with a clear error while the first is open
                with varlink.Client(path) as c2:
                    with pytest.raises(varlink.VarlinkError) as e:
                        c2.call("io.switchyard.Slots.OpenInactive", {"kernel": False})
                    assert e.value.name == "io.switchyard.Slots.DiskError"
                    assert part in e.value.parameters["message"]
        finally:
            proc.terminate()
            proc.wait(30)
        with open(sm.image.path, "rb") as f:
            f.seek(b.offset)
            assert f.read(29) == b"written through the partition"
    finally:
        for dev in reversed(devs):
            subprocess.run([losetup, "-d", dev], capture_output=True)
