"""slot-manager against real peers: Debian's cgpt and sfdisk/libfdisk on Flatcar-layout image files."""
import json
import os
import random
import shutil
import subprocess

import pytest

import diskimage
from conftest import need_tool
from slot_helpers import (NO_LSAN_ENV, STRACE_CALLS, SlotManager, assert_only_gpt_writes, cgpt, cgpt_fields,  # noqa: F401
                          image_digest, sfdisk_attrs, sm, small_image, strace_writes)

A, B = 3, 4


def test_help_and_version(program):
    sm = str(program("slot-manager"))
    p = subprocess.run([sm, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "set-next" in p.stdout and "mark-good" in p.stdout
    p = subprocess.run([sm, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("slot-manager ")


def test_status_of_fresh_image(sm):
    sm.boot("a")
    st = sm.status()
    assert st["disk"] == str(sm.image.path)
    assert st["gpt"] == {"primary": "ok", "backup": "ok", "in_use": "primary"}
    assert st["booted"] == "a"
    assert st["next"] == "a" and st["next_partition"] == A
    a, b = st["slots"]
    assert (a["slot"], a["label"], a["partition"], a["partuuid"]) == ("a", "USR-A", A, diskimage.USR_A_PARTUUID)
    assert (b["slot"], b["label"], b["partition"], b["partuuid"]) == ("b", "USR-B", B, diskimage.USR_B_PARTUUID)
    assert (a["priority"], a["tries"], a["successful"], a["booted"], a["next"]) == (1, 0, True, True, True)
    assert (b["priority"], b["tries"], b["successful"], b["booted"], b["next"]) == (0, 0, False, False, False)
    assert a["offset"] == sm.image.usr_a.offset and a["size"] == sm.image.usr_a.size
    text = sm.run("status").stdout
    assert "Booted: a" in text and "USR-B" in text


def test_status_finds_slots_anywhere(program, tmp_path):
    """Legacy ROOT-A/ROOT-B labels and other sizes/positions are found by type and label."""
    img = diskimage.make_flatcar_image(tmp_path / "legacy.img", slot_size_mib=6, esp_size_mib=2, legacy_labels=True,
                                       format_esp=False, extra_usr_partition=True)
    sm = SlotManager(program("slot-manager"), img, tmp_path)
    st = sm.status()
    assert [s["label"] for s in st["slots"]] == ["ROOT-A", "ROOT-B"]
    assert st["slots"][1]["size"] == 6 << 20


def test_slots_at_other_numbers_and_sizes(program, tmp_path):
    """B before A, at partition numbers 2 and 7, of different sizes: found by type and label; cgpt agrees."""
    path = tmp_path / "odd.img"
    with open(path, "wb") as f:
        f.truncate(16 << 20)
    script = "\n".join([
        "label: gpt", "unit: sectors", "first-lba: 34",
        f"{path}2 : start=2048, size=4096, type={diskimage.TYPE_USR}, name=\"USR-B\", uuid={diskimage.USR_B_PARTUUID}",
        f"{path}5 : start=8192, size=2048, type={diskimage.TYPE_DATA}, name=\"USR-A\"",
        f"{path}7 : start=12288, size=8192, type={diskimage.TYPE_USR}, name=\"USR-A\", uuid={diskimage.USR_A_PARTUUID},"
        " attrs=\"GUID:48,56\"", ""])
    subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(path)], input=script, text=True,
                   check=True, capture_output=True)
    sm = SlotManager(program("slot-manager"), diskimage.FlatcarImage(path, 16 << 20, {}), tmp_path)
    sm.cmdline.write_text(f"verity.usr=PARTUUID={diskimage.USR_A_PARTUUID}\n")
    st = sm.status()
    a, b = st["slots"]
    assert (a["partition"], a["size"], a["offset"]) == (7, 8192 * 512, 12288 * 512)
    assert (b["partition"], b["size"], b["offset"]) == (2, 4096 * 512, 2048 * 512)
    assert st["booted"] == "a" and st["next"] == "a"
    sm.run("set-next", "b")
    assert cgpt_fields(path, 2) == (2, 1, 0)
    assert cgpt_fields(path, 7) == (1, 0, 1)
    assert cgpt_fields(path, 5) == (0, 0, 0)


@pytest.mark.parametrize("priority,tries,successful", [(0, 0, 0), (1, 0, 1), (2, 1, 0), (15, 15, 1), (7, 3, 0)])
def test_we_read_what_cgpt_writes(sm, priority, tries, successful):
    need_tool("cgpt")
    cgpt("add", "-i", B, "-P", priority, "-T", tries, "-S", successful, sm.image.path)
    b = sm.status()["slots"][1]
    assert (b["priority"], b["tries"], b["successful"]) == (priority, tries, bool(successful))
    assert sm.status()["gpt"]["backup"] == "ok"


@pytest.mark.parametrize("priority,tries,successful", [(0, 0, 0), (3, 1, 0), (15, 15, 1), (9, 0, 1)])
def test_cgpt_reads_what_we_write(sm, priority, tries, successful):
    need_tool("cgpt")
    sm.run("set", "b", f"--priority={priority}", f"--tries={tries}", f"--successful={successful}")
    assert cgpt_fields(sm.image.path, B) == (priority, tries, successful)
    assert cgpt_fields(sm.image.path, A) == (1, 0, 1)
    # both copies valid: cgpt finds nothing to repair, sfdisk reads the same
    show = cgpt("show", "-v", sm.image.path).stdout
    assert "INVALID" not in show.upper()
    assert sfdisk_attrs(sm.image.path)[B] == diskimage.attrs(priority, tries, bool(successful))


def test_set_next_is_cgpt_add_plus_prioritize(sm):
    sm.boot("a")
    sm.run("set-next", "USR-B")
    assert cgpt_fields(sm.image.path, B) == (2, 1, 0)
    assert cgpt_fields(sm.image.path, A) == (1, 0, 1)


def test_fixture_state_walk(sm, fixtures_dir):
    """The whole sequence of ../shared/fixtures/omaha/gpt/attribute-states.json, bit for bit, read back by
    slot-manager, cgpt and sfdisk."""
    need_tool("cgpt")
    states = json.loads((fixtures_dir / "omaha/gpt/attribute-states.json").read_text())["sequence"]

    def check(step):
        want_a = int(step["USR-A(part3)"]["attr_u64"], 16)
        want_b = int(step["USR-B(part4)"]["attr_u64"], 16)
        assert sm.attrs() == {"a": want_a, "b": want_b}, step["step"]
        assert diskimage.cgpt_attrs(sm.image.path, A) == want_a
        assert diskimage.cgpt_attrs(sm.image.path, B) == want_b
        sf = sfdisk_attrs(sm.image.path)
        assert (sf[A], sf[B]) == (want_a, want_b)
        # the raw little-endian bytes at offset 48 of the entries in both copies
        with open(sm.image.path, "rb") as f:
            for entries_lba in (2, sm.image.size // 512 - 33):
                f.seek(entries_lba * 512 + (A - 1) * 128 + 48)
                assert f.read(8).hex() == step["USR-A(part3)"]["attr_le_bytes"]
                f.seek(entries_lba * 512 + (B - 1) * 128 + 48)
                assert f.read(8).hex() == step["USR-B(part4)"]["attr_le_bytes"]

    check(states[0])
    sm.boot("a")
    sm.run("set-next", "b")
    check(states[1])
    assert json.loads(sm.run("next", "--json").stdout)["slot"] == "b"

    sel = json.loads(sm.run("boot-select", "--json").stdout)
    assert (sel["slot"], sel["partuuid"], sel["tries_before"], sel["tries"], sel["written"]) == \
        ("b", diskimage.USR_B_PARTUUID, 1, 0, True)
    check(states[2])
    after_boot = image_digest(sm.image.path)

    sm.boot("b")
    assert json.loads(sm.run("mark-good", "--json").stdout) == {"slot": "b"}
    check(states[3])

    # the alternative: B never marked good; the next boot-select picks A and writes nothing
    alt = SlotManager(sm.binary, sm.image, sm.tmp_path)
    sm.run("set", "b", "--successful=0")
    check(states[4])
    sel = json.loads(alt.run("boot-select", "--json").stdout)
    assert (sel["slot"], sel["written"]) == ("a", False)
    check(states[4])


def test_prioritize_matches_cgpt(program, tmp_path):
    """Random states: our set-next/mark-good == cgpt add + cgpt prioritize, on an image whose slot type is
    ChromeOS kernel (the only type Debian's cgpt prioritizes), with a third candidate partition."""
    need_tool("cgpt")
    rng = random.Random(1234)
    base = diskimage.make_flatcar_image(tmp_path / "base.img", slot_size_mib=2, esp_size_mib=2, oem_size_mib=2,
                                        root_size_mib=2, format_esp=False, extra_usr_partition=True,
                                        usr_type=diskimage.TYPE_CHROMEOS_KERNEL)
    ours_path, theirs_path = tmp_path / "ours.img", tmp_path / "theirs.img"
    for _ in range(40):
        shutil.copyfile(base.path, theirs_path)
        for n in (3, 4, 5):
            cgpt("add", "-i", n, "-P", rng.randrange(16), "-T", rng.randrange(16), "-S", rng.randrange(2), theirs_path)
        shutil.copyfile(theirs_path, ours_path)
        slot = rng.choice("ab")
        n = A if slot == "a" else B
        ours = SlotManager(program("slot-manager"), base, tmp_path)
        ours.image = diskimage.FlatcarImage(ours_path, base.size, base.partitions)
        if rng.randrange(2):
            cgpt("add", "-i", n, "-S0", "-T1", theirs_path)
            ours.run(f"--usr-type={diskimage.TYPE_CHROMEOS_KERNEL}", "set-next", slot)
        else:
            cgpt("add", "-i", n, "-S1", "-T0", theirs_path)
            ours.run(f"--usr-type={diskimage.TYPE_CHROMEOS_KERNEL}", "mark-good", slot)
        cgpt("prioritize", "-i", n, theirs_path)
        for k in (3, 4, 5):
            assert cgpt_fields(ours_path, k) == cgpt_fields(theirs_path, k), (slot, k)


def test_torn_writes_at_every_sector(sm):
    """set-next cut off after N sector writes, for every N: cgpt, sfdisk and slot-manager all read a valid
    table holding either the old or the new attributes, and a later write repairs it."""
    need_tool("cgpt")
    path = sm.image.path
    sectors = sm.image.size // 512
    with open(path, "rb") as f:
        head = f.read(34 * 512)
        f.seek((sectors - 33) * 512)
        tail = f.read()
    old_b, new_b = 0, diskimage.attrs(2, 1, False)
    a = diskimage.attrs(1, 0, True)
    seen = set()
    for n in range(0, 67):
        with open(path, "r+b") as f:
            f.write(head)
            f.seek((sectors - 33) * 512)
            f.write(tail)
        env = dict(os.environ, SWITCHYARD_TEST_GPT_CRASH_AFTER=str(n))
        p = sm.run("set-next", "b", check=False, env=env)
        assert p.returncode == (0 if n >= 66 else 77), (n, p.stderr)

        got = diskimage.cgpt_attrs(path, B)
        assert got in (old_b, new_b), n
        assert diskimage.cgpt_attrs(path, A) == a
        sf = sfdisk_attrs(path)
        assert sf[B] == got and sf[A] == a, n
        assert sm.attrs() == {"a": a, "b": got}, n
        seen.add(got)

        # the next write leaves both copies whole
        sm.run("repair")
        st = sm.status()
        assert st["gpt"]["primary"] == "ok" and st["gpt"]["backup"] == "ok", n
        assert sm.attrs()["b"] == got
    assert seen == {old_b, new_b}


def corrupt(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xff]))


@pytest.mark.parametrize("where", ["primary-header", "primary-entries", "backup-header", "backup-entries"])
def test_repair_damaged_copy(sm, where):
    need_tool("cgpt")
    sectors = sm.image.size // 512
    offset = {"primary-header": 512 + 24, "primary-entries": 2 * 512 + 200,
              "backup-header": (sectors - 1) * 512 + 24, "backup-entries": (sectors - 33) * 512 + 200}[where]
    sm.run("set", "b", "--priority=3")
    corrupt(sm.image.path, offset)
    st = sm.status()
    damaged = "primary" if where.startswith("primary") else "backup"
    assert st["gpt"][damaged] != "ok"
    assert st["gpt"]["in_use"] == ("backup" if damaged == "primary" else "primary")
    assert sm.attrs()["b"] == diskimage.attrs(3)
    assert diskimage.cgpt_attrs(sm.image.path, B) == diskimage.attrs(3)

    assert "repaired" in sm.run("repair").stdout
    st = sm.status()
    assert st["gpt"] == {"primary": "ok", "backup": "ok", "in_use": "primary"}
    assert "intact" in sm.run("repair").stdout
    assert sfdisk_attrs(sm.image.path)[B] == diskimage.attrs(3)
    # cgpt repair finds nothing left to do: the image is byte-identical afterwards
    before = image_digest(sm.image.path)
    cgpt("repair", sm.image.path)
    assert image_digest(sm.image.path) == before


def test_write_repairs_too(sm):
    corrupt(sm.image.path, 512 + 24)
    sm.boot("a")
    sm.run("set-next", "b")
    assert sm.status()["gpt"]["primary"] == "ok"
    assert cgpt_fields(sm.image.path, B) == (2, 1, 0)


def test_rollback(sm):
    sm.boot("a")
    sm.run("set-next", "b")
    sm.run("boot-select")
    sm.boot("b")
    sm.run("mark-good")
    assert sm.status()["next"] == "b"
    assert json.loads(sm.run("rollback", "--json").stdout) == {"slot": "a"}
    st = sm.status()
    assert st["next"] == "a"
    assert cgpt_fields(sm.image.path, A) == (2, 0, 1)
    assert cgpt_fields(sm.image.path, B) == (1, 0, 1)


def test_rollback_refused_when_other_never_good(sm):
    sm.boot("a")
    msg = sm.fail("rollback")
    assert "never marked good" in msg and "USR-B" in msg
    sm.run("set-next", "b")
    assert "never marked good" in sm.fail("rollback")


def test_refusals_write_nothing(sm, tmp_path):
    sm.boot("a")
    assert "booted slot" in sm.fail("set-next", "a")
    assert "Unknown slot 'c'" in sm.fail("set-next", "c")
    assert "--priority=16" in sm.fail("set", "b", "--priority=16")
    assert "--tries" in sm.fail("set", "b", "--tries=99")
    assert "--successful" in sm.fail("set", "b", "--successful=2")
    assert "Unknown command" in sm.fail("frobnicate")
    sm.boot(None)
    assert "not a slot" in sm.fail("mark-good")
    assert "not a slot" in sm.fail("rollback")


def test_bad_disks(program, tmp_path, small_image):
    binary = program("slot-manager")

    def fail(image_path, *args):
        before = image_digest(image_path) if image_path.exists() else None
        p = subprocess.run([str(binary), f"--disk={image_path}", f"--cmdline={tmp_path}/none", *args],
                           capture_output=True, text=True)
        assert p.returncode != 0
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, p.stderr
        assert (image_digest(image_path) if image_path.exists() else None) == before
        return lines[0]

    (tmp_path / "none").write_text("\n")
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(4 << 20))
    assert "no GPT" in fail(blank, "set-next", "b")
    assert "No such file" in fail(tmp_path / "missing.img", "status")

    both = tmp_path / "both.img"
    shutil.copyfile(small_image.path, both)
    corrupt(both, 512 + 24)
    corrupt(both, small_image.size - 512 + 24)
    assert "both GPT copies are damaged" in fail(both, "set-next", "b")
    assert "both GPT copies are damaged" in fail(both, "status")

    missing = tmp_path / "missing-slot.img"
    shutil.copyfile(small_image.path, missing)
    subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--part-label", str(missing), "4", "DATA"],
                   check=True, capture_output=True)
    assert "no slot b" in fail(missing, "set-next", "a")

    twice = tmp_path / "twice.img"
    shutil.copyfile(small_image.path, twice)
    subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--part-label", str(twice), "4", "USR-A"],
                   check=True, capture_output=True)
    assert "two partitions for slot a" in fail(twice, "status")


