"""generate → sign → inspect → apply round trips over images of several sizes, contents, compressions
and block sizes, with the kernel and PCR policy procedures and a target inside a larger image."""
import base64
import hashlib
import os

import pytest

import payload as pl
from payload import keys, pw, pw_session  # noqa: F401 (fixtures)

MiB = 1024 * 1024


def image_bytes(kind, size):
    if kind == "zeros":
        return bytes(size)
    if kind == "random":
        return pl.pattern_bytes(size, seed=size)
    if kind == "text":
        line = b"switchyard keeps the A/B host up to date\n"
        return (line * (size // len(line) + 1))[:size]
    # mixed: random, zeros, text in thirds
    third = size // 3
    return pl.pattern_bytes(third, 7) + bytes(third) + image_bytes("text", size - 2 * third)


CASES = [
    # kind, size, compress, chunk, block
    ("zeros", 0, "bz2", "1M", 4096),
    ("random", 4096, "bz2", "1M", 4096),
    ("mixed", 3 * MiB + 12345, "bz2", "1M", 4096),
    ("text", 2 * MiB, "xz", "1M", 4096),
    ("mixed", MiB + 1, "best", "256K", 4096),
    ("random", MiB, "none", "64K", 512),
    ("text", 300000, "bz2", "64K", 1024),
]


@pytest.mark.parametrize("kind,size,compress,chunk,block", CASES)
def test_roundtrip(pw, keys, tmp_path, kind, size, compress, chunk, block):
    img = tmp_path / "usr.img"
    data = image_bytes(kind, size)
    img.write_bytes(data)
    kernel = tmp_path / "vmlinuz"
    kdata = pl.pattern_bytes(1500000 if size else 10, seed=99)
    kernel.write_bytes(kdata)
    out = tmp_path / "p.bin"
    pl.run(pw, "generate", "--image", img, "--kernel", kernel, "--compress", compress, "--chunk-size", chunk,
           "--block-size", block, "--key", keys.trusted[0], "-o", out, check=True)

    info, p = pl.inspect(pw, out, keys=[keys.trusted[1]])
    assert p.returncode == 0, p.stderr
    payload = out.read_bytes()
    assert info["size"] == len(payload)
    assert info["sha256"] == base64.b64encode(hashlib.sha256(payload).digest()).decode()
    assert info["signatures"][0]["version"] == 2
    assert info["signatures"][0]["verified_by"].endswith("trusted.pub.pem")
    m = info["manifest"]
    assert m["new_partition_info"]["size"] == size
    assert m["new_partition_info"]["hash"] == hashlib.sha256(data).hexdigest()
    assert m["block_size"] == block
    assert m["procedures"][0]["type"] == "KERNEL"
    assert m["procedures"][0]["new_info"]["hash"] == hashlib.sha256(kdata).hexdigest()
    types = {op["type"] for op in m.get("partition_operations", [])}
    if compress == "none":
        assert types <= {"REPLACE"}
    if kind == "text" and compress == "xz":
        assert types == {"REPLACE_XZ"}
    if kind == "random" and compress == "bz2":
        assert types == {"REPLACE"}  # bzip2 is never strictly smaller on random data
    # noop ops: one per kernel op plus the signature op, all sparse holes (exact, as a string)
    assert all(op["dst_extents"][0]["start_block"] == "18446744073709551615" for op in m["noop_operations"])
    assert len(m["noop_operations"]) == len(m["procedures"][0]["operations"]) + 1
    assert m["noop_operations"][-1]["data_offset"] == m["signatures_offset"]

    target = tmp_path / "target.img"
    ktarget = tmp_path / "vmlinuz-b"
    sha = base64.b64encode(hashlib.sha256(payload).digest()).decode()
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", target, "--kernel", ktarget,
               "--expected-size", len(payload), "--expected-sha256", sha, "--json", out)
    assert p.returncode == 0, p.stderr
    assert target.read_bytes()[:size] == data
    assert ktarget.read_bytes() == kdata


def test_generate_is_deterministic_and_sign_matches(pw, keys, tmp_path):
    img = tmp_path / "usr.img"
    img.write_bytes(image_bytes("mixed", 3 * MiB // 2))
    a, b, unsigned, signed = (tmp_path / n for n in ("a", "b", "u", "s"))
    for out in (a, b):
        pl.run(pw, "generate", "--image", img, "--key", keys.trusted[0], "-o", out, check=True)
    assert a.read_bytes() == b.read_bytes()
    # generate + sign in two steps gives the same bytes as generate --key
    pl.run(pw, "generate", "--image", img, "-o", unsigned, check=True)
    pl.run(pw, "sign", "--key", keys.trusted[0], "-o", signed, unsigned, check=True)
    assert signed.read_bytes() == a.read_bytes()


def test_resign_with_two_keys_then_one(pw, keys, tmp_path):
    img = tmp_path / "usr.img"
    img.write_bytes(image_bytes("text", MiB))
    one, two, back = (tmp_path / n for n in ("one", "two", "back"))
    pl.run(pw, "generate", "--image", img, "--key", keys.trusted[0], "-o", one, check=True)
    pl.run(pw, "sign", "--key", keys.untrusted[0], "--key", keys.trusted[0], "-o", two, one, check=True)
    info, p = pl.inspect(pw, two, keys=[keys.trusted[1], keys.untrusted[1]])
    assert p.returncode == 0, p.stderr
    assert [s["version"] for s in info["signatures"]] == [1, 2]
    assert info["signatures_size"] == 528
    assert info["signatures"][0]["verified_by"].endswith("untrusted.pub.pem")
    assert info["signatures"][1]["verified_by"].endswith("trusted.pub.pem")
    # the client checks the version 2 entry: trusted key → applies, untrusted-only → refused (18)
    assert pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", tmp_path / "t", two).returncode == 0
    p = pl.run(pw, "apply", "--keys", keys.untrusted[1], "--target", tmp_path / "t2", two)
    assert p.returncode != 0 and pl.error_code(p) == 18
    pl.run(pw, "sign", "--key", keys.trusted[0], "-o", back, two, check=True)
    assert back.read_bytes() == one.read_bytes()


def test_key_directory_any_key_may_match(pw, keys, tmp_path):
    img = tmp_path / "usr.img"
    img.write_bytes(image_bytes("text", 100000))
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--key", keys.trusted[0], "-o", out, check=True)
    keydir = tmp_path / "keys.d"
    keydir.mkdir()
    (keydir / "00-old.pem").write_bytes(open(keys.untrusted[1], "rb").read())
    (keydir / "10-new.pem").write_bytes(open(keys.trusted[1], "rb").read())
    p = pl.run(pw, "apply", "--keys", keydir, "--target", tmp_path / "t", out)
    assert p.returncode == 0, p.stderr
    assert b"10-new.pem" in p.stderr


def test_target_offset_and_size_bound_writes(pw, keys, tmp_path):
    data = image_bytes("mixed", 2 * MiB)
    img = tmp_path / "usr.img"
    img.write_bytes(data)
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--compress", "none", "--key", keys.trusted[0], "-o", out, check=True)
    disk = tmp_path / "disk.img"
    offset = 3 * MiB
    disk.write_bytes(b"\xa5" * (8 * MiB))
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", disk, "--target-offset", offset,
               "--target-size", 2 * MiB, out)
    assert p.returncode == 0, p.stderr
    d = disk.read_bytes()
    assert d[offset:offset + len(data)] == data
    assert d[:offset] == b"\xa5" * offset
    assert d[offset + 2 * MiB:] == b"\xa5" * (len(d) - offset - 2 * MiB)
    # a slot smaller than the new partition is refused before anything is written (13)
    disk.write_bytes(b"\xa5" * (8 * MiB))
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", disk, "--target-offset", offset,
               "--target-size", MiB, out)
    assert pl.error_code(p) == 13
    assert disk.read_bytes() == b"\xa5" * (8 * MiB)


def test_pcr_policy_procedure(pw, keys, tmp_path):
    img = tmp_path / "usr.img"
    img.write_bytes(image_bytes("text", 200000))
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(pl.pattern_bytes(70000, 3))
    pcr = tmp_path / "pcrs.zip"
    pcr.write_bytes(pl.pattern_bytes(5000, 4))
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--kernel", kernel, "--pcr-policy", pcr, "--key", keys.trusted[0],
           "-o", out, check=True)
    info, _ = pl.inspect(pw, out)
    assert [p["type"] for p in info["manifest"]["procedures"]] == ["KERNEL", "PCR_POLICY"]
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", tmp_path / "t", "--kernel", tmp_path / "k",
               "--pcr-policy", tmp_path / "pcrs-b.zip", out)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "pcrs-b.zip").read_bytes() == pcr.read_bytes()
    assert (tmp_path / "k").read_bytes() == kernel.read_bytes()
    # without a PCR target the data is still checked, just not written
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", tmp_path / "t2", "--kernel", tmp_path / "k2", out)
    assert p.returncode == 0, p.stderr


