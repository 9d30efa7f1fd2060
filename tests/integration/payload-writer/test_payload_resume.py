"""Interrupted applies resume from the checkpoint: stopped by the test hook or killed mid-stream, with the
input as omaha-client sends it on resume ([0, metadata_size) + [metadata_size + blob_offset, end)) or as
the whole payload again."""
import base64
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest

import payload as pl
from payload import keys, pw, pw_session  # noqa: F401 (fixtures)

CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def signed(tmp_path_factory, keys, pw_session):
    d = tmp_path_factory.mktemp("resume")
    img = d / "usr.img"
    img.write_bytes(pl.pattern_bytes(12 * CHUNK, seed=11))
    kernel = d / "vmlinuz"
    kernel.write_bytes(pl.pattern_bytes(3 * CHUNK + 5, seed=12))
    out = d / "p.bin"
    pl.run(pw_session, "generate", "--image", img, "--kernel", kernel, "--chunk-size", "64K", "--compress", "none",
           "--key", keys.trusted[0], "-o", out, check=True)
    class S:
        path = out
        payload = out.read_bytes()
        image = img.read_bytes()
        kdata = kernel.read_bytes()
        sha = base64.b64encode(hashlib.sha256(out.read_bytes()).digest()).decode()
    return S


def apply_args(keys, tmp_path, signed, *extra):
    return ["apply", "--keys", keys.trusted[1], "--target", tmp_path / "t.img", "--kernel", tmp_path / "k",
            "--checkpoint", tmp_path / "cp.json", "--expected-sha256", signed.sha, "--json", *extra]


def ranged(signed, cp):
    ms, bo = cp["metadata_size"], cp["blob_offset"]
    return signed.payload[:ms] + signed.payload[ms + bo:]


def check_done(tmp_path, signed, p, resumed_at):
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["resumed_at_operation"] == resumed_at
    assert res["payload_sha256"] == signed.sha
    assert (tmp_path / "t.img").read_bytes()[:len(signed.image)] == signed.image
    assert (tmp_path / "k").read_bytes() == signed.kdata
    assert not (tmp_path / "cp.json").exists()


def test_stop_and_resume_ranged(pw, keys, tmp_path, signed):
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), "-", input=signed.payload,
               env={"SWITCHYARD_PAYLOAD_STOP_AFTER_OPS": "5"})
    assert pl.error_code(p) == 100
    cp = json.loads((tmp_path / "cp.json").read_text())
    assert cp["next_operation"] == 5
    assert cp["blob_offset"] == 5 * CHUNK
    assert cp["payload_sha256"] == signed.sha
    assert cp["metadata_size"] == pl.Layout(pw, signed.path).metadata_size
    assert cp["hash_state"]["length"] == cp["metadata_size"] + cp["blob_offset"]
    # second interruption inside the kernel procedure, then the rest
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), "-", input=ranged(signed, cp),
               env={"SWITCHYARD_PAYLOAD_STOP_AFTER_OPS": "8"})
    assert pl.error_code(p) == 100
    cp = json.loads((tmp_path / "cp.json").read_text())
    assert cp["next_operation"] == 13
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), "-", input=ranged(signed, cp))
    check_done(tmp_path, signed, p, 13)


def test_stop_and_resume_full_input(pw, keys, tmp_path, signed):
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), signed.path, env={"SWITCHYARD_PAYLOAD_STOP_AFTER_OPS": "2"})
    assert pl.error_code(p) == 100
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), signed.path)
    check_done(tmp_path, signed, p, 2)


def test_checkpoint_of_other_payload_restarts(pw, keys, tmp_path, signed):
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), signed.path, env={"SWITCHYARD_PAYLOAD_STOP_AFTER_OPS": "4"})
    assert pl.error_code(p) == 100
    cp = json.loads((tmp_path / "cp.json").read_text())
    cp["payload_sha256"] = base64.b64encode(hashlib.sha256(b"another").digest()).decode()
    (tmp_path / "cp.json").write_text(json.dumps(cp))
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), signed.path)
    check_done(tmp_path, signed, p, 0)


