"""Every corruption class is refused with its spec §1.6 code, and nothing is written from the first bad
operation on: header, manifest, operation data, signature, trailing bytes, truncation at each section
boundary, expectations from Omaha, missing/untrusted keys, and crafted manifests."""
import base64
import hashlib

import pytest

import payload as pl
from payload import keys, pw, pw_session  # noqa: F401 (fixtures)

CHUNK = 64 * 1024
N_CHUNKS = 4
FILL = b"\xa5"


@pytest.fixture(scope="module")
def good(tmp_path_factory, keys, pw_session):
    pw = pw_session
    d = tmp_path_factory.mktemp("corrupt")
    img = d / "usr.img"
    data = pl.pattern_bytes(N_CHUNKS * CHUNK, seed=5)
    img.write_bytes(data)
    kernel = d / "vmlinuz"
    kdata = pl.pattern_bytes(100000, seed=6)
    kernel.write_bytes(kdata)
    out = d / "good.bin"
    pl.run(pw, "generate", "--image", img, "--kernel", kernel, "--chunk-size", "64K", "--key", keys.trusted[0],
           "-o", out, check=True)
    class G:
        path = out
        payload = out.read_bytes()
        image = data
        kernel = kdata
        layout = pl.Layout(pw, out)
    return G


def apply(pw, keys, tmp_path, payload_bytes, *extra, insecure=False):
    target = tmp_path / "target.img"
    target.write_bytes(FILL * (N_CHUNKS * CHUNK))
    kernel = tmp_path / "vmlinuz-b"
    src = tmp_path / "in.bin"
    src.write_bytes(payload_bytes)
    args = ["apply", "--target", target, "--kernel", kernel, *extra]
    args += ["--insecure-no-signature"] if insecure else ["--keys", keys.trusted[1]]
    p = pl.run(pw, *args, src)
    return p, target.read_bytes()


def assert_written_before(result, good, k):
    """Partition chunks before k hold the image; chunks from k on were never touched."""
    for i in range(N_CHUNKS):
        chunk = result[i * CHUNK:(i + 1) * CHUNK]
        if i < k:
            assert chunk == good.image[i * CHUNK:(i + 1) * CHUNK], f"chunk {i} not written"
        else:
            assert chunk == FILL * CHUNK, f"chunk {i} was written after the failure"


def test_good_payload_applies(pw, keys, tmp_path, good):
    p, t = apply(pw, keys, tmp_path, good.payload)
    assert p.returncode == 0, p.stderr
    assert t == good.image


@pytest.mark.parametrize("mutate,code", [
    (lambda b: b"CrAV" + b[4:], 21),
    (lambda b: b[:4] + (2).to_bytes(8, "big") + b[12:], 21),
    (lambda b: b[:12] + (1 << 40).to_bytes(8, "big") + b[20:], 23),
    (lambda b: b[:12] + (0).to_bytes(8, "big") + b[20:], 23),
])
def test_header(pw, keys, tmp_path, good, mutate, code):
    p, t = apply(pw, keys, tmp_path, mutate(good.payload))
    assert p.returncode != 0
    assert pl.error_code(p) == code
    assert_written_before(t, good, 0)


def test_manifest_garbage(pw, keys, tmp_path, good):
    L = good.layout
    bad = good.payload[:20] + b"\xff" * L.manifest_size + good.payload[L.metadata_size:]
    p, t = apply(pw, keys, tmp_path, bad)
    assert pl.error_code(p) == 23
    assert_written_before(t, good, 0)


def test_manifest_tampered_op_hash(pw, keys, tmp_path, good):
    """A changed hash inside the (signed) manifest: the op's data no longer matches, refused before writing."""
    L = good.layout
    h = bytes.fromhex(L.ops[2]["data_sha256_hash"])
    manifest = good.payload[20:L.metadata_size]
    i = manifest.index(h)
    manifest = manifest[:i] + bytes([h[0] ^ 1]) + manifest[i + 1:]
    p, t = apply(pw, keys, tmp_path, good.payload[:20] + manifest + good.payload[L.metadata_size:])
    assert pl.error_code(p) == 29
    assert "operation 2" in p.stderr.decode()
    assert_written_before(t, good, 2)


@pytest.mark.parametrize("k", [0, 2, N_CHUNKS - 1, N_CHUNKS])  # N_CHUNKS = first kernel op
def test_operation_data(pw, keys, tmp_path, good, k):
    L = good.layout
    pos = L.op_start(k) + L.ops[k]["data_length"] // 2
    bad = bytearray(good.payload)
    bad[pos] ^= 0x40
    p, t = apply(pw, keys, tmp_path, bytes(bad))
    assert pl.error_code(p) == 29
    assert f"operation {k}" in p.stderr.decode()
    assert_written_before(t, good, min(k, N_CHUNKS))
    if k == N_CHUNKS:
        assert (tmp_path / "vmlinuz-b").read_bytes() == b""


