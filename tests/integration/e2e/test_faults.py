"""Fault tests for the whole update: kill -9 one process (omaha-client daemon, payload-writer,
verity-check, slot-manager) at a chosen point of download, write, verify or switch; then USR-A must be
byte-for-byte untouched, the GPT valid for slot-manager, cgpt and sfdisk, B not bootable unless its update
completed, and a rerun must finish the update. Plus refusals: target slot too small, disk full, an older
version, a known payload announced with another hash or size.

Kill points land deterministically: the server is throttled (omaha_server.throttle) so that the download
and the write (they are streamed together) take about a second, and the test watches omaha-client's
GetStatus (bytes of the payload applied, verification progress, operation) and kills when the point is
reached. Verification and the switch are not throttled; their points are fractions of verity-check's
progress and delays after omaha-client entered FINALIZING (slot-manager's SetNext).
"""
import os
import shutil
import signal
import subprocess
import time

import pytest

import varlink
from e2e_fixtures import e2e_template, host  # noqa: F401 (fixtures)
from e2e_checks import assert_a_untouched, assert_b_next_and_new, assert_gpt_valid, assert_safe, b_holds_new_image
from flatcar_host import NEW, OLD
from omaha_server import OmahaServer

OMAHA = "io.switchyard.Omaha"
THROTTLE = 0.012  # seconds per 64 KiB: the ~4.2 MB payload takes about a second

# Kill points. Two ways to land a kill -9:
#  ("poll", victim, phase, kind, value): watch omaha-client's GetStatus and kill victim when it reports phase
#     and kind "bytes": payload bytes applied >= value * total (download and write are streamed together,
#     the server is throttled), or kind "delay": value seconds after phase was first seen (used while
#     another service is held by an injected delay, so that the phase lasts), or kind "spawn": value
#     seconds after the victim was started by its socket.
#  ("inject", victim, syscall, n, None): strace kills the victim with SIGKILL when it enters its n-th
#     `syscall` (counted per thread) - payload-writer's pwrite64 (49 data writes, plus a checkpoint write
#     about once a second, whose number depends on timing, so the points stay within the first 49),
#     fdatasync (the targets and the checkpoint: at least 3); verity-check's pread64 (each thread reads 1 MiB blocks); slot-manager's pwrite64
#     (SetNext writes the backup entries+header, then the primary ones: 66) and fsync (2).
# A held phase: ("poll", "Omaha", phase, "delay", d) runs with hold = (service, syscall, n) meaning that
# service's n-th syscall is delayed by 0.5 s.
DOWNLOAD_FRACTIONS = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.97]
KILL_POINTS = (
    # download: omaha-client (the downloader) killed at byte offsets                              13
    [("poll", "Omaha", "DOWNLOADING", "bytes", f, None) for f in DOWNLOAD_FRACTIONS]
    # write: payload-writer killed at byte offsets and at operation (pwrite64) / sync indices      6+14+2
    + [("poll", "PayloadWriter", "DOWNLOADING", "bytes", f, None) for f in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)]
    + [("inject", "PayloadWriter", "pwrite64", n, None, None) for n in (1, 2, 3, 8, 12, 16, 20, 24, 32, 40, 44, 47,
                                                                   48, 49)]
    + [("inject", "PayloadWriter", "fdatasync", n, None, None) for n in (1, 3)]
    # verify: verity-check killed at its n-th read of the disk (per thread; with two hashing threads per CPU each reads only a few blocks)  3+3
    + [("inject", "Verity", "pread64", n, None, None) for n in range(1, 4)]
    + [("poll", "Omaha", "VERIFYING", "delay", d, ("Verity", "pread64", 2)) for d in (0.05, 0.2, 0.4)]
    # switch: slot-manager killed at startup (OpenInactive), in SetNext's GPT writes and syncs,     3+12
    + [("poll", "Slots", "*", "spawn", d, None) for d in (0.0, 0.005, 0.02)]
    + [("inject", "Slots", "pwrite64", n, None, None) for n in (1, 10, 20, 32, 33, 34, 45, 60, 65, 66)]
    + [("inject", "Slots", "fsync", n, None, None) for n in (1, 2)]
    # ... omaha-client killed while slot-manager is held between the backup and primary GPT      3
    + [("poll", "Omaha", "FINALIZING", "delay", d, ("Slots", "pwrite64", 34)) for d in (0.05, 0.2, 0.4)]
    # ... and both after the switch, before omaha-client's bookkeeping is known to be done        2
    + [("poll", "Slots", "UPDATED_NEED_REBOOT", "delay", 0.0, None),
       ("poll", "Omaha", "UPDATED_NEED_REBOOT", "delay", 0.0, None)]
)
assert len(KILL_POINTS) >= 50

