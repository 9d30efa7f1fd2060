"""io.switchyard.Verity over varlink: the slot and the kernel travel as passed file descriptors."""
import os
import shutil
import signal
import subprocess

import pytest

import varlink
from conftest import need_tool
from test_verity_check import BS, fake_kernel, flip, write_data

IFACE = "io.switchyard.Verity"


@pytest.fixture
def service(tmp_path, program):
    sock = tmp_path / "io.switchyard.Verity"
    proc = subprocess.Popen([str(program("verity-check")), "varlink", f"--listen={sock}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        varlink.wait_for_socket(str(sock), process=proc)
        yield sock, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read()
        assert proc.returncode == 0 and "Sanitizer" not in err and "runtime error" not in err, err


@pytest.fixture
def slot(tmp_path, program):
    img = tmp_path / "slot.img"
    write_data(img, 40000, total=40400 * BS)
    kernel = tmp_path / "vmlinuz-b"
    fake_kernel(kernel, "arm64")
    out = subprocess.run([str(program("verity-check")), "format", str(img), "--data-blocks=40000",
                          f"--embed-into={kernel}"], capture_output=True, text=True, check=True)
    return img, kernel, out.stdout.strip()


def verify(sock, params, fds, more=False):
    with varlink.Client(str(sock)) as c:
        if more:
            return list(c.call_more(f"{IFACE}.Verify", params, fds=fds))
        return c.call(f"{IFACE}.Verify", params, fds=fds)


def test_verify_with_progress(service, slot):
    sock, _ = service
    img, kernel, root = slot
    fd = os.open(img, os.O_RDONLY)
    try:
        replies = verify(sock, {"data": 0, "root_hash": root, "hash_offset": 40000 * BS}, [fd], more=True)
    finally:
        os.close(fd)
    assert len(replies) >= 2  # at least one progress reply, then the answer
    final = replies[-1]
    assert final["root_hash"] == root and final["data_blocks"] == 40000 and final["hash_offset"] == 40000 * BS
    for p in replies[:-1]:
        assert p["total_blocks"] == 40000 and 0 <= p["blocks"] <= 40000 and 0 <= p["percent"] <= 100
    assert [p["blocks"] for p in replies[:-1]] == sorted(p["blocks"] for p in replies[:-1])
    # Without "more": just the answer.
    fd = os.open(img, os.O_RDONLY)
    try:
        # Optional parameters given as null count as absent.
        r = verify(sock, {"data": 0, "root_hash": root.upper(), "hash_offset": 40000 * BS, "kernel": None,
                          "arch": None, "offset": None, "size": None}, [fd])
    finally:
        os.close(fd)
    assert r["root_hash"] == root


def test_verify_with_kernel_fd(service, slot):
    """As the update flow calls it: target and new kernel as fds, hash offset found by itself."""
    sock, _ = service
    img, kernel, root = slot
    fds = [os.open(img, os.O_RDONLY), os.open(kernel, os.O_RDONLY)]
    try:
        r = verify(sock, {"data": 0, "kernel": 1, "hash_offset": 40000 * BS}, fds)
        assert r["root_hash"] == root
        r = verify(sock, {"data": 1, "kernel": 0, "arch": "arm64", "hash_offset": 40000 * BS}, fds[::-1])
        assert r["root_hash"] == root
        with pytest.raises(varlink.VarlinkError) as e:
            verify(sock, {"data": 0, "kernel": 1, "arch": "amd64", "hash_offset": 40000 * BS}, fds)
        assert e.value.name == f"{IFACE}.NoRootHash" and "byte 64" in e.value.parameters["reason"]
    finally:
        for fd in fds:
            os.close(fd)


def test_errors_and_keeps_serving(service, slot, tmp_path):
    sock, proc = service
    img, kernel, root = slot
    bad = tmp_path / "bad.img"
    shutil.copy(img, bad)
    flip(bad, 31337 * BS + 99)
    flip(bad, 39000 * BS + 99)
    fd = os.open(bad, os.O_RDONLY)
    try:
        with pytest.raises(varlink.VarlinkError) as e:
            verify(sock, {"data": 0, "root_hash": root, "hash_offset": 40000 * BS}, [fd], more=True)
        assert e.value.name == f"{IFACE}.Corrupted"
        assert e.value.parameters["block"] == 31337 and e.value.parameters["area"] == "data"

        with pytest.raises(varlink.VarlinkError) as e:
            verify(sock, {"data": 0, "root_hash": "0" * 64, "hash_offset": 40000 * BS}, [fd])
        assert e.value.name == f"{IFACE}.RootHashMismatch"
        assert e.value.parameters["actual"] == root and e.value.parameters["expected"] == "0" * 64

        with pytest.raises(varlink.VarlinkError) as e:
            verify(sock, {"data": 0, "root_hash": root, "hash_offset": 1000 * BS}, [fd])
        assert e.value.name == f"{IFACE}.BadSuperblock" and "signature" in e.value.parameters["reason"]

        with pytest.raises(varlink.VarlinkError) as e:
            verify(sock, {"data": 0, "root_hash": root}, [fd])  # no fs, Flatcar's offset is past the end
        assert e.value.name == f"{IFACE}.BadSuperblock" and "beyond the end" in e.value.parameters["reason"]

        for params, name in [({"data": 0, "root_hash": "xyz"}, "root_hash"),
                             ({"data": 5, "root_hash": root}, "data"),
                             ({"data": 0, "root_hash": root, "arch": "mips"}, "arch"),
                             ({"data": 0, "root_hash": root, "hash_offset": 1000}, "hash_offset"),
                             ({"data": "zero", "root_hash": root}, "data"),
                             ({"data": 0, "kernel": -1}, "kernel"),
                             ({"data": 0, "root_hash": root, "size": 0}, "size")]:
            with pytest.raises(varlink.VarlinkError) as e:
                verify(sock, params, [fd])
            assert e.value.name == "org.varlink.service.InvalidParameter"
            assert e.value.parameters.get("parameter") == name

        with pytest.raises(varlink.VarlinkError) as e:
            verify(sock, {"data": 0}, [fd])
        assert e.value.name == f"{IFACE}.NoRootHash"
    finally:
        os.close(fd)

    # A pipe is not a slot.
    r, w = os.pipe()
    try:
        with pytest.raises(varlink.VarlinkError) as e:
            verify(sock, {"data": 0, "root_hash": root}, [r])
        assert e.value.name == f"{IFACE}.IOError"
    finally:
        os.close(r)
        os.close(w)

    # Still serving, and a client that leaves mid-way does not take the service down.
    c = varlink.Client(str(sock))
    fd = os.open(img, os.O_RDONLY)
    c.send_message({"method": f"{IFACE}.Verify", "parameters": {"data": 0, "root_hash": root,
                                                                 "hash_offset": 40000 * BS}, "more": True}, fds=[fd])
    os.close(fd)
    c.close()
    fd = os.open(img, os.O_RDONLY)
    try:
        assert verify(sock, {"data": 0, "root_hash": root, "hash_offset": 40000 * BS}, [fd])["root_hash"] == root
    finally:
        os.close(fd)
    assert proc.poll() is None


def test_introspection(service):
    sock, _ = service
    with varlink.Client(str(sock)) as c:
        info = c.call("org.varlink.service.GetInfo", {})
        assert IFACE in info["interfaces"] and info["product"] == "verity-check"
        desc = c.call("org.varlink.service.GetInterfaceDescription", {"interface": IFACE})["description"]
        assert "method Verify(" in desc and "error Corrupted" in desc


def test_socket_activation(tmp_path, program, slot):
    tool = need_tool("systemd-socket-activate")
    img, kernel, root = slot
    sock = tmp_path / "activated.sock"
    proc = subprocess.Popen([tool, "-l", str(sock), str(program("verity-check")), "varlink"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        varlink.wait_for_socket(str(sock), process=proc)
        fd = os.open(img, os.O_RDONLY)
        try:
            assert verify(sock, {"data": 0, "root_hash": root, "hash_offset": 40000 * BS}, [fd])["root_hash"] == root
        finally:
            os.close(fd)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_varlink_without_socket_fails_cleanly(program):
    p = subprocess.run([str(program("verity-check")), "varlink"], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")})
    assert p.returncode != 0
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "No socket passed" in lines[0]
