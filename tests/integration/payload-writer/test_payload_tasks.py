"""payload-writer under a task limit, as its unit sets one (TasksMax=): the service applies with the
threads it is allowed, decodes on fewer threads (down to none) when it must, and fails clearly and
keeps serving when it cannot even start its reader.

The VM proof found TasksMax=4 in the unit while apply wanted the event loop, its apply thread, a reader
and a decoder per CPU: every update in the guest failed with "cannot start the reader thread". These
tests put the real service into a pids cgroup with pids.max set, the same limit systemd applies."""
import os
import pathlib
import subprocess
import uuid

import pytest

import payload as pl
from payload import keys, pw, pw_session  # noqa: F401 (fixtures)
from test_payload_varlink import feed, signed, targets  # noqa: F401 (fixture)

varlink = pytest.importorskip("varlink")

UNIT = pathlib.Path(__file__).resolve().parents[3] / "units" / "payload-writer" / "payload-writer.service.in"


def unit_tasks_max():
    for line in UNIT.read_text().splitlines():
        if line.startswith("TasksMax="):
            return int(line.split("=", 1)[1])
    raise AssertionError(f"no TasksMax= in {UNIT}")


def pids_cgroup_parent():
    """A writable cgroup directory whose children get pids.max (v1 pids hierarchy, or a v2 directory
    with pids in its subtree_control), or None."""
    v1 = pathlib.Path("/sys/fs/cgroup/pids")
    if (v1 / "pids.max").exists() or (v1 / "cgroup.procs").exists():
        return v1 if os.access(v1, os.W_OK) else None
    for d in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        p = pathlib.Path(d)
        ctl = p / "cgroup.subtree_control"
        if ctl.exists() and os.access(p, os.W_OK) and "pids" in ctl.read_text().split():
            return p
    return None


@pytest.fixture
def limited_service(pw, keys, tmp_path):
    """limited_service(n) -> (socket, process) of `payload-writer varlink` in a cgroup with pids.max=n."""
    parent = pids_cgroup_parent()
    if parent is None:
        pytest.skip("no writable cgroup with the pids controller (needs root and cgroup v1 pids or a "
                    "delegated v2 subtree)")
    made = []

    def start(limit):
        cg = parent / f"switchyard-test-{uuid.uuid4().hex[:8]}"
        cg.mkdir()
        made.append(cg)
        (cg / "pids.max").write_text(str(limit))
        sock = tmp_path / f"pw-{limit}.sock"
        env = dict(os.environ)
        env.pop("SWITCHYARD_PAYLOAD_STOP_AFTER_OPS", None)
        procs_file = str(cg / "cgroup.procs")

        def enter():
            with open(procs_file, "w") as f:
                f.write(str(os.getpid()))
        proc = subprocess.Popen([str(pw), "varlink", f"--listen={sock}", f"--keys={keys.trusted[1]}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, preexec_fn=enter)
        procs.append(proc)
        varlink.wait_for_socket(str(sock), process=proc)
        return sock, proc

    procs = []
    yield start
    for proc in procs:
        pl.stop_service(proc)
    for cg in made:
        cg.rmdir()


def apply(sock, signed, tmp_path):
    r, t = feed(signed.payload)
    tfd, kfd = targets(tmp_path)
    try:
        with varlink.Client(str(sock)) as c:
            reply = c.call("io.switchyard.PayloadWriter.Apply",
                           {"payload": 0, "target": 1, "kernel": 2, "expected_sha256": signed.sha},
                           fds=[r, tfd, kfd])
    finally:
        for fd in (r, tfd, kfd):
            os.close(fd)
        t.join()
    return reply


def test_applies_within_the_units_task_limit(limited_service, signed, tmp_path):
    limit = unit_tasks_max()
    assert limit >= 3 + 8, f"TasksMax={limit} leaves no room for 8 decoding threads on an 8-CPU host"
    sock, _ = limited_service(limit)
    reply = apply(sock, signed, tmp_path)
    assert reply["payload_sha256"] == signed.sha
    assert (tmp_path / "usr-b.img").read_bytes()[:len(signed.image)] == signed.image


@pytest.mark.parametrize("limit", [3, 4])
def test_fewer_threads_when_the_limit_is_tight(limited_service, signed, tmp_path, limit):
    """3 tasks: event loop, apply thread, reader; decoding runs on the reader's thread."""
    sock, proc = limited_service(limit)
    reply = apply(sock, signed, tmp_path)
    assert reply["payload_sha256"] == signed.sha
    assert (tmp_path / "usr-b.img").read_bytes()[:len(signed.image)] == signed.image
    assert (tmp_path / "vmlinuz-b").read_bytes() == signed.kdata


def test_too_tight_fails_clearly_and_keeps_serving(limited_service, signed, tmp_path):
    sock, proc = limited_service(2)
    with pytest.raises(varlink.VarlinkError) as e:
        apply(sock, signed, tmp_path)
    assert "thread" in e.value.parameters.get("message", ""), e.value.parameters
    assert proc.poll() is None
    with varlink.Client(str(sock)) as c:
        info = c.call("org.varlink.service.GetInfo", {})
    assert "io.switchyard.PayloadWriter" in info["interfaces"]
