"""Targets as the CLI gets them: a loop block device (its size bounds the writes), and inherited
descriptors for payload, target and kernel."""
import os
import subprocess

import pytest

import payload as pl
from payload import keys, pw, pw_session  # noqa: F401 (fixtures)

MiB = 1024 * 1024


@pytest.fixture
def loopdev(tmp_path):
    backing = tmp_path / "disk.img"
    backing.write_bytes(b"\x5a" * (4 * MiB))
    p = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"no loop devices here: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        yield dev, backing
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


@pytest.mark.loop
def test_block_device_target(pw, keys, tmp_path, loopdev):
    dev, backing = loopdev
    data = pl.pattern_bytes(3 * MiB + 4096, seed=31)
    img = tmp_path / "usr.img"
    img.write_bytes(data)
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--compress", "none", "--key", keys.trusted[0], "-o", out, check=True)
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", dev, out)
    assert p.returncode == 0, p.stderr
    with open(dev, "rb") as f:
        assert f.read(len(data)) == data
    # an image bigger than the device is refused before writing (13)
    big = tmp_path / "big.img"
    big.write_bytes(pl.pattern_bytes(5 * MiB, seed=32))
    pl.run(pw, "generate", "--image", big, "--compress", "none", "--key", keys.trusted[0], "-o", tmp_path / "big", check=True)
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", dev, tmp_path / "big")
    assert pl.error_code(p) == 13
    with open(dev, "rb") as f:
        assert f.read(len(data)) == data


def test_inherited_descriptors(pw, keys, tmp_path):
    data = pl.pattern_bytes(MiB + 100, seed=33)
    img = tmp_path / "usr.img"
    img.write_bytes(data)
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"k" * 5000)
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--kernel", kernel, "--key", keys.trusted[0], "-o", out, check=True)
    pfd = os.open(out, os.O_RDONLY)
    tfd = os.open(tmp_path / "t", os.O_RDWR | os.O_CREAT, 0o644)
    kfd = os.open(tmp_path / "k", os.O_RDWR | os.O_CREAT, 0o644)
    env = dict(os.environ)
    env.pop("SWITCHYARD_PAYLOAD_STOP_AFTER_OPS", None)
    p = subprocess.run([str(pw), "apply", "--keys", keys.trusted[1], f"--payload-fd={pfd}", f"--target-fd={tfd}",
                        f"--kernel-fd={kfd}"], pass_fds=(pfd, tfd, kfd), capture_output=True, env=env)
    for fd in (pfd, tfd, kfd):
        os.close(fd)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "t").read_bytes()[:len(data)] == data
    assert (tmp_path / "k").read_bytes() == b"k" * 5000


def _apply_fds(pw, keys, fds, *args):
    env = dict(os.environ)
    env.pop("SWITCHYARD_PAYLOAD_STOP_AFTER_OPS", None)
    return subprocess.run([str(pw), "apply", "--keys", keys.trusted[1], *args], pass_fds=fds, capture_output=True,
                          env=env)


@pytest.mark.parametrize("flags", [os.O_RDONLY, os.O_WRONLY, os.O_RDWR | os.O_APPEND])
def test_unusable_target_descriptor(pw, keys, tmp_path, flags):
    img = tmp_path / "usr.img"
    img.write_bytes(bytes(8192))
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--key", keys.trusted[0], "-o", out, check=True)
    (tmp_path / "t").write_bytes(b"\x11" * 8192)
    tfd = os.open(tmp_path / "t", flags)
    p = _apply_fds(pw, keys, (tfd,), f"--target-fd={tfd}", out)
    os.close(tfd)
    assert pl.error_code(p) == 7
    assert (tmp_path / "t").read_bytes() == b"\x11" * 8192


def test_nonblocking_pipe_input(pw, keys, tmp_path):
    import threading
    import time
    data = pl.pattern_bytes(MiB, seed=34)
    img = tmp_path / "usr.img"
    img.write_bytes(data)
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--compress", "none", "--key", keys.trusted[0], "-o", out, check=True)
    payload = out.read_bytes()
    r, w = os.pipe()
    os.set_blocking(r, False)

    def slow_writer():
        for i in range(0, len(payload), 100000):
            os.write(w, payload[i:i + 100000])
            time.sleep(0.01)
        os.close(w)
    t = threading.Thread(target=slow_writer)
    t.start()
    p = _apply_fds(pw, keys, (r,), f"--payload-fd={r}", "--target", tmp_path / "t")
    t.join()
    os.close(r)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "t").read_bytes()[:len(data)] == data
