"""io.switchyard.PayloadWriter over varlink with passed descriptors: streamed progress, results, errors with
spec codes, resume through a checkpoint descriptor, introspection, and a service that keeps serving."""
import base64
import hashlib
import json
import os
import subprocess
import threading

import pytest

import payload as pl
from payload import keys, pw, pw_session  # noqa: F401 (fixtures)

varlink = pytest.importorskip("varlink", reason="tests/lib/varlink.py has not landed yet")

MiB = 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def signed(tmp_path_factory, keys, pw_session):
    d = tmp_path_factory.mktemp("vl")
    img = d / "usr.img"
    img.write_bytes(pl.pattern_bytes(10 * CHUNK, seed=21))
    kernel = d / "vmlinuz"
    kernel.write_bytes(pl.pattern_bytes(2 * CHUNK + 17, seed=22))
    out = d / "p.bin"
    pl.run(pw_session, "generate", "--image", img, "--kernel", kernel, "--chunk-size", "64K", "--key", keys.trusted[0],
           "-o", out, check=True)
    class S:
        path = out
        payload = out.read_bytes()
        image = img.read_bytes()
        kdata = kernel.read_bytes()
        sha = base64.b64encode(hashlib.sha256(out.read_bytes()).digest()).decode()
    return S


@pytest.fixture
def service(pw, keys, tmp_path):
    sock = tmp_path / "io.switchyard.PayloadWriter"
    env = dict(os.environ)
    env.pop("SWITCHYARD_PAYLOAD_STOP_AFTER_OPS", None)
    proc = subprocess.Popen([str(pw), "varlink", f"--listen={sock}", f"--keys={keys.trusted[1]}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        varlink.wait_for_socket(str(sock), process=proc)
        yield sock, proc
    finally:
        pl.stop_service(proc)


def feed(data):
    """A pipe whose read end carries data (written by a thread, like omaha-client's download)."""
    r, w = os.pipe()
    def writer():
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        except BrokenPipeError:
            pass
        finally:
            os.close(w)
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    return r, t


def targets(tmp_path):
    t = os.open(tmp_path / "usr-b.img", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(t, 16 * MiB)
    k = os.open(tmp_path / "vmlinuz-b", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    return t, k


def test_apply_streams_progress(service, signed, tmp_path):
    sock, _ = service
    r, t = feed(signed.payload)
    tfd, kfd = targets(tmp_path)
    replies = []
    with varlink.Client(str(sock)) as c:
        for reply in c.call_more("io.switchyard.PayloadWriter.Apply",
                                 {"payload": 0, "target": 1, "kernel": 2, "expected_size": len(signed.payload),
                                  "expected_sha256": signed.sha}, fds=[r, tfd, kfd]):
            replies.append(reply)
    for fd in (r, tfd, kfd):
        os.close(fd)
    t.join()
    progress, final = replies[:-1], replies[-1]
    # one per operation (10 partition + 3 kernel) at most; the service sends the latest when it gets to it
    assert 2 <= len(progress) <= 14
    assert progress[-1]["operations"] == progress[-1]["total_operations"] == 13
    assert progress[-1]["total_bytes"] == len(signed.payload)
    assert progress[-1]["percent"] < 100 or progress[-1]["bytes"] == progress[-1]["total_bytes"]
    assert [p["operations"] for p in progress] == sorted(p["operations"] for p in progress)
    assert final["new_partition_size"] == len(signed.image)
    assert final["new_partition_sha256"] == base64.b64encode(hashlib.sha256(signed.image).digest()).decode()
    assert final["kernel_size"] == len(signed.kdata)
    assert final["payload_sha256"] == signed.sha
    assert (tmp_path / "usr-b.img").read_bytes()[:len(signed.image)] == signed.image
    assert (tmp_path / "vmlinuz-b").read_bytes() == signed.kdata


def call_error(sock, params, fds):
    with varlink.Client(str(sock)) as c:
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("io.switchyard.PayloadWriter.Apply", params, fds=fds)
    return e.value


def test_errors_carry_spec_codes_and_service_keeps_serving(pw, service, signed, tmp_path, keys):
    sock, proc = service
    # operation data corrupted → 29, nothing past it written
    bad = bytearray(signed.payload)
    bad[pl.Layout(pw, signed.path).op_start(3) + 5] ^= 1
    r, t = feed(bytes(bad))
    tfd, kfd = targets(tmp_path)
    err = call_error(sock, {"payload": 0, "target": 1, "kernel": 2}, [r, tfd, kfd])
    os.close(r)
    t.join()
    assert err.name == "io.switchyard.PayloadWriter.PayloadError"
    assert err.parameters["code"] == 29
    assert err.parameters["name"] == "DownloadOperationHashMismatch"
    assert "operation 3" in err.parameters["message"]
    data = (tmp_path / "usr-b.img").read_bytes()
    assert data[:3 * CHUNK] == signed.image[:3 * CHUNK]
    assert data[3 * CHUNK:4 * CHUNK] == bytes(CHUNK)
    os.close(tfd)
    os.close(kfd)

    # wrong expected hash → 10
    r, t = feed(signed.payload)
    tfd, kfd = targets(tmp_path)
    err = call_error(sock, {"payload": 0, "target": 1, "kernel": 2,
                            "expected_sha256": base64.b64encode(bytes(32)).decode()}, [r, tfd, kfd])
    for fd in (r, tfd, kfd):
        os.close(fd)
    t.join()
    assert err.parameters["code"] == 10

    # malformed parameters → InvalidParameter, service still up
    with varlink.Client(str(sock)) as c:
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("io.switchyard.PayloadWriter.Apply", {"payload": 0, "target": 5}, fds=[])
        assert e.value.name == "org.varlink.service.InvalidParameter"
    assert proc.poll() is None

    # and it still applies a good payload
    r, t = feed(signed.payload)
    tfd, kfd = targets(tmp_path)
    with varlink.Client(str(sock)) as c:
        reply = c.call("io.switchyard.PayloadWriter.Apply", {"payload": 0, "target": 1, "kernel": 2},
                       fds=[r, tfd, kfd])
    for fd in (r, tfd, kfd):
        os.close(fd)
    t.join()
    assert reply["payload_sha256"] == signed.sha


def test_resume_with_checkpoint_fd(pw, keys, tmp_path, signed):
    sock = tmp_path / "io.switchyard.PayloadWriter"
    env = dict(os.environ, SWITCHYARD_PAYLOAD_STOP_AFTER_OPS="4")
    proc = subprocess.Popen([str(pw), "varlink", f"--listen={sock}", f"--keys={keys.trusted[1]}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        varlink.wait_for_socket(str(sock), process=proc)
        cp = os.open(tmp_path / "checkpoint.json", os.O_RDWR | os.O_CREAT, 0o600)
        tfd, kfd = targets(tmp_path)
        r, t = feed(signed.payload)
        err = call_error(sock, {"payload": 0, "target": 1, "kernel": 2, "checkpoint": 3,
                                "expected_sha256": signed.sha}, [r, tfd, kfd, cp])
        os.close(r)
        t.join()
        assert err.parameters["code"] == 100
        state = json.loads((tmp_path / "checkpoint.json").read_text())
        assert state["next_operation"] == 4
        # the ranged stream omaha-client would send: ops 4-7 and 8-11 (stopped again), then 12, done
        for expect_done in (False, False, True):
            state = json.loads((tmp_path / "checkpoint.json").read_text())
            ms, bo = state["metadata_size"], state["blob_offset"]
            r, t = feed(signed.payload[:ms] + signed.payload[ms + bo:])
            params = {"payload": 0, "target": 1, "kernel": 2, "checkpoint": 3, "expected_sha256": signed.sha}
            if expect_done:
                with varlink.Client(str(sock)) as c:
                    reply = c.call("io.switchyard.PayloadWriter.Apply", params, fds=[r, tfd, kfd, cp])
                assert reply["resumed_at_operation"] == 12
            else:
                err = call_error(sock, params, [r, tfd, kfd, cp])
                assert err.parameters["code"] == 100
            os.close(r)
            t.join()
        assert os.fstat(cp).st_size == 0
        assert (tmp_path / "usr-b.img").read_bytes()[:len(signed.image)] == signed.image
        assert (tmp_path / "vmlinuz-b").read_bytes() == signed.kdata
        for fd in (cp, tfd, kfd):
            os.close(fd)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()


def test_introspection(service):
    sock, _ = service
    with varlink.Client(str(sock)) as c:
        info = c.call("org.varlink.service.GetInfo", {})
        assert "io.switchyard.PayloadWriter" in info["interfaces"]
        desc = c.call("org.varlink.service.GetInterfaceDescription", {"interface": "io.switchyard.PayloadWriter"})
        assert "method Apply(" in desc["description"]
        assert "error PayloadError" in desc["description"]


def test_caller_vanishes_service_keeps_serving(service, signed, tmp_path):
    sock, proc = service
    # a download that stalls after a few operations, and a caller that gives up
    r, w = os.pipe()
    layout_cut = len(signed.payload) // 3
    os.write(w, signed.payload[:min(layout_cut, 60000)])
    tfd, kfd = targets(tmp_path)
    c = varlink.Client(str(sock))
    it = c.call_more("io.switchyard.PayloadWriter.Apply", {"payload": 0, "target": 1, "kernel": 2}, fds=[r, tfd, kfd])
    first = next(it)
    assert first["total_operations"] == 13
    c.close()
    os.close(w)  # the stream ends; the writer notices the payload is truncated and finishes its call
    os.close(r)
    # a second Apply is accepted once the first has wound down (Busy until then)
    for _ in range(100):
        r2, t2 = feed(signed.payload)
        try:
            with varlink.Client(str(sock)) as c2:
                reply = c2.call("io.switchyard.PayloadWriter.Apply", {"payload": 0, "target": 1, "kernel": 2},
                                fds=[r2, tfd, kfd])
            break
        except varlink.VarlinkError as e:
            assert e.name == "io.switchyard.PayloadWriter.Busy"
            import time
            time.sleep(0.05)
        finally:
            os.close(r2)
            t2.join()
    assert reply["payload_sha256"] == signed.sha
    assert proc.poll() is None
    os.close(tfd)
    os.close(kfd)


def test_socket_activation(pw, keys, tmp_path, signed):
    from activator import Activator
    sock = tmp_path / "run" / "io.switchyard.PayloadWriter"
    with Activator(sock, [pw, "varlink", f"--keys={keys.trusted[1]}"], log_path=tmp_path / "log") as a:
        r, t = feed(signed.payload)
        tfd, kfd = targets(tmp_path)
        with varlink.Client(str(sock)) as c:
            reply = c.call("io.switchyard.PayloadWriter.Apply", {"payload": 0, "target": 1, "kernel": 2},
                           fds=[r, tfd, kfd])
        for fd in (r, tfd, kfd):
            os.close(fd)
        t.join()
        assert reply["payload_sha256"] == signed.sha
        assert a.starts == 1