@pytest.mark.parametrize("where", ["data", "version"])
def test_signature(pw, keys, tmp_path, good, where):
    L = good.layout
    bad = bytearray(good.payload)
    if where == "data":
        bad[L.signature_start + 100] ^= 1
    else:
        assert bad[L.signature_start + 3:L.signature_start + 5] == b"\x08\x02"
        bad[L.signature_start + 4] = 3
    p, _ = apply(pw, keys, tmp_path, bytes(bad))
    assert pl.error_code(p) == 18


def test_trailing_bytes(pw, keys, tmp_path, good):
    p, _ = apply(pw, keys, tmp_path, good.payload + b"\0")
    assert pl.error_code(p) == 11
    assert "past its signature" in p.stderr.decode()


def boundaries(L):
    return {
        "empty": 0,
        "mid-header": 10,
        "after-header": 20,
        "mid-manifest": 20 + L.manifest_size // 2,
        "after-manifest": L.metadata_size,
        "mid-op0": L.op_start(0) + 1000,
        "after-op1": L.op_start(2),
        "mid-kernel": L.op_start(N_CHUNKS) + 10,
        "before-signature": L.signature_start,
        "mid-signature": L.signature_start + 8,
        "last-byte": L.size - 1,
    }


@pytest.mark.parametrize("name", ["empty", "mid-header", "after-header", "mid-manifest", "after-manifest", "mid-op0",
                                  "after-op1", "mid-kernel", "before-signature", "mid-signature", "last-byte"])
def test_truncation(pw, keys, tmp_path, good, name):
    L = good.layout
    cut = boundaries(L)[name]
    p, t = apply(pw, keys, tmp_path, good.payload[:cut])
    assert p.returncode != 0
    assert pl.error_code(p) == 11, p.stderr
    assert "truncated" in p.stderr.decode()
    ops_done = sum(1 for i in range(N_CHUNKS) if L.op_start(i) + L.ops[i]["data_length"] <= cut)
    assert_written_before(t, good, ops_done)


def test_expected_size_and_hash(pw, keys, tmp_path, good):
    p, t = apply(pw, keys, tmp_path, good.payload, "--expected-size", len(good.payload) + 1)
    assert pl.error_code(p) == 11
    assert_written_before(t, good, 0)  # the manifest already tells the size: refused up front
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    p, _ = apply(pw, keys, tmp_path, good.payload, "--expected-sha256", wrong)
    assert pl.error_code(p) == 10


def test_untrusted_key(pw, keys, tmp_path, good):
    target = tmp_path / "t"
    p = pl.run(pw, "apply", "--keys", keys.untrusted[1], "--target", target, "--kernel", tmp_path / "k", good.path)
    assert pl.error_code(p) == 18
    assert "does not verify" in p.stderr.decode()


def test_no_trusted_key_fails_closed(pw, keys, tmp_path, good):
    empty = tmp_path / "keys.d"
    empty.mkdir()
    target = tmp_path / "t"
    p = pl.run(pw, "apply", "--keys", empty, "--target", target, "--kernel", tmp_path / "k", good.path)
    assert pl.error_code(p) == 18
    assert "--insecure-no-signature" in p.stderr.decode()
    assert not target.exists() or target.stat().st_size == 0
    p = pl.run(pw, "apply", "--insecure-no-signature", "--target", target, "--kernel", tmp_path / "k", good.path)
    assert p.returncode == 0, p.stderr


def test_unsigned_payload_refused(pw, keys, tmp_path, good):
    unsigned = tmp_path / "u"
    img = tmp_path / "img"
    img.write_bytes(good.image)
    pl.run(pw, "generate", "--image", img, "-o", unsigned, check=True)
    p, t = apply(pw, keys, tmp_path, unsigned.read_bytes())
    assert pl.error_code(p) == 17
    assert_written_before(t, good, 0)


# --- crafted manifests (unsigned, applied with --insecure-no-signature: these checks come first) ---