def test_nothing_bootable(sm):
    sm.run("set", "a", "--priority=0")
    p = sm.run("next", check=False)
    assert p.returncode != 0 and "no bootable USR partition" in p.stderr


def test_cli_never_writes_partition_data(sm, tmp_path):
    """Every command, under strace: the image is only written at GPT sectors (never inside a partition, so
    never the booted slot), and nothing else is opened for writing."""
    strace = need_tool("strace")
    sm.boot("a")
    sequence = [("status",), ("next",), ("set-next", "b"), ("boot-select",), ("set", "b", "--successful=1"),
                ("rollback",), ("mark-good",), ("mark-good", "b"), ("repair",), ("set-next", "a")]
    all_writes = []
    for args in sequence:
        log = tmp_path / "strace.log"
        p = subprocess.run([strace, "-f", "-y", "-qq", "-s", "0", "-e", f"trace={STRACE_CALLS}", "-o", str(log),
                            *sm.args(*args)], capture_output=True, text=True, env=NO_LSAN_ENV)
        # set-next a is refused while a is booted: asking for it must not write either
        assert p.returncode == (1 if args == ("set-next", "a") else 0), (args, p.stderr)
        opens, writes = strace_writes(log.read_text(), sm.image.path)
        assert all(path == str(sm.image.path) for path, _ in opens), (args, opens)
        if args in (("status",), ("next",)):
            assert not opens, args
        if args in (("status",), ("next",), ("set-next", "a")):
            assert not writes, args
        all_writes += writes
    assert_only_gpt_writes(all_writes, sm.image)