def test_kernel_target_required(pw, keys, tmp_path):
    img = tmp_path / "usr.img"
    img.write_bytes(bytes(8192))
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel")
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--kernel", kernel, "--key", keys.trusted[0], "-o", out, check=True)
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", tmp_path / "t", out)
    assert pl.error_code(p) == 8
    assert not (tmp_path / "t").exists() or (tmp_path / "t").stat().st_size == 0


def test_stdin_and_progress_json(pw, keys, tmp_path):
    img = tmp_path / "usr.img"
    img.write_bytes(image_bytes("mixed", 2 * MiB))
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--compress", "none", "--key", keys.trusted[0], "-o", out, check=True)
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", tmp_path / "t", "--json", "-",
               input=out.read_bytes())
    assert p.returncode == 0, p.stderr
    import json
    res = json.loads(p.stdout)
    assert res["payload_size"] == out.stat().st_size
    assert res["new_partition_size"] == 2 * MiB
    assert res["operations"] == 2


def test_help_and_version(pw):
    assert pl.run(pw, "--help").returncode == 0
    v = pl.run(pw, "--version")
    assert v.returncode == 0 and v.stdout.startswith(b"payload-writer ")
    assert pl.run(pw, "bogus").returncode != 0


def test_manifest_shape_matches_a_real_flatcar_payload(pw, keys, tmp_path, fixtures_dir):
    """A one-block extension image gives the same manifest, field for field, as the protoc dump of a real
    dev-key-signed OEM sysext payload (values that depend on the content masked)."""
    import re
    dump = (fixtures_dir / "omaha/real-world/oem-sysext-payload-manifest-dump.txt").read_text()
    img = tmp_path / "oem.raw"
    img.write_bytes(image_bytes("text", 4096))
    out = tmp_path / "oem.gz"
    pl.run(pw, "generate", "--image", img, "--key", keys.trusted[0], "-o", out, check=True)
    text = pl.run(pw, "inspect", out, check=True).stdout.decode()
    ours = text.split("\nManifest:\n", 1)[1]

    def shape(s):
        lines = []
        for line in s.splitlines():
            line = line.strip()
            if not line or line.startswith("PROBLEM"):
                continue
            line = re.sub(r'"(\\.|[^"\\])*"', '"…"', line)
            line = re.sub(r"^(data_offset|data_length|signatures_offset): \d+$", r"\1: N", line)
            lines.append(line)
        return lines

    assert shape(ours) == shape(dump)


def test_progress_bar_on_a_terminal(pw, keys, tmp_path):
    import shlex
    import shutil
    import subprocess
    if not shutil.which("script"):
        pytest.skip("script (util-linux) is not installed")
    img = tmp_path / "usr.img"
    img.write_bytes(image_bytes("text", 3 * MiB))
    out = tmp_path / "p"
    pl.run(pw, "generate", "--image", img, "--compress", "none", "--key", keys.trusted[0], "-o", out, check=True)
    cmd = " ".join(shlex.quote(str(a)) for a in [pw, "apply", "--keys", keys.trusted[1], "--target", tmp_path / "t", out])
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout
    text = p.stdout.decode()
    assert "\r[" in text and "3/3 ops" in text and "#" in text
    # without a terminal: no bar
    p = pl.run(pw, "apply", "--keys", keys.trusted[1], "--target", tmp_path / "t2", out)
    assert b"ops" not in p.stderr
