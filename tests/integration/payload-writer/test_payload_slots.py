"""End to end with the real peer: slot-manager hands out the inactive slot of a Flatcar-layout disk image
(image file fd + offset + size, and the ESP kernel file), payload-writer writes a payload into exactly
that slot over varlink, and the active slot stays untouched."""
import base64
import hashlib
import os
import subprocess
import threading

import pytest

import payload as pl
from conftest import need_tool, program_path
from payload import keys, pw, pw_session  # noqa: F401 (fixtures)

varlink = pytest.importorskip("varlink")
diskimage = pytest.importorskip("diskimage")

MiB = 1024 * 1024


def region_digest(path, offset, size):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        left = size
        while left:
            b = f.read(min(left, MiB))
            assert b
            h.update(b)
            left -= len(b)
    return h.hexdigest()


class Services:
    def __init__(self, tmp_path, pw, keys):
        need_tool("sfdisk")
        sm = program_path("slot-manager")
        if not sm.exists():
            pytest.fail(f"slot-manager was not built at {sm}")
        self.image = diskimage.make_flatcar_image(tmp_path / "disk.img", slot_size_mib=8, format_esp=False)
        self.esp = tmp_path / "esp"
        (self.esp / "flatcar").mkdir(parents=True)
        (self.esp / "flatcar" / "vmlinuz-a").write_bytes(b"booted kernel a")
        cmdline = tmp_path / "cmdline"
        cmdline.write_text(f"mount.usr=/dev/mapper/usr verity.usr=PARTUUID={diskimage.USR_A_PARTUUID} rw\n")
        self.slots_sock = str(tmp_path / "io.switchyard.Slots")
        self.pw_sock = str(tmp_path / "io.switchyard.PayloadWriter")
        env = dict(os.environ)
        env.pop("SWITCHYARD_PAYLOAD_STOP_AFTER_OPS", None)
        self.procs = [
            subprocess.Popen([str(sm), f"--disk={self.image.path}", f"--esp={self.esp}", f"--cmdline={cmdline}",
                              "varlink", f"--listen={self.slots_sock}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env),
            subprocess.Popen([str(pw), "varlink", f"--listen={self.pw_sock}", f"--keys={keys.trusted[1]}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env),
        ]
        varlink.wait_for_socket(self.slots_sock, process=self.procs[0])
        varlink.wait_for_socket(self.pw_sock, process=self.procs[1])

    def stop(self):
        for p in self.procs:
            p.terminate()
            p.wait(timeout=10)
            p.stderr.close()

    def open_inactive(self):
        with varlink.Client(self.slots_sock) as c:
            reply = c.call("io.switchyard.Slots.OpenInactive", {})
            fds = list(c.received_fds)
            c.received_fds = []
        return reply, fds[reply["usr"]], fds[reply["kernel"]]

    def apply(self, payload, reply, usr, kernel):
        r, w = os.pipe()

        def writer():
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(w, view):]
            except BrokenPipeError:
                pass
            finally:
                os.close(w)
        t = threading.Thread(target=writer)
        t.start()
        try:
            with varlink.Client(self.pw_sock) as c:
                return list(c.call_more("io.switchyard.PayloadWriter.Apply", {
                    "payload": 0, "target": 1, "kernel": 2, "target_offset": reply["offset"],
                    "target_size": reply["size"], "expected_size": len(payload),
                    "expected_sha256": base64.b64encode(hashlib.sha256(payload).digest()).decode()},
                    fds=[r, usr, kernel]))
        finally:
            os.close(r)
            t.join()


@pytest.fixture
def services(tmp_path, pw, keys):
    s = Services(tmp_path, pw, keys)
    yield s
    s.stop()


def make_payload(pw, keys, tmp_path, size, kernel=b"new kernel b" * 1000):
    img = tmp_path / "usr.img"
    data = pl.pattern_bytes(size, seed=size)
    img.write_bytes(data)
    (tmp_path / "vmlinuz").write_bytes(kernel)
    out = tmp_path / "update.bin"
    pl.run(pw, "generate", "--image", img, "--kernel", tmp_path / "vmlinuz", "--compress", "none",
           "--key", keys.trusted[0], "-o", out, check=True)
    return data, out.read_bytes()


def test_update_into_inactive_slot(services, pw, keys, tmp_path):
    data, payload = make_payload(pw, keys, tmp_path, 6 * MiB)
    a, b = services.image.usr_a, services.image.usr_b
    a_before = region_digest(services.image.path, a.offset, a.size)
    reply, usr, kernel = services.open_inactive()
    try:
        assert reply["slot"] == "b" and (reply["offset"], reply["size"]) == (b.offset, b.size)
        replies = services.apply(payload, reply, usr, kernel)
    finally:
        os.close(usr)
        os.close(kernel)
    final = replies[-1]
    assert final["new_partition_size"] == len(data)
    assert final["kernel_size"] == len(b"new kernel b" * 1000)
    assert region_digest(services.image.path, b.offset, len(data)) == hashlib.sha256(data).hexdigest()
    assert region_digest(services.image.path, a.offset, a.size) == a_before
    assert (services.esp / "flatcar" / "vmlinuz-b").read_bytes() == b"new kernel b" * 1000
    assert (services.esp / "flatcar" / "vmlinuz-a").read_bytes() == b"booted kernel a"


def test_payload_larger_than_slot_refused(services, pw, keys, tmp_path):
    data, payload = make_payload(pw, keys, tmp_path, 9 * MiB)
    image = services.image
    a, b = image.usr_a, image.usr_b
    span = (a.offset, b.offset + b.size - a.offset)
    before = region_digest(image.path, *span)
    reply, usr, kernel = services.open_inactive()
    try:
        with pytest.raises(varlink.VarlinkError) as e:
            services.apply(payload, reply, usr, kernel)
    finally:
        os.close(usr)
        os.close(kernel)
    assert e.value.parameters["code"] == 13
    # refused before writing: both slots' bytes are as they were
    assert region_digest(image.path, *span) == before