PHASE_OF = {"Omaha": "download", "PayloadWriter": "write", "Verity": "verify", "Slots": "switch"}


def point_id(p):
    how, victim, a, b, c, hold = p
    if how == "inject":
        return f"{victim}-{a}-{b}"
    return f"{victim}-{a.lower()}-{b}-{c}" + (f"-held-{hold[0]}" if hold else "")


@pytest.fixture(scope="module")
def server(e2e_template):
    with OmahaServer(payload=e2e_template.payload, version=NEW, tls=True) as srv:
        yield srv


def status(client):
    return client.call(f"{OMAHA}.GetStatus", {})["status"]


def strace_prefix(log, inject, path=None):
    if not shutil.which("strace"):
        pytest.skip("strace is not installed (needed to inject kills at syscall indices)")
    # LeakSanitizer cannot run under ptrace.
    # (--seccomp-bpf would be faster, but strace 6.1 then miscounts the invocations for when=N.)
    return ["env", "ASAN_OPTIONS=detect_leaks=0", "strace", "-f", "-qq", "-o", str(log),
            "-e", f"trace={inject.split(':')[0].split('=')[1]}", "-e", inject] + (["-P", str(path)] if path else [])


def kill(activator):
    """kill -9 the service's process; True if it was running."""
    p = activator.proc
    if p is None or p.poll() is not None:
        return False
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    return True


def reached(st, phase, kind, value, first_seen):
    op = st["current_operation"].removeprefix("UPDATE_STATUS_")
    if op != phase:
        return False
    if kind == "bytes":
        return st["total_bytes"] > 0 and st["bytes"] >= value * st["total_bytes"]
    return time.monotonic() - first_seen >= value


