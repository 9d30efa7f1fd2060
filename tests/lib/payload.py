"""Helpers for CrAU payload tests: keys, images, running payload-writer, locating payload sections, and a
minimal protobuf encoder to craft manifests the generator would never write."""
import hashlib
import json
import os
import struct
import subprocess


def make_rsa_key(directory, name="key", bits=2048):
    """Returns (private_pem, public_pem) paths made with the openssl CLI."""
    priv = os.path.join(directory, f"{name}.pem")
    pub = os.path.join(directory, f"{name}.pub.pem")
    subprocess.run(["openssl", "genrsa", "-out", priv, str(bits)], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", priv, "-pubout", "-out", pub], check=True, capture_output=True)
    return priv, pub


def pattern_bytes(size, seed=1):
    """Deterministic, poorly compressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d:%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:size])


def run(pw, *args, input=None, env=None, check=False, timeout=120):
    e = dict(os.environ)
    e.pop("SWITCHYARD_PAYLOAD_STOP_AFTER_OPS", None)
    if env:
        e.update(env)
    p = subprocess.run([str(pw), *map(str, args)], input=input, capture_output=True, env=e, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"payload-writer {' '.join(map(str, args))} failed: {p.stderr.decode()}")
    return p


def stop_service(proc, timeout=10):
    """Stops a payload-writer service process (SIGTERM, then SIGKILL); returns what it wrote to stderr
    and checks that the sanitizers found nothing."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    err = proc.stderr.read().decode() if proc.stderr else ""
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err
    return err


def error_code(proc):
    """The spec §1.6 code named in payload-writer's one-line error ("error N (Name): ...")."""
    text = proc.stderr.decode()
    marker = "error "
    i = text.rfind(marker)
    assert i >= 0, f"no error code in: {text!r}"
    return int(text[i + len(marker):].split(" ", 1)[0])


def inspect(pw, payload, keys=()):
    args = ["inspect", "--json"]
    for k in keys:
        args += ["--keys", k]
    p = run(pw, *args, payload)
    return json.loads(p.stdout.decode()), p


class Layout:
    """Section boundaries of a payload file, from its header and `inspect --json`."""

    def __init__(self, pw, path):
        data = open(path, "rb").read()
        info, _ = inspect(pw, path)
        self.size = len(data)
        self.manifest_size = struct.unpack(">Q", data[12:20])[0]
        self.metadata_size = 20 + self.manifest_size
        m = info["manifest"]
        self.manifest = m
        self.ops = list(m.get("partition_operations", []))
        for proc in m.get("procedures", []):
            self.ops += proc.get("operations", [])
        self.signatures_offset = m.get("signatures_offset")
        self.signatures_size = m.get("signatures_size", 0)
        self.block_size = m.get("block_size", 4096)

    def op_start(self, i):
        return self.metadata_size + self.ops[i].get("data_offset", 0)

    @property
    def signature_start(self):
        return self.metadata_size + self.signatures_offset


# --- a minimal protobuf encoder (proto2 wire format) for crafted manifests ---

def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, v):
    return _varint(num << 3) + _varint(v)


def field_bytes(num, b):
    return _varint(num << 3 | 2) + _varint(len(b)) + b


def extent(start, num):
    return field_varint(1, start) + field_varint(2, num)


def operation(type_, offset, length, data_hash, extents):
    out = field_varint(1, type_)
    if length:
        out += field_varint(2, offset) + field_varint(3, length)
    for s, n in extents:
        out += field_bytes(6, extent(s, n))
    if data_hash is not None:
        out += field_bytes(8, data_hash)
    return out


def info(size, digest):
    return field_varint(1, size) + field_bytes(2, digest)


def manifest(ops, new_info, block_size=4096, procedures=(), signatures=None):
    out = b"".join(field_bytes(1, op) for op in ops)
    out += field_varint(3, block_size)
    if signatures is not None:
        out += field_varint(4, signatures[0]) + field_varint(5, signatures[1])
    out += field_bytes(9, new_info)
    for p in procedures:
        out += field_bytes(10, p)
    return out


def procedure(type_, ops, new_info):
    return field_varint(1, type_) + b"".join(field_bytes(2, op) for op in ops) + field_bytes(4, new_info)


def container(manifest_bytes, blobs, signature_blob=b""):
    return b"CrAU" + struct.pack(">QQ", 1, len(manifest_bytes)) + manifest_bytes + blobs + signature_blob


# --- pytest fixtures for the payload-writer tests (import them into a test module) ---

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """Two RSA-2048 key pairs made with openssl: .trusted and .untrusted, each (private, public)."""
    d = tmp_path_factory.mktemp("keys")

    class K:
        trusted = make_rsa_key(str(d), "trusted")
        untrusted = make_rsa_key(str(d), "untrusted")
    return K


@pytest.fixture(scope="session")
def pw_session(build_dir):
    p = build_dir / "src/payload-writer/payload-writer"
    if not p.exists():
        pytest.fail(f"payload-writer was not built at {p}")
    return p


@pytest.fixture
def pw(pw_session):
    return pw_session
