"""The read-back check of the /usr target runs behind the writes, from the disk, and still sees exactly
the final slot: operations in any order, rewritten blocks and blocks no operation writes. It leaves the
slot out of the page cache, and it starts before the last write (the overlap is what it is for)."""
import hashlib
import re
import shutil
import subprocess

import pytest

import payload as pl
from payload import keys, pw, pw_session  # noqa: F401 (fixtures)

MiB = 1024 * 1024
FILL = b"\xa5"


def crafted_any_order(tmp_path, writes, size):
    """writes: [(chunk index, data)] in operation order (1 MiB chunks, REPLACE). Returns the payload
    path and the slot it must produce, starting from a target full of FILL."""
    final = bytearray(FILL * size)
    ops, blob = [], b""
    for chunk, data in writes:
        ops.append(pl.operation(0, len(blob), len(data), hashlib.sha256(data).digest(),
                                [(chunk * MiB // 4096, len(data) // 4096)]))
        blob += data
        final[chunk * MiB:chunk * MiB + len(data)] = data
    payload = pl.container(pl.manifest(ops, pl.info(size, hashlib.sha256(final).digest())), blob)
    path = tmp_path / "any-order.bin"
    path.write_bytes(payload)
    return path, bytes(final)


def apply(pw, tmp_path, payload, size):
    target = tmp_path / "target.img"
    target.write_bytes(FILL * size)
    return pl.run(pw, "apply", "--insecure-no-signature", "--threads", "2", "--target", target,
                  payload), target


def test_operations_in_any_order(pw, tmp_path):
    """Backwards, shuffled, one chunk written twice and one never: a read-back that assumed forward
    writes would hash blocks before their last write and fail with code 15."""
    size = 24 * MiB
    order = [23, 22, 5, 17, 0, 9, 2, 21, 20, 14, 3, 8, 1, 19, 12, 4, 6, 18, 10, 15, 16, 11, 13]  # no 7
    writes = [(c, pl.pattern_bytes(MiB, seed=100 + c)) for c in order]
    writes.insert(3, (9, pl.pattern_bytes(MiB, seed=999)))  # 9 is written early, then again later
    payload, final = crafted_any_order(tmp_path, writes, size)
    p, target = apply(pw, tmp_path, payload, size)
    assert p.returncode == 0, p.stderr
    assert target.read_bytes() == final
    assert final[7 * MiB:8 * MiB] == FILL * MiB


def test_wrong_slot_hash_still_refused(pw, tmp_path):
    size = 12 * MiB
    writes = [(c, pl.pattern_bytes(MiB, seed=c)) for c in range(12)]
    payload, final = crafted_any_order(tmp_path, writes, size)
    # the same operations, but new_partition_info promises one different byte
    data = payload.read_bytes().replace(hashlib.sha256(final).digest(),
                                        hashlib.sha256(final[:-1] + b"\0").digest())
    payload.write_bytes(data)
    p, _ = apply(pw, tmp_path, payload, size)
    assert pl.error_code(p) == 15
    assert "reads back with SHA-256 " + hashlib.sha256(final).hexdigest() in p.stderr.decode()


@pytest.fixture
def generated(pw, tmp_path):
    img = tmp_path / "usr.img"
    img.write_bytes(pl.pattern_bytes(32 * MiB, seed=41))
    out = tmp_path / "gen.bin"
    pl.run(pw, "generate", "--image", img, "--compress", "none", "-o", out, check=True)
    return out, img.read_bytes()


def test_slot_not_left_in_page_cache(pw, tmp_path, generated):
    if not shutil.which("fincore"):
        pytest.skip("fincore (util-linux) is not installed")
    payload, data = generated
    p, target = apply(pw, tmp_path, payload, len(data))
    assert p.returncode == 0, p.stderr
    res = subprocess.run(["fincore", "--bytes", "--noheadings", "-o", "RES", str(target)], capture_output=True,
                         text=True, check=True).stdout.strip()
    # every stretch is dropped after it is read: at most the page around a boundary may stay
    assert int(res) <= 64 * 1024, f"{res} bytes of the slot stayed in the page cache"


def test_read_back_overlaps_the_writes(pw, tmp_path, generated):
    """strace: ranges of the slot are written back and read (sync_file_range) before the last write,
    and the only flush of the slot is the one at the end."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    payload, data = generated
    target = tmp_path / "target.img"
    target.write_bytes(FILL * len(data))
    log = tmp_path / "strace.log"
    # LeakSanitizer cannot run under ptrace
    p = subprocess.run(["env", "ASAN_OPTIONS=detect_leaks=0", "strace", "-f", "-o", str(log), "-e", "trace=pwrite64,sync_file_range,fdatasync",
                        pw, "apply", "--insecure-no-signature", "--threads", "2", "--target", str(target),
                        str(payload)], capture_output=True)
    assert p.returncode == 0, p.stderr
    calls = [m.group(1) for m in re.finditer(r"^\d+ +(pwrite64|sync_file_range|fdatasync)\(", log.read_text(), re.M)]
    assert "sync_file_range" in calls
    last_write = max(i for i, c in enumerate(calls) if c == "pwrite64")
    assert calls.index("sync_file_range") < last_write, calls
    assert calls.count("fdatasync") == 1, calls


@pytest.mark.skipif(not shutil.which("/usr/bin/time"), reason="GNU time (package time) is not installed")
def test_large_operations_keep_fewer_in_flight(pw, tmp_path):
    """The ring keeps two operations per thread, claimed up front, unless the manifest's largest
    operation would push that past 48 MiB: three 40 MiB operations on 2 threads would mean 160 MiB of
    buffers, and get one slot (40 MiB) instead. Peak RSS of the real program tells which it was."""
    size = 120 * MiB
    writes = [(40 * c, pl.pattern_bytes(40 * MiB, seed=70 + c)) for c in range(3)]
    payload, final = crafted_any_order(tmp_path, writes, size)
    target = tmp_path / "target.img"
    target.write_bytes(FILL * size)
    # GNU time's own child is measured from its exec on (a child forked from this python process would
    # count python's pages as its own)
    rss = tmp_path / "rss"
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss), pw, "apply", "--insecure-no-signature",
                        "--threads", "2", "--target", str(target), str(payload)], capture_output=True)
    assert p.returncode == 0, p.stderr
    assert target.read_bytes() == final
    # KiB: 40 MiB of ring plus the program (and sanitizer overhead) stays well below the 160 MiB an
    # unbounded ring would fault in
    peak = int(rss.read_text().split()[-1])
    assert peak < 120 * 1024, f"peak RSS {peak} KiB"