def wait_job(c, job, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = status(c)
        if st["jobs_finished"] >= job:
            return st
        time.sleep(0.01)
    pytest.fail("the update job did not end within 60 s")


def run_point(host, server, point, tmp_path):
    """Starts an update and lands the kill. Returns a description of where it landed."""
    how, victim, a, b, c, hold = point
    wrap = {}
    log = tmp_path / "strace.log"
    if how == "inject":
        # verity-check's reads are counted on the disk only (not the loader's or the kernel file's).
        wrap[victim] = strace_prefix(log, f"inject={a}:signal=KILL:when={b}",
                                     path=host.disk.path if victim == "Verity" else None)
    if hold:
        wrap[hold[0]] = strace_prefix(tmp_path / "hold.log", f"inject={hold[1]}:delay_enter=500000:when={hold[2]}",
                                      path=host.disk.path if hold[0] == "Verity" else None)
    server.throttle = THROTTLE if how == "poll" and c != "delay" else 0
    host.start_services(server, wrap=wrap)
    acts = host.activators
    with varlink.Client(str(host.sock["Omaha"]), timeout=60) as cl:
        job = cl.call(f"{OMAHA}.Check", {})["job"]
        if how == "inject":
            st = wait_job(cl, job)
            text = log.read_text() if log.exists() else ""
            assert "+++ killed by SIGKILL +++" in text, \
                f"the {b}th {a} of {victim} never came; the update ended with {st['current_operation']}"
            return f"{victim} killed at {a} #{b}; job ended {st['current_operation']} error {st['last_error']}"
        phase, kind, value = a, b, c
        if kind == "spawn":
            deadline = time.time() + 30
            while acts[victim].proc is None and time.time() < deadline:
                time.sleep(0.0005)
            time.sleep(value)
            assert kill(acts[victim]), f"{victim} was not running"
        else:
            first_seen = None
            deadline = time.time() + 60
            while True:
                assert time.time() < deadline, f"kill point {point_id(point)} not reached in 60 s"
                st = status(cl)
                op = st["current_operation"].removeprefix("UPDATE_STATUS_")
                if op == phase and first_seen is None:
                    first_seen = time.monotonic()
                if first_seen is not None and reached(st, phase, kind, value, first_seen):
                    assert kill(acts[victim]), f"{victim} was not running at {point_id(point)}"
                    break
                if st["jobs_finished"] >= job and phase != "UPDATED_NEED_REBOOT":
                    pytest.fail(f"the update ended ({op}, error {st['last_error']}: {st['last_error_message']}) "
                                f"before the kill point {point_id(point)}")
        if victim != "Omaha":
            st = wait_job(cl, job)
        return f"{victim} killed in {phase} at {kind} {value}"


def rerun(host, server):
    """A new check with all services (re)started completes the update."""
    server.throttle = 0
    host.new_boot_id()
    host.start_services(server)
    r = host.omaha("check", "--wait", check=False)
    st = host.omaha_status()
    host.stop_services()
    assert st["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", \
        f"rerun did not complete the update: {st}\n{r.stdout}{r.stderr}\n{host.log('Omaha')[-3000:]}"
    assert_a_untouched(host)
    assert_b_next_and_new(host)
    # GRUB's choice now is B.
    assert host.boot_select()["slot"] == "b"


@pytest.mark.parametrize("point", KILL_POINTS, ids=[point_id(p) for p in KILL_POINTS])
def test_kill9(host, server, point, tmp_path):
    where = run_point(host, server, point, tmp_path)
    host.stop_services()
    # A kill inside slot-manager's GPT write may leave the other copy half written (repaired by the next
    # write, checked strictly after the rerun); everything else must leave both copies intact.
    completed = assert_safe(host, crashed=point[1] == "Slots")
    if point[1] in ("PayloadWriter", "Verity") or point[2] in ("DOWNLOADING", "VERIFYING"):
        # Killed before the verification finished: B must not be bootable.
        assert not completed, f"B became bootable although {where}"
    rerun(host, server)


# ---- refusals -------------------------------------------------------------------------------------

def check_refused(host, server, extra_conf="", env=None):
    server.throttle = 0
    host.start_services(server, extra_conf=extra_conf, env=env)
    before = len(server.events())
    r = host.omaha("check", "--wait", check=False)
    st = host.omaha_status()
    host.stop_services()
    assert st["current_operation"] != "UPDATE_STATUS_UPDATED_NEED_REBOOT", st
    assert st["last_error"] != 0 and st["last_error_message"], st
    assert_safe(host, completed_ok=False)
    return r, st, server.events()[before:]


def test_older_version_refused_unless_allowed(host, e2e_template):
    with OmahaServer(payload=e2e_template.payload, version="4000.0.0", tls=True) as srv:
        srv.offer_always = True
        r, st, events = check_refused(host, srv)
        assert "not newer" in st["last_error_message"], st
        assert srv.payload_requests == [], "the older payload was downloaded"
        # ALLOW_DOWNGRADE=yes lets it through (the payload is the same signed image).
        host.stop_services()
        host.start_services(srv, extra_conf="ALLOW_DOWNGRADE=yes\n")
        host.omaha("check", "--wait")
        st = host.omaha_status()
        host.stop_services()
        assert st["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", st
        assert_b_next_and_new(host)
        assert_a_untouched(host)


@pytest.mark.parametrize("lie", ["sha256", "size-larger", "size-smaller"])
def test_known_payload_other_hash_or_size_refused(host, server, lie):
    import base64
    import hashlib
    data = host.payload.read_bytes()
    try:
        if lie == "sha256":
            server.announced_sha256 = base64.b64encode(hashlib.sha256(data + b"x").digest()).decode()
        elif lie == "size-larger":
            server.announced_size = len(data) + 4096
        else:
            server.announced_size = len(data) - 4096
        r, st, events = check_refused(host, server)
    finally:
        server.announced_sha256 = None
        server.announced_size = None
    # The error was reported to the server and nothing became bootable (checked in check_refused).
    assert any(e[0] == 3 and e[1] == 0 for e in events), events
    rerun(host, server)


def test_target_slot_too_small(e2e_template, tmp_path):
    """A disk whose slots are smaller than the new image: refused before anything is written to B."""
    from flatcar_host import FlatcarHost
    small = FlatcarHost(tmp_path / "small", e2e_template.build, slot_mib=8, fs_mib=6, rich=False, small_disk=True)
    small.make_root(OLD)
    small.build_host(OLD)
    # The update is the template's (a 12 MiB file system + tree), signed with the template's key.
    for attr in ("new_image", "new_kernel", "new_root_hash", "keys", "payload"):
        setattr(small, attr, getattr(e2e_template, attr))
    b_before = small.slot_digest("b")
    with OmahaServer(payload=small.payload, version=NEW, tls=True) as srv:
        r, st, events = check_refused(small, srv)
    msg = st["last_error_message"]
    # payload-writer's verdict, from the manifest, before the first operation is written.
    assert "new partition is" in msg and "holds only" in msg, msg
    assert small.slot_digest("b") == b_before, "USR-B was written although the image cannot fit"


def test_disk_full(e2e_template, tmp_path):
    """The disk image lives on a tmpfs that fills up while USR-B is written (ENOSPC on the sparse file):
    the update fails cleanly; once there is room, a rerun completes it."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    disk_size = e2e_template.disk.path.stat().st_size
    used = int(subprocess.run(["du", "-B1", str(e2e_template.disk.path)], capture_output=True, text=True)
               .stdout.split()[0])
    size = used + 2 * 1024 * 1024  # room for A's data and 2 MiB more: B's image does not fit
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip()}")
    try:
        host = e2e_template.clone(mnt / "host")
        assert host.disk.path.stat().st_size == disk_size
        with OmahaServer(payload=host.payload, version=NEW, tls=True) as srv:
            r, st, events = check_refused(host, srv)
            assert "No space left on device" in st["last_error_message"], st
            assert any(e[0] == 3 and e[1] == 0 for e in events), events
            subprocess.run(["mount", "-o", f"remount,size={disk_size * 2}", str(mnt)], check=True)
            rerun(host, srv)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# ---- the same on a loop device ----------------------------------------------------------------------

def loop_devices_work():
    if os.geteuid() != 0:
        return "loop devices need root"
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control"
    r = subprocess.run(["losetup", "--find"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"losetup --find: {r.stderr.strip()}"
    return None


@pytest.mark.loop
@pytest.mark.parametrize("point", [("inject", "PayloadWriter", "pwrite64", 40, None, None),
                                   ("inject", "Slots", "pwrite64", 20, None, None)],
                         ids=["PayloadWriter-pwrite64-40", "Slots-pwrite64-20"])
def test_kill9_on_loop_device(host, server, point, tmp_path):
    """The update flow on a block device (the image attached with losetup + partx): killed, then rerun."""
    why = loop_devices_work()
    if why:
        pytest.skip(why)
    try:
        dev = host.attach_loop()
    except Exception as e:  # noqa: BLE001 - the reason is reported
        pytest.skip(f"loop partitions do not work here: {e}")
    assert host.slot_status()["disk"] == dev
    run_point(host, server, point, tmp_path)
    host.stop_services()
    subprocess.run(["sync"])
    assert not assert_safe(host, crashed=point[1] == "Slots")
    rerun(host, server)
    host.detach_loop()
    # The file behind the device holds the same result (rerun's boot-select spent B's try: B is booted).
    assert_a_untouched(host)
    assert b_holds_new_image(host)
    st = assert_gpt_valid(host)
    b = next(x for x in st["slots"] if x["slot"] == "b")
    a = next(x for x in st["slots"] if x["slot"] == "a")
    assert b["priority"] > a["priority"] and b["tries"] == 0 and not b["successful"], st