def test_garbage_checkpoint_restarts(pw, keys, tmp_path, signed):
    (tmp_path / "cp.json").write_text('{"version": 1, "next_operation": 7')
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), signed.path)
    check_done(tmp_path, signed, p, 0)


def test_inconsistent_checkpoint_restarts(pw, keys, tmp_path, signed):
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), signed.path, env={"SWITCHYARD_PAYLOAD_STOP_AFTER_OPS": "4"})
    cp = json.loads((tmp_path / "cp.json").read_text())
    cp["blob_offset"] += 1
    (tmp_path / "cp.json").write_text(json.dumps(cp))
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), signed.path)
    check_done(tmp_path, signed, p, 0)


def test_tampered_target_after_interruption_is_caught(pw, keys, tmp_path, signed):
    """Resuming trusts the checkpoint for what was written; the final read-back still catches a change."""
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), signed.path, env={"SWITCHYARD_PAYLOAD_STOP_AFTER_OPS": "3"})
    assert pl.error_code(p) == 100
    with open(tmp_path / "t.img", "r+b") as f:
        f.seek(100)
        f.write(b"\0" * 10)
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), signed.path)
    assert pl.error_code(p) == 15


def test_killed_mid_stream_resumes(pw, keys, tmp_path, signed):
    layout = pl.Layout(pw, signed.path)
    env = dict(os.environ)
    env.pop("SWITCHYARD_PAYLOAD_STOP_AFTER_OPS", None)
    args = [str(a) for a in apply_args(keys, tmp_path, signed)] + ["-"]
    proc = subprocess.Popen([str(pw), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    # metadata, six whole operations and half of the seventh, then stall like a dead connection
    cut = layout.op_start(6) + CHUNK // 2
    proc.stdin.write(signed.payload[:cut])
    proc.stdin.flush()
    cp_path = tmp_path / "cp.json"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if json.loads(cp_path.read_text())["next_operation"] == 6:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()
    proc.stderr.close()
    cp = json.loads(cp_path.read_text())
    assert cp["next_operation"] == 6
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), "-", input=ranged(signed, cp))
    check_done(tmp_path, signed, p, 6)


def test_checkpoints_are_not_per_operation(pw, keys, tmp_path, signed):
    """Data flowing without a pause is flushed and checkpointed about once a second, not per
    operation: here the 15 operations arrive at once, so the targets are synced only at the end."""
    import shutil
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    (tmp_path / "cp.json").write_text("")
    log = tmp_path / "strace.log"
    p = subprocess.run(["strace", "-f", "-qq", "-o", str(log), "-e", "trace=fdatasync,fsync,pwrite64",
                        str(pw), *[str(a) for a in apply_args(keys, tmp_path, signed)], str(signed.path)],
                       capture_output=True, text=True,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))  # LeakSanitizer cannot run under ptrace
    check_done(tmp_path, signed, p, 0)
    calls = log.read_text().splitlines()
    syncs = [c for c in calls if "fdatasync(" in c or "fsync(" in c]
    writes = [c for c in calls if "pwrite64(" in c]
    assert len(writes) >= 15, calls  # every operation was written
    # the two targets once before the read-back, the checkpoint file when it is cleared, and at most a
    # couple of timed checkpoints on a slow machine: far fewer than one per operation
    assert len(syncs) <= 8, syncs


def test_bad_operation_saves_what_was_written(pw, keys, tmp_path, signed):
    """An apply that stops at a corrupted operation saves a checkpoint for the operations before it
    (checkpoints are not per operation, so this is the early-stop save); a retry resumes there."""
    layout = pl.Layout(pw, signed.path)
    bad = bytearray(signed.payload)
    bad[layout.op_start(5) + 7] ^= 1
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), "-", input=bytes(bad))
    assert p.returncode != 0
    assert pl.error_code(p) == 29, p.stderr
    cp = json.loads((tmp_path / "cp.json").read_text())
    assert cp["next_operation"] == 5
    assert cp["blob_offset"] == 5 * CHUNK
    p = pl.run(pw, *apply_args(keys, tmp_path, signed), "-", input=ranged(signed, cp))
    check_done(tmp_path, signed, p, 5)
