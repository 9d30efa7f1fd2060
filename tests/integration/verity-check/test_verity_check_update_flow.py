"""The verity step of an update with its real peer: slot-manager hands out the inactive slot of a
Flatcar-layout disk and its kernel file as descriptors (OpenInactive), the new /usr (ext4 + tree) and
kernel (with the root hash embedded) are written through them, and io.switchyard.Verity checks the
slot through the same descriptors before anything would make it bootable."""
import hashlib
import os
import signal
import subprocess

import pytest

import diskimage
import varlink
from test_verity_check import BS, fake_kernel, run
from test_verity_check_varlink import verify


def start(args):
    proc = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    assert "Sanitizer" not in err and "runtime error" not in err, err


def region_digest(path, offset, size):
    with open(path, "rb") as f:
        f.seek(offset)
        return hashlib.sha256(f.read(size)).hexdigest()


@pytest.fixture
def services(tmp_path, program):
    image = diskimage.make_flatcar_image(tmp_path / "disk.img", slot_size_mib=16, esp_size_mib=4, oem_size_mib=2,
                                        root_size_mib=2, format_esp=False)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"mount.usr=/dev/mapper/usr verity.usr=PARTUUID={image.usr_a.uuid} rootflags=rw\n")
    esp = tmp_path / "esp"
    (esp / "flatcar").mkdir(parents=True)
    (esp / "flatcar" / "vmlinuz-a").write_bytes(b"booted kernel")
    slots_sock, verity_sock = tmp_path / "slots.sock", tmp_path / "verity.sock"
    slots = start([program("slot-manager"), f"--disk={image.path}", f"--cmdline={cmdline}", f"--esp={esp}",
                   "varlink", f"--listen={slots_sock}"])
    verity = start([program("verity-check"), "varlink", f"--listen={verity_sock}"])
    try:
        varlink.wait_for_socket(str(slots_sock), process=slots)
        varlink.wait_for_socket(str(verity_sock), process=verity)
        yield image, esp, slots_sock, verity_sock
    finally:
        stop(slots)
        stop(verity)


def test_verify_inactive_slot_from_slot_manager(tmp_path, program, services):
    image, esp, slots_sock, verity_sock = services
    vc = str(program("verity-check"))
    usr_a_before = region_digest(image.path, image.usr_a.offset, image.usr_a.size)

    # The new /usr as the image build makes it: ext4 with files, tree right after it, hash in the kernel.
    b = image.usr_b
    new_usr = tmp_path / "usr-b.img"
    src = tmp_path / "usr"
    (src / "share").mkdir(parents=True)
    for i in range(30):
        (src / "share" / f"file{i}").write_bytes(os.urandom(5000 + 97 * i))
    with open(new_usr, "wb") as f:
        f.truncate(b.size)
    fs_blocks = 3800
    run(["mkfs.ext4", "-q", "-b", "4096", "-O", "^has_journal", "-d", src, new_usr, str(fs_blocks)])
    new_kernel = tmp_path / "vmlinuz-new"
    fake_kernel(new_kernel, "amd64")
    root = run([vc, "format", new_usr, f"--embed-into={new_kernel}"]).stdout.strip()

    with varlink.Client(str(slots_sock)) as c:
        reply = c.call("io.switchyard.Slots.OpenInactive", {})
        fds = list(c.received_fds)
        c.received_fds = []
    try:
        assert reply["slot"] == "b"
        usr, kernel = fds[reply["usr"]], fds[reply["kernel"]]
        offset, size = reply.get("offset", 0), reply.get("size")
        assert size == b.size
        os.pwrite(usr, new_usr.read_bytes(), offset)
        os.write(kernel, new_kernel.read_bytes())

        params = {"data": 0, "kernel": 1, "offset": offset, "size": size}
        replies = verify(verity_sock, params, [usr, kernel], more=True)
        final = replies[-1]
        assert final["root_hash"] == root
        assert final["hash_offset"] == fs_blocks * BS and final["hash_offset_source"] == "ext4"
        assert final["data_blocks"] == fs_blocks

        # One flipped bit in the written slot: named by its data block, through the same descriptors.
        pos = offset + 1234 * BS + 77
        byte = os.pread(usr, 1, pos)
        os.pwrite(usr, bytes([byte[0] ^ 1]), pos)
        with pytest.raises(varlink.VarlinkError) as e:
            verify(verity_sock, params, [usr, kernel])
        assert e.value.name == "io.switchyard.Verity.Corrupted"
        assert e.value.parameters["area"] == "data" and e.value.parameters["block"] == 1234
        os.pwrite(usr, byte, pos)
        assert verify(verity_sock, params, [usr, kernel])["root_hash"] == root
    finally:
        for fd in fds:
            os.close(fd)

    assert (esp / "flatcar" / "vmlinuz-b").read_bytes()[64:128] == root.encode()
    # The booted slot was never written.
    assert region_digest(image.path, image.usr_a.offset, image.usr_a.size) == usr_a_before
