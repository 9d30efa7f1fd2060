"""slot-manager repair (and the repair every writing command does first) against real peers: images damaged
copy by copy and torn set-next writes, checked afterwards with Debian's cgpt, sgdisk and sfdisk, an
independent reader of both GPT copies below, and compared byte for byte with what `cgpt repair` makes."""
import dataclasses
import json
import os
import shutil
import struct
import subprocess
import zlib

import pytest

import diskimage
from conftest import need_tool
from slot_helpers import (NO_LSAN_ENV, STRACE_CALLS, assert_only_gpt_writes, cgpt, image_digest, sfdisk_attrs,  # noqa: F401
                          sm, small_image, strace_writes)

A, B = 3, 4
SECTOR = 512
ENTRIES_SECTORS = 32  # 128 entries of 128 bytes


@dataclasses.dataclass
class Copy:
    problem: str | None
    my_lba: int = 0
    alternate_lba: int = 0
    first_usable: int = 0
    last_usable: int = 0
    disk_guid: bytes = b""
    entries_lba: int = 0
    n_entries: int = 0
    entry_size: int = 0
    entries: bytes = b""


def read_copy(f, lba):
    """One GPT copy checked on its own: header CRC32, entries CRC32 (independent of slot-manager's code)."""
    f.seek(lba * SECTOR)
    h = f.read(SECTOR)
    if h[:8] != b"EFI PART":
        return Copy("no signature")
    size, crc = struct.unpack_from("<II", h, 12)
    if zlib.crc32(h[:16] + b"\0\0\0\0" + h[20:size]) != crc:
        return Copy("header CRC32")
    my, alt, first, last = struct.unpack_from("<QQQQ", h, 24)
    guid = h[56:72]
    elba, n, esize, ecrc = struct.unpack_from("<QIII", h, 72)
    f.seek(elba * SECTOR)
    entries = f.read(n * esize)
    if zlib.crc32(entries) != ecrc:
        return Copy("entries CRC32")
    return Copy(None, my, alt, first, last, guid, elba, n, esize, entries)


def copies(path):
    sectors = os.path.getsize(path) // SECTOR
    with open(path, "rb") as f:
        return read_copy(f, 1), read_copy(f, sectors - 1)


def assert_whole(path):
    """Both copies valid and one table, by our reader and by cgpt, sgdisk and sfdisk."""
    sectors = os.path.getsize(path) // SECTOR
    p, b = copies(path)
    assert p.problem is None and b.problem is None, (p.problem, b.problem)
    assert (p.my_lba, p.alternate_lba, b.my_lba, b.alternate_lba) == (1, sectors - 1, sectors - 1, 1)
    assert b.entries_lba == sectors - 1 - ENTRIES_SECTORS and p.entries_lba == 2
    assert (p.first_usable, p.last_usable, p.disk_guid, p.n_entries, p.entry_size) == \
        (b.first_usable, b.last_usable, b.disk_guid, b.n_entries, b.entry_size)
    assert p.entries == b.entries

    shown = cgpt("show", "-v", path)
    out = shown.stdout + shown.stderr
    assert "WARNING" not in out and "INVALID" not in out, out
    sgdisk = shutil.which("sgdisk")
    if sgdisk:
        v = subprocess.run([sgdisk, "-v", str(path)], capture_output=True, text=True)
        assert v.returncode == 0 and "No problems found" in v.stdout, v.stdout + v.stderr
        assert "Caution" not in v.stdout + v.stderr and "Warning" not in v.stdout + v.stderr, v.stdout + v.stderr
    v = subprocess.run(["sfdisk", "--verify", str(path)], capture_output=True, text=True)
    assert v.returncode == 0 and "No errors detected" in v.stdout, v.stdout + v.stderr


def assert_cgpt_agrees(sm):
    ours = sm.attrs()
    assert diskimage.cgpt_attrs(sm.image.path, A) == ours["a"]
    assert diskimage.cgpt_attrs(sm.image.path, B) == ours["b"]
    sf = sfdisk_attrs(sm.image.path)
    assert (sf[A], sf[B]) == (ours["a"], ours["b"])


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x5a]))


def damage_offsets(image):
    sectors = image.size // SECTOR
    return {
        "primary-header": SECTOR + 40,
        "primary-entries": 2 * SECTOR + 3 * 128 + 60,  # USR-B's name
        "backup-header": (sectors - 1) * SECTOR + 40,
        "backup-entries": (sectors - 1 - ENTRIES_SECTORS) * SECTOR + 3 * 128 + 60,
    }


def cgpt_repaired(path, tmp_path):
    """A copy of the image after `cgpt repair`, to compare with."""
    theirs = tmp_path / "cgpt-repaired.img"
    shutil.copyfile(path, theirs)
    cgpt("repair", theirs)
    return theirs