def crafted(ops_blobs, new_info=None, procedures=(), types=None, offsets=None, hashes=True, bs=4096):
    ops, blob, off = [], b"", 0
    for i, data in enumerate(ops_blobs):
        o = offsets[i] if offsets else off
        t = types[i] if types else 0
        ops.append(pl.operation(t, o, len(data), hashlib.sha256(data).digest() if hashes else None,
                                [(i * len(data) // bs, len(data) // bs)]))
        blob += data
        off += len(data)
    image = b"".join(ops_blobs)
    ni = new_info or pl.info(len(image), hashlib.sha256(image).digest())
    return pl.container(pl.manifest(ops, ni, bs, procedures), blob)


def test_crafted_data_offset_gap(pw, keys, tmp_path, good):
    blobs = [b"\1" * 4096, b"\2" * 4096]
    p, _ = apply(pw, keys, tmp_path, crafted(blobs, offsets=[0, 4097]), insecure=True)
    assert pl.error_code(p) == 28
    assert "data_offset" in p.stderr.decode()


def test_crafted_missing_hash(pw, keys, tmp_path, good):
    p, _ = apply(pw, keys, tmp_path, crafted([b"\1" * 4096], hashes=False), insecure=True)
    assert pl.error_code(p) == 38


@pytest.mark.parametrize("optype,name", [(2, "MOVE"), (3, "BSDIFF")])
def test_crafted_delta_operation(pw, keys, tmp_path, good, optype, name):
    blobs = [b"\1" * 4096, b"\2" * 4096]
    p, t = apply(pw, keys, tmp_path, crafted(blobs, types=[0, optype]), insecure=True)
    assert pl.error_code(p) == 28
    assert f"{name} operations are not supported for full updates" in p.stderr.decode()
    assert t[:4096] == b"\1" * 4096 and t[4096:8192] == FILL * 4096


def test_crafted_new_partition_info_mismatch(pw, keys, tmp_path, good):
    blobs = [b"\1" * 4096]
    p, _ = apply(pw, keys, tmp_path, crafted(blobs, new_info=pl.info(4096, hashlib.sha256(b"x").digest())),
                 insecure=True)
    assert pl.error_code(p) == 15
    p, _ = apply(pw, keys, tmp_path, crafted(blobs, new_info=pl.field_varint(1, 4096)), insecure=True)
    assert pl.error_code(p) == 13


def test_crafted_kernel_info_mismatch(pw, keys, tmp_path, good):
    kdata = b"K" * 5000
    kop = pl.operation(0, 4096, len(kdata), hashlib.sha256(kdata).digest(), [(0, 256)])
    proc = pl.procedure(0, [kop], pl.info(len(kdata), hashlib.sha256(b"not the kernel").digest()))
    image = b"\1" * 4096
    op = pl.operation(0, 0, 4096, hashlib.sha256(image).digest(), [(0, 1)])
    payload = pl.container(pl.manifest([op], pl.info(4096, hashlib.sha256(image).digest()), procedures=[proc]),
                           image + kdata)
    p, _ = apply(pw, keys, tmp_path, payload, insecure=True)
    assert pl.error_code(p) == 16


def test_crafted_any_block_size(pw, keys, tmp_path, good):
    blobs = [bytes([i]) * 1000 for i in range(1, 4)]
    p, t = apply(pw, keys, tmp_path, crafted(blobs, bs=200), insecure=True)
    assert p.returncode == 0, p.stderr
    assert t[:3000] == b"".join(blobs)


def test_default_key_locations_below_root(pw, keys, tmp_path, good, tmp_root):
    """Without --keys: Flatcar's key file and /etc/switchyard/payload-keys.d/ (here below --root)."""
    target = tmp_path / "t"
    args = ["apply", "--root", tmp_root, "--target", target, "--kernel", tmp_path / "k", good.path]
    p = pl.run(pw, *args)
    assert pl.error_code(p) == 18  # nothing installed: fail closed
    keydir = tmp_root / "etc/switchyard/payload-keys.d"
    keydir.mkdir(parents=True)
    (keydir / "rotated.pem").write_bytes(open(keys.trusted[1], "rb").read())
    p = pl.run(pw, *args)
    assert p.returncode == 0, p.stderr
    (keydir / "rotated.pem").unlink()
    flatcar = tmp_root / "usr/share/update_engine/update-payload-key.pub.pem"
    flatcar.parent.mkdir(parents=True)
    flatcar.write_bytes(open(keys.untrusted[1], "rb").read())
    p = pl.run(pw, *args)
    assert pl.error_code(p) == 18
    flatcar.write_bytes(open(keys.trusted[1], "rb").read())
    p = pl.run(pw, *args)
    assert p.returncode == 0, p.stderr


def test_inspect_reports_problems(pw, keys, tmp_path, good):
    L = good.layout
    bad = bytearray(good.payload)
    bad[L.op_start(1) + 7] ^= 1
    path = tmp_path / "bad.bin"
    path.write_bytes(bytes(bad))
    info, p = pl.inspect(pw, path, keys=[keys.trusted[1]])
    assert p.returncode != 0
    assert any("operation 1" in x and "29" in x for x in info["problems"])
    assert any("18" in x for x in info["problems"])  # the signed hash changed with the data
    path.write_bytes(good.payload + b"x")
    info, p = pl.inspect(pw, path)
    assert p.returncode != 0 and any("(error 11)" in x for x in info["problems"])
    info, p = pl.inspect(pw, good.path, keys=[keys.untrusted[1]])
    assert p.returncode != 0
    assert info["signatures"][0]["verified_by"] is None
