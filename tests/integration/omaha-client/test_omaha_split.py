"""The role split (issue 11): the daemon holds the state and serves the APIs, each check runs in the job
helper omaha-client-job. The daemon links no network or parser library, treats the helper's output as
untrusted, and survives a helper that dies, is killed or writes garbage."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from omaha_env import skip_unless_built, FAST_SCHEDULE, Daemon, make_root
from omaha_server import OmahaServer
import procview

pytestmark = skip_unless_built()


def needed(binary):
    if not shutil.which("readelf"):
        pytest.skip("readelf (binutils) is not installed")
    out = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def test_daemon_links_no_network_or_parser_library(program):
    daemon = needed(program("omaha-client"))
    assert daemon, "readelf found no NEEDED entries"
    for lib in daemon:
        assert not lib.startswith(("libcurl", "libcrypto", "libssl", "libexpat", "libgnutls")), daemon
    # The helper is built beside it (how the daemon finds it in a build tree) and has them.
    helper = pathlib.Path(program("omaha-client")).parent / "omaha-client-job"
    job = needed(helper)
    assert any(lib.startswith("libcurl") for lib in job) and any(lib.startswith("libexpat") for lib in job), job


@pytest.fixture
def server():
    with OmahaServer(payload_bytes=b"not used", version="1.0.0") as s:
        yield s


def start(program, tmp_path, server_url, env=None):
    root = make_root(tmp_path / "root", server=server_url, switchyard_conf=FAST_SCHEDULE)
    return root, Daemon(program("omaha-client"), root, tmp_path, env=env)


def wait_for(predicate, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def pid_alive(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_scheduled_and_serving(d):
    st = d.status()
    assert st["next_check_usec"] > time.time() * 1e6, st  # the next check is scheduled as after any check
    assert "Next update check in 3600 s." in d.logtext().split("Check interval")[-1]
    return st


def test_helper_killed_mid_check(program, tmp_path, server):
    server.omaha_delay = 20  # the response stalls: the helper sits in the update check
    root, d = start(program, tmp_path, server.url)
    try:
        d.ctl("check")
        d.wait_status(lambda st: st["current_operation"] == "UPDATE_STATUS_CHECKING_FOR_UPDATE")
        helpers = d.children()
        assert len(helpers) == 1, helpers
        assert pathlib.Path(f"/proc/{helpers[0]}/cmdline").read_bytes().split(b"\0")[-2] == b"check"
        os.kill(helpers[0], signal.SIGKILL)
        st = d.wait_status(lambda st: st["jobs_finished"] == 1)
        assert st["current_operation"] == "UPDATE_STATUS_IDLE"
        assert st["last_error"] == 1
        assert st["last_error_message"] == "the update job was killed by signal 9 (Killed)", st
        assert_scheduled_and_serving(d)
        # The next check runs normally.
        server.omaha_delay = 0
        d.ctl("check", "--wait")
        st = d.status()
        assert st["jobs_finished"] == 2 and st["last_error"] == 0 and st["last_checked_time"] > 0, st
    finally:
        assert d.stop() == 0


def test_sigterm_stops_a_running_helper(program, tmp_path, server):
    server.omaha_delay = 20
    root, d = start(program, tmp_path, server.url)
    d.ctl("check")
    d.wait_status(lambda st: st["current_operation"] == "UPDATE_STATUS_CHECKING_FOR_UPDATE")
    helper = d.children()[0]
    t = time.time()
    assert d.stop() == 0
    assert time.time() - t < 10, "the daemon waited for the stalled check instead of stopping it"
    assert not pid_alive(helper)
    assert "Stopping the update job" in d.logtext()


FAKE_GOOD_STATUS = json.dumps({"status": {
    "current_operation": "UPDATE_STATUS_CHECKING_FOR_UPDATE", "last_checked_time": 0, "progress": 0.0,
    "new_version": "0.0.0", "new_size": 0, "bytes": 0, "total_bytes": 0, "last_error": 0,
    "last_error_message": "", "next_check_usec": 0, "jobs_started": 0, "jobs_finished": 0}})

# What a broken (or subverted) helper writes on its status fd 3, and what the daemon must say.
GARBAGE = {
    "not-json": ("echo 'hello daemon' >&3; exec sleep 30",
                 "the update job wrote a bad status line: not JSON"),
    "bad-operation": ("echo '" + FAKE_GOOD_STATUS.replace("CHECKING_FOR_UPDATE", "EXPLODING") + "' >&3; exec sleep 30",
                      "status field \"current_operation\" is not a known operation"),
    "overlong-string": ("echo '" + FAKE_GOOD_STATUS.replace('"new_version": "0.0.0"', '"new_version": "' + "9" * 100 + '"')
                        + "' >&3; exec sleep 30",
                        "status field \"new_version\" is longer than 63 bytes"),
    "endless-line": ("head -c 100000 /dev/zero | tr '\\0' x >&3; exec sleep 30",
                     "the update job wrote a line longer than 4096 bytes"),
    "unknown-message": ("echo '{\"reboot\": true}' >&3; exec sleep 30",
                        "unknown message \"reboot\""),
    "after-result": ("echo '{\"result\": {\"http_status\": 200, \"poll_interval\": 0}}' >&3; "
                     "echo '" + FAKE_GOOD_STATUS + "' >&3; exec sleep 30",
                     "the update job wrote after its result"),
    "no-result": ("echo '" + FAKE_GOOD_STATUS + "' >&3; exit 0",
                  "the update job ended without a result"),
    "partial-line": ("printf '{\"status\": {' >&3; exit 0",
                     "the update job ended with an incomplete line"),
    "exit-status": ("exit 3", "the update job failed (exit status 3)"),
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_helper_writing_garbage(program, tmp_path, kind):
    script, message = GARBAGE[kind]
    fake = tmp_path / "fake-omaha-client-job"
    fake.write_text(f'#!/bin/sh\necho "$$ $*" > {tmp_path}/fake-args\n{script}\n')
    fake.chmod(0o755)
    root, d = start(program, tmp_path, "http://127.0.0.1:9/v1/update/", env={"SWITCHYARD_OMAHA_JOB": str(fake)})
    try:
        t = time.time()
        d.ctl("check")
        st = d.wait_status(lambda st: st["jobs_finished"] == 1)
        assert time.time() - t < 20, "the daemon did not stop the misbehaving helper"
        assert message in st["last_error_message"], st
        assert st["last_error"] == 1 and st["current_operation"] == "UPDATE_STATUS_IDLE", st
        pid, args = (tmp_path / "fake-args").read_text().split(" ", 1)
        assert not pid_alive(int(pid))
        # The helper was told what the thread was told: root, peers, interactive, the status to start from.
        assert f"--root={root} " in args and "--slots=" in args and "--payload-writer=" in args
        assert "--verity=" in args and "--interactive" in args and "--status-fd=3 check" in args
        assert_scheduled_and_serving(d)
    finally:
        assert d.stop() == 0


def test_helper_found_under_the_units_proc_view(program, tmp_path):
    """omaha-client.service has ProtectProc=invisible: the daemon still finds the helper beside its own
    executable (/proc/self/exe) and the check runs (no server answers here: error 2000, not a failure to
    start the job)."""
    why = procview.unavailable()
    if why:
        pytest.skip(why)
    unit = (pathlib.Path(__file__).resolve().parents[3] / "units/omaha-client/omaha-client.service.in").read_text()
    assert "ProtectProc=invisible" in unit.splitlines()
    root = make_root(tmp_path / "root", server="http://127.0.0.1:9/v1/update/", switchyard_conf=FAST_SCHEDULE)
    sock = tmp_path / "omaha.sock"
    log = open(tmp_path / "daemon.log", "w+")
    proc = subprocess.Popen([*procview.prefix(procview.proc_mount_options(unit)), str(program("omaha-client")), f"--root={root}", f"--listen={sock}", "--dbus=no",
                             "daemon"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: sock.exists() or proc.poll() is not None, what="the daemon's socket")
        assert proc.poll() is None, pathlib.Path(log.name).read_text()
        r = subprocess.run([str(program("omaha-client")), f"--address={sock}", "check", "--wait"],
                           capture_output=True, text=True, timeout=60)
        assert "error 2000" in r.stderr, r.stderr + pathlib.Path(log.name).read_text()
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
