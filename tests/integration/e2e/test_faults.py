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
import signal
import subprocess
import time

import pytest

import varlink
from e2e_checks import assert_a_untouched, assert_b_next_and_new, assert_safe
from flatcar_host import NEW, OLD
from omaha_server import OmahaServer

OMAHA = "io.switchyard.Omaha"
THROTTLE = 0.012  # seconds per 64 KiB: the ~4.5 MB payload takes about a second

# (victim service, phase, kind, value): kill when omaha-client reports phase and
#   kind "bytes": bytes applied >= value * total; "progress": verification progress >= value;
#   kind "delay": value seconds after phase was first seen; kind "spawn": value seconds after the victim
#   process was started by its socket.
DOWNLOAD_FRACTIONS = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.97]
KILL_POINTS = (
    [("Omaha", "DOWNLOADING", "bytes", f) for f in DOWNLOAD_FRACTIONS]            # download: 13
    + [("PayloadWriter", "DOWNLOADING", "bytes", f) for f in DOWNLOAD_FRACTIONS]  # write: 13
    + [("Verity", "VERIFYING", "progress", f) for f in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)]
    + [("Omaha", "VERIFYING", "progress", f) for f in (0.0, 0.3, 0.6, 0.9)]      # verify: 14
    + [("Slots", "FINALIZING", "delay", d) for d in (0.0, 0.0005, 0.001, 0.002, 0.004, 0.008)]
    + [("Omaha", "FINALIZING", "delay", d) for d in (0.0, 0.001, 0.003, 0.01)]
    + [("Slots", "*", "spawn", d) for d in (0.0, 0.002, 0.005, 0.01)]           # OpenInactive
    + [("Slots", "UPDATED_NEED_REBOOT", "delay", 0.0), ("Omaha", "UPDATED_NEED_REBOOT", "delay", 0.0)]
)                                                                               # switch: 16
assert len(KILL_POINTS) >= 50


def point_id(p):
    return f"{p[0]}-{p[1].lower()}-{p[2]}-{p[3]}"


@pytest.fixture(scope="module")
def server(e2e_template):
    with OmahaServer(payload=e2e_template.payload, version=NEW, tls=True) as srv:
        yield srv


def status(client):
    return client.call(f"{OMAHA}.GetStatus", {})["status"]


def wait_socket_process(activator, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        p = activator.proc
        if p is not None:
            return p
        time.sleep(0.0005)
    return None


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
    if kind == "progress":
        return st["progress"] >= value
    return time.monotonic() - first_seen >= value


def run_until_kill(host, server, victim, phase, kind, value):
    """Starts an update check and kills victim at the point. Returns (killed, status at the kill)."""
    server.throttle = THROTTLE
    host.start_services(server)
    acts = host.activators
    with varlink.Client(str(host.sock["Omaha"]), timeout=60) as c:
        job = c.call(f"{OMAHA}.Check", {})["job"]
        deadline = time.time() + 60
        first_seen = None
        if kind == "spawn":
            # The victim is started by omaha-client's first connection to it (OpenInactive).
            p = wait_socket_process(acts[victim])
            assert p is not None, f"{victim} was never started"
            time.sleep(value)
            return kill(acts[victim]), None
        while time.time() < deadline:
            st = status(c)
            op = st["current_operation"].removeprefix("UPDATE_STATUS_")
            if op == phase and first_seen is None:
                first_seen = time.monotonic()
            if reached(st, phase, kind, value, first_seen):
                return kill(acts[victim]), st
            if st["jobs_finished"] >= job:
                pytest.fail(f"the update ended ({op}, error {st['last_error']}: {st['last_error_message']}) "
                            f"before the kill point {phase}/{kind}/{value}")
        pytest.fail(f"kill point {phase}/{kind}/{value} not reached in 60 s")


def settle(host, victim):
    """Waits for omaha-client to finish the failed job (unless it was the victim), then stops everything."""
    if victim != "Omaha":
        try:
            with varlink.Client(str(host.sock["Omaha"]), timeout=60) as c:
                deadline = time.time() + 60
                while time.time() < deadline:
                    st = status(c)
                    if st["current_operation"] in ("UPDATE_STATUS_IDLE", "UPDATE_STATUS_UPDATED_NEED_REBOOT") \
                            and st["jobs_finished"] >= st["jobs_started"]:
                        break
                    time.sleep(0.02)
        except (OSError, varlink.ProtocolError):
            pass
    host.stop_services()


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
def test_kill9(host, server, point):
    victim, phase, kind, value = point
    killed, st = run_until_kill(host, server, victim, phase, kind, value)
    assert killed, f"{victim} was not running at {point_id(point)}"
    settle(host, victim)
    completed = assert_safe(host)
    if phase in ("DOWNLOADING", "VERIFYING"):
        # Killed before the verification finished: B must not be bootable.
        assert not completed, f"B became bootable although {victim} was killed while {phase}"
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
    assert "small" in msg or "larger" in msg or "does not fit" in msg or "bytes" in msg, msg
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
            assert any(e[0] == 3 and e[1] == 0 for e in events), events
            subprocess.run(["mount", "-o", f"remount,size={disk_size * 2}", str(mnt)], check=True)
            rerun(host, srv)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