def strace_run(sm, tmp_path, *args, env=NO_LSAN_ENV):
    """Runs slot-manager under strace; returns (process, writes to the image, fsyncs of the image)."""
    strace = need_tool("strace")
    log = tmp_path / "strace.log"
    p = subprocess.run([strace, "-f", "-y", "-qq", "-s", "0", "-e", f"trace={STRACE_CALLS},fsync,fdatasync",
                        "-o", str(log), *sm.args(*args)], capture_output=True, text=True, env=env)
    text = log.read_text()
    _, writes = strace_writes(text, sm.image.path)
    syncs = [l for l in text.splitlines() if ("fsync(" in l or "fdatasync(" in l) and str(sm.image.path) in l]
    return p, writes, syncs, text


@pytest.mark.parametrize("where", ["primary-header", "primary-entries", "backup-header", "backup-entries"])
def test_repair_each_copy(sm, tmp_path, where):
    need_tool("cgpt")
    sm.run("set", "b", "--priority=3", "--tries=2")
    pristine = image_digest(sm.image.path)
    flip(sm.image.path, damage_offsets(sm.image)[where])
    damaged = where.split("-")[0]
    good = "backup" if damaged == "primary" else "primary"
    assert getattr(copies(sm.image.path)[0 if damaged == "primary" else 1], "problem") is not None
    theirs = cgpt_repaired(sm.image.path, tmp_path)

    p, writes, syncs, _ = strace_run(sm, tmp_path, "repair", "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["found"][damaged] != "ok" and report["found"][good] == "ok"
    assert report["found"]["in_use"] == good
    assert report["rewritten"] == [damaged] and report["written"] is True
    assert report["sectors_written"] == 1 + ENTRIES_SECTORS == len(writes)

    # only the damaged copy's sectors, entries first and its header last, then synced
    sectors = sm.image.size // SECTOR
    lbas = [offset // SECTOR for _, _, offset, _ in writes]
    if damaged == "primary":
        assert lbas == list(range(2, 2 + ENTRIES_SECTORS)) + [1]
    else:
        assert lbas == list(range(sectors - 1 - ENTRIES_SECTORS, sectors - 1)) + [sectors - 1]
    assert_only_gpt_writes(writes, sm.image)
    assert syncs, "no fsync after the repair"

    assert_whole(sm.image.path)
    assert image_digest(sm.image.path) == pristine == image_digest(theirs)
    assert_cgpt_agrees(sm)
    assert sm.attrs()["b"] == diskimage.attrs(3, 2)


def test_intact_disk_is_not_written(sm, tmp_path):
    before = image_digest(sm.image.path)
    p, writes, _, _ = strace_run(sm, tmp_path, "repair", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {
        "disk": str(sm.image.path), "found": {"primary": "ok", "backup": "ok", "in_use": "primary"},
        "rewritten": [], "sectors_written": 0, "written": False}
    assert writes == []
    assert image_digest(sm.image.path) == before
    assert "intact; nothing written" in sm.run("repair").stdout


@pytest.mark.parametrize("pair", [("primary-header", "backup-header"), ("primary-entries", "backup-entries"),
                                  ("primary-header", "backup-entries"), ("primary-entries", "backup-header")])
def test_both_copies_damaged_refused(sm, pair):
    for where in pair:
        flip(sm.image.path, damage_offsets(sm.image)[where])
    msg = sm.fail("repair")  # one line, nothing written
    assert "both GPT copies are damaged" in msg and "primary:" in msg and "backup:" in msg
    sm.boot("a")
    assert "both GPT copies are damaged" in sm.fail("set-next", "b")
    assert "both GPT copies are damaged" in sm.fail("mark-good")


def test_torn_set_next_then_repair(sm, tmp_path):
    """set-next cut after each sector write (the torn-write test's cuts): slot-manager repair leaves both
    copies valid and identical, byte for byte what cgpt repair makes, with the attributes cgpt chose: the
    old ones until the primary entries start to change (while both copies are valid the primary wins), the
    new ones after."""
    need_tool("cgpt")
    path = sm.image.path
    sectors = sm.image.size // SECTOR
    with open(path, "rb") as f:
        head = f.read(34 * SECTOR)
        f.seek((sectors - 33) * SECTOR)
        tail = f.read()
    sm.boot("a")
    old_b, new_b = 0, diskimage.attrs(2, 1, False)
    for n in range(0, 67):
        with open(path, "r+b") as f:
            f.write(head)
            f.seek((sectors - 33) * SECTOR)
            f.write(tail)
        p = sm.run("set-next", "b", check=False, env=dict(os.environ, SWITCHYARD_TEST_GPT_CRASH_AFTER=str(n)))
        assert p.returncode == (0 if n >= 66 else 77), (n, p.stderr)
        expect = old_b if n <= 33 else new_b
        theirs = cgpt_repaired(path, tmp_path)

        report = json.loads(sm.run("repair", "--json").stdout)
        intact = n in (0, 66)
        assert report["written"] is not intact, n
        if n == 33:
            # backup whole and new, primary whole and old: both valid, they differ, the primary wins
            assert report["found"]["primary"] == "ok" and "differs" in report["found"]["backup"]
            assert report["rewritten"] == ["backup"]
        assert image_digest(path) == image_digest(theirs), n
        assert_whole(path)
        assert sm.attrs()["b"] == expect, n
        assert diskimage.cgpt_attrs(path, B) == expect, n


def test_torn_repair(sm, tmp_path):
    """The repair itself cut after each of its sector writes: the table still reads the same, and the next
    repair completes it."""
    flip(sm.image.path, damage_offsets(sm.image)["primary-entries"])
    damaged = sm.image.path.read_bytes()
    for n in range(0, 1 + ENTRIES_SECTORS):
        sm.image.path.write_bytes(damaged)
        p = sm.run("repair", check=False, env=dict(os.environ, SWITCHYARD_TEST_GPT_CRASH_AFTER=str(n)))
        assert p.returncode == 77, (n, p.stderr)
        assert sm.status()["gpt"]["backup"] == "ok"
        assert sm.attrs() == {"a": diskimage.attrs(1, 0, True), "b": 0}
        sm.run("repair")
        assert_whole(sm.image.path)


@pytest.mark.parametrize("op", [("set-next", "b"), ("mark-good",), ("rollback",), ("set-next", "a")])
def test_writing_commands_repair_first(sm, tmp_path, op):
    """set-next, mark-good and rollback repair a damaged copy before anything else, also when they then
    refuse (set-next of the booted slot; rollback to a slot never marked good): only GPT sectors written."""
    sm.boot("a")
    flip(sm.image.path, damage_offsets(sm.image)["backup-header"])
    p, writes, _, _ = strace_run(sm, tmp_path, *op)
    refused = op in (("set-next", "a"), ("rollback",))
    assert p.returncode == (1 if refused else 0), p.stderr
    assert "rewrote the backup GPT from the primary" in p.stderr
    assert writes[:ENTRIES_SECTORS + 1] and all(
        offset // SECTOR >= sm.image.size // SECTOR - 1 - ENTRIES_SECTORS for _, _, offset, _ in
        writes[:ENTRIES_SECTORS + 1])
    assert_only_gpt_writes(writes, sm.image)
    assert_whole(sm.image.path)
    assert_cgpt_agrees(sm)


def test_mark_good_unit_repairs_after_power_cut(sm, tmp_path, build_dir):
    """The boot after a power cut: slot-manager-mark-good.service's command, as the unit runs it, finds the
    set-next that was cut after the backup (both copies valid, different), repairs, then marks good."""
    unit = (build_dir / "units/slot-manager/slot-manager-mark-good.service").read_text()
    exec_start = [l.split("=", 1)[1].split() for l in unit.splitlines() if l.startswith("ExecStart=")]
    assert len(exec_start) == 1 and exec_start[0][1:] == ["mark-good"]
    sm.boot("a")
    p = sm.run("set-next", "b", check=False, env=dict(os.environ, SWITCHYARD_TEST_GPT_CRASH_AFTER="40"))
    assert p.returncode == 77
    assert copies(sm.image.path)[0].problem == "entries CRC32"
    p = sm.run(*exec_start[0][1:])
    assert "rewrote the primary GPT from the backup" in p.stderr
    assert_whole(sm.image.path)
    assert_cgpt_agrees(sm)
    a = diskimage.decode_attrs(sm.attrs()["a"])
    assert a["successful"] and a["tries"] == 0


@pytest.mark.loop
def test_repair_on_block_device(sm, tmp_path):
    losetup = need_tool("losetup")
    if os.geteuid() != 0 or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root and loop devices")
    flip(sm.image.path, damage_offsets(sm.image)["primary-header"])
    theirs = cgpt_repaired(sm.image.path, tmp_path)
    p = subprocess.run([losetup, "--find", "--show", str(sm.image.path)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot set up a loop device: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        out = subprocess.run([sm.binary, f"--disk={dev}", f"--cmdline={sm.cmdline}", "repair", "--json"],
                             capture_output=True, text=True, check=True).stdout
        report = json.loads(out)
        assert report["disk"] == dev and report["rewritten"] == ["primary"]
        subprocess.run(["blockdev", "--flushbufs", dev], capture_output=True)
    finally:
        subprocess.run([losetup, "-d", dev], capture_output=True)
    assert_whole(sm.image.path)
    assert image_digest(sm.image.path) == image_digest(theirs)
    assert_cgpt_agrees(sm)