@pytest.mark.loop
def test_block_device(sm):
    """The same on a block device (a loop device over the image): GPT read and written through the device,
    seen by cgpt in the image file."""
    losetup = need_tool("losetup")
    if os.geteuid() != 0 or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root and loop devices")
    p = subprocess.run([losetup, "--find", "--show", str(sm.image.path)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot set up a loop device: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        image = sm.image
        sm.boot("a")
        args = [sm.binary, f"--disk={dev}", f"--cmdline={sm.cmdline}"]
        st = json.loads(subprocess.run([*args, "status", "--json"], capture_output=True, text=True,
                                       check=True).stdout)
        assert st["disk"] == dev and st["booted"] == "a"
        subprocess.run([*args, "set-next", "b"], check=True, capture_output=True)
        subprocess.run(["blockdev", "--flushbufs", dev], capture_output=True)
        assert cgpt_fields(image.path, B) == (2, 1, 0)
    finally:
        subprocess.run([losetup, "-d", dev], capture_output=True)


def test_concurrent_writers_serialize(sm):
    """Many writers at once (the service and a CLI call, say): the disk lock keeps every table whole."""
    procs = [subprocess.Popen(sm.args("set", "b" if i % 2 else "a", f"--priority={i}", f"--tries={15 - i}"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(12)]
    for p in procs:
        assert p.wait(60) == 0, p.stderr.read()
    st = sm.status()
    assert st["gpt"] == {"primary": "ok", "backup": "ok", "in_use": "primary"}
    for slot in st["slots"]:
        assert slot["priority"] + slot["tries"] == 15
    assert sfdisk_attrs(sm.image.path)[4] == int(st["slots"][1]["attributes"], 16)


@pytest.mark.loop
@pytest.mark.parametrize("verity", [False, True])
def test_disk_and_booted_slot_from_usr(sm, tmp_path, verity):
    """Without --disk and without usr= on the command line: the disk is the one holding /usr and the booted
    slot is the partition under /usr (through dm-verity when /usr is a device-mapper device). /usr of the test
    machine is presented, through a stand-in /sys (SWITCHYARD_TEST_SYSFS_ROOT), as partition 3 of a loop
    device over the image, or as a dm device on top of that partition."""
    losetup = need_tool("losetup")
    if os.geteuid() != 0 or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root and loop devices")
    p = subprocess.run([losetup, "--find", "--show", str(sm.image.path)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot set up a loop device: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        usr, disk = os.stat("/usr").st_dev, os.stat(dev).st_rdev
        fake = tmp_path / "fakesys"
        disk_dir = fake / "sys/devices/virtual/block" / os.path.basename(dev)
        part_dir = disk_dir / "part3"
        part_dir.mkdir(parents=True)
        (disk_dir / "dev").write_text(f"{os.major(disk)}:{os.minor(disk)}\n")
        (disk_dir / "uevent").write_text(f"MAJOR={os.major(disk)}\nDEVNAME={os.path.basename(dev)}\nDEVTYPE=disk\n")
        part = os.makedev(259, 77) if verity else usr
        (part_dir / "partition").write_text("3\n")
        (part_dir / "dev").write_text(f"{os.major(part)}:{os.minor(part)}\n")
        links = fake / "sys/dev/block"
        links.mkdir(parents=True)
        (links / f"{os.major(part)}:{os.minor(part)}").symlink_to(part_dir)
        if verity:
            dm = fake / "sys/devices/virtual/block/dm-0"
            (dm / "slaves").mkdir(parents=True)
            (dm / "slaves" / "part3").symlink_to(part_dir)
            (dm / "dev").write_text(f"{os.major(usr)}:{os.minor(usr)}\n")
            (links / f"{os.major(usr)}:{os.minor(usr)}").symlink_to(dm)
            (fake / "sys/class/block").mkdir(parents=True)
            (fake / "sys/class/block/part3").symlink_to(part_dir)
        (links / f"{os.major(disk)}:{os.minor(disk)}").symlink_to(disk_dir)

        env = dict(os.environ, SWITCHYARD_TEST_SYSFS_ROOT=str(fake))
        st = json.loads(subprocess.run([sm.binary, f"--cmdline={sm.cmdline}", "status", "--json"], env=env,
                                       capture_output=True, text=True, check=True).stdout)
        assert st["disk"] == dev and st["booted"] == "a"
        # mark-good with no slot named marks the slot under /usr
        subprocess.run([sm.binary, f"--cmdline={sm.cmdline}", "set", "a", "--tries=2", f"--disk={dev}"], env=env,
                       check=True, capture_output=True)
        out = subprocess.run([sm.binary, f"--cmdline={sm.cmdline}", "mark-good", "--json"], env=env,
                             capture_output=True, text=True, check=True).stdout
        assert json.loads(out) == {"slot": "a"}
        subprocess.run(["blockdev", "--flushbufs", dev], capture_output=True)
        assert cgpt_fields(sm.image.path, A) == (1, 0, 1)
    finally:
        subprocess.run([losetup, "-d", dev], capture_output=True)
