"""verity-check against Debian's veritysetup (cryptsetup-bin): trees made by one are accepted by the
other, damage is found at the right block, the root hash travels through kernel images and the
command line, Flatcar's 1 GiB layout, and the io.switchyard.Verity service with fd passing."""
import json
import os
import pathlib
import shutil
import struct
import subprocess
import time

import pytest

from conftest import need_tool, program_path

BS = 4096
FLATCAR_SLOT = 1 << 30
FLATCAR_DATA_BLOCKS = 260094
FLATCAR_HASH_OFFSET = 1065345024


def run(args, check=True, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture
def vc(program):
    path = program("verity-check")

    def call(*args, check=True):
        return run([path, *args], check=check)
    return call


@pytest.fixture(scope="session")
def veritysetup():
    return need_tool("veritysetup")


def write_data(path, blocks, seed=1, total=None):
    """A file with `blocks` blocks of distinct pseudo-random data, grown to `total` bytes."""
    with open(path, "wb") as f:
        chunk = bytearray()
        for b in range(blocks):
            chunk += (b * 2654435761 + seed).to_bytes(8, "little") * (BS // 8)
            if len(chunk) >= 1 << 20:
                f.write(chunk)
                chunk = bytearray()
        f.write(chunk)
        f.truncate(total if total is not None else blocks * BS + 64 * BS)


def vs_format(veritysetup, img, data_blocks, hash_offset, *extra):
    out = run([veritysetup, "format", f"--data-blocks={data_blocks}", f"--hash-offset={hash_offset}",
               *extra, img, img]).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in fields.items()}


def vs_verify(veritysetup, img, root, hash_offset):
    return run([veritysetup, "verify", f"--hash-offset={hash_offset}", img, img, root], check=False)


def verify_json(vc, *args):
    p = vc("verify", "--json", *args, check=False)
    return p, json.loads(p.stdout) if p.stdout.strip() else None


def one_error_line(p):
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0
    assert len(lines) == 1, p.stderr
    return lines[0]


def flip(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos)
        c = f.read(1)
        f.seek(pos)
        f.write(bytes([c[0] ^ 0x55]))


# ---- veritysetup compatibility ----

@pytest.mark.parametrize("extra", [[], ["--hash=sha512"], ["--hash=sha1"], ["--hash-block-size=1024"],
                                   ["--data-block-size=1024", "--hash-block-size=512"]])
def test_veritysetup_tree_verified(tmp_path, vc, veritysetup, extra):
    img = tmp_path / "slot.img"
    write_data(img, 3000)
    info = vs_format(veritysetup, img, 3000, 3000 * BS, *extra)
    root = info["Root hash"]
    p, j = verify_json(vc, img, f"--root-hash={root}", f"--hash-offset={3000 * BS}")
    assert p.returncode == 0, p.stderr
    assert j["verified"] is True and j["root_hash"] == root
    assert j["data_blocks"] == 3000 and j["hash_offset"] == 3000 * BS
    assert j["salt"] == info["Salt"] and j["uuid"] == info["UUID"] and j["algorithm"] == info["Hash algorithm"]
    # A damaged block is found in these layouts too.
    flip(img, 2999 * int(info["Data block size"]) + 1)
    p, j = verify_json(vc, img, f"--root-hash={root}", f"--hash-offset={3000 * BS}")
    assert j["error"] == "Corrupted" and j["area"] == "data" and j["block"] == 2999
    flip(img, 2999 * int(info["Data block size"]) + 1)
    # Upper-case input is the same hash.
    vc("verify", img, f"--root-hash={root.upper()}", f"--hash-offset={3000 * BS}")


@pytest.mark.parametrize("salt", [None, "-", "00112233", "ab" * 256])
def test_our_tree_accepted_by_veritysetup(tmp_path, vc, veritysetup, salt):
    img = tmp_path / "slot.img"
    write_data(img, 2500)
    uuid = "12345678-9abc-4def-8123-456789abcdef"
    args = ["format", img, "--data-blocks=2500", f"--uuid={uuid}", "--json"]
    if salt:
        args.append(f"--salt={salt}")
    j = json.loads(vc(*args).stdout)
    assert j["data_blocks"] == 2500 and j["hash_offset"] == 2500 * BS
    assert vs_verify(veritysetup, img, j["root_hash"], 2500 * BS).returncode == 0
    dump = run([veritysetup, "dump", f"--hash-offset={2500 * BS}", img]).stdout
    assert uuid in dump
    assert "Hash blocks:     \t21" in dump  # 20 leaves + 1 top
    if salt is None:
        assert len(j["salt"]) == 64  # 32 random bytes, like veritysetup
    elif salt == "-":
        assert j["salt"] == "" and "Salt:            \t-" in dump
    else:
        assert j["salt"] == salt and salt in dump
    # And we verify what we made, and veritysetup rejects a wrong hash (so the check above means something).
    vc("verify", img, f"--root-hash={j['root_hash']}", f"--hash-offset={2500 * BS}")
    assert vs_verify(veritysetup, img, "0" * 64, 2500 * BS).returncode != 0


def test_threads_give_identical_trees(tmp_path, vc):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    write_data(a, 5000)
    write_data(b, 5000)
    common = ["--data-blocks=5000", "--salt=" + "5a" * 32, "--uuid=00000000-0000-4000-8000-000000000001"]
    ra = vc("format", a, "--threads=1", *common).stdout.strip()
    rb = vc("format", b, "--threads=8", *common).stdout.strip()
    assert ra == rb
    assert a.read_bytes() == b.read_bytes()


def test_filesystem_size_gives_hash_offset(tmp_path, vc, veritysetup):
    """No --hash-offset: the tree sits right after the ext4/squashfs/erofs filesystem."""
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    for i in range(20):
        (src / "dir" / f"f{i}").write_bytes(os.urandom(3000 + i * 517))
    cases = [("ext4", ["mkfs.ext4", "-q", "-b", "4096", "-d", src, None, "2000"])]
    if shutil.which("mksquashfs"):
        cases.append(("squashfs", ["mksquashfs", src, None, "-noappend", "-quiet"]))
    if shutil.which("mkfs.erofs"):
        cases.append(("erofs", ["mkfs.erofs", "--quiet", None, src]))
    for fs, cmd in cases:
        img = tmp_path / f"{fs}.img"
        run([img if a is None else a for a in cmd])
        size = img.stat().st_size
        with open(img, "r+b") as f:
            f.truncate(max(size, 4096) + 64 * BS)
        j = json.loads(vc("format", img, "--json").stdout)
        assert j["hash_offset_source"] == fs
        if fs == "ext4":
            assert j["hash_offset"] == 2000 * BS
        assert j["hash_offset"] % BS == 0 and j["hash_offset"] >= size - BS
        assert vs_verify(veritysetup, img, j["root_hash"], j["hash_offset"]).returncode == 0
        p, v = verify_json(vc, img, f"--root-hash={j['root_hash']}")
        assert p.returncode == 0, p.stderr
        assert v["hash_offset"] == j["hash_offset"] and v["hash_offset_source"] == fs


def test_slot_inside_image_file(tmp_path, vc, veritysetup):
    """--offset/--size: a slot in the middle of a disk image, checked against veritysetup on a copy."""
    disk = tmp_path / "disk.img"
    head, slot_size = 1 << 20, 1200 * BS
    with open(disk, "wb") as f:
        f.write(os.urandom(head))
        f.write(os.urandom(1000 * BS))
        f.truncate(head + slot_size + (1 << 20))
    j = json.loads(vc("format", disk, f"--offset={head}", f"--size={slot_size}", "--data-blocks=1000",
                      "--json").stdout)
    copy = tmp_path / "copy.img"
    with open(disk, "rb") as f:
        f.seek(head)
        copy.write_bytes(f.read(slot_size))
    assert vs_verify(veritysetup, copy, j["root_hash"], 1000 * BS).returncode == 0
    vc("verify", disk, f"--offset={head}", f"--size={slot_size}", f"--root-hash={j['root_hash']}",
       f"--hash-offset={1000 * BS}")
    # The bytes before the slot are not part of it.
    flip(disk, head - 1)
    vc("verify", disk, f"--offset={head}", f"--size={slot_size}", f"--root-hash={j['root_hash']}",
       f"--hash-offset={1000 * BS}")
    flip(disk, head + 7 * BS)
    p, v = verify_json(vc, disk, f"--offset={head}", f"--size={slot_size}", f"--root-hash={j['root_hash']}",
                       f"--hash-offset={1000 * BS}")
    assert v["error"] == "Corrupted" and v["area"] == "data" and v["block"] == 7


# ---- damage ----

@pytest.fixture
def formatted(tmp_path, veritysetup):
    """20000 data blocks (3 levels: 157 leaves, 2, 1) formatted by veritysetup."""
    img = tmp_path / "slot.img"
    write_data(img, 20000, total=20200 * BS)
    info = vs_format(veritysetup, img, 20000, 20000 * BS)
    return img, info["Root hash"]


def check_damage(vc, veritysetup, img, root):
    p, j = verify_json(vc, img, f"--root-hash={root}", f"--hash-offset={20000 * BS}")
    assert p.returncode != 0 and j["verified"] is False
    assert vs_verify(veritysetup, img, root, 20000 * BS).returncode != 0  # veritysetup agrees it is damaged
    one_error_line(p)
    return j


@pytest.mark.parametrize("blocks", [[0], [19999], [12345, 17000], [4096, 128, 9000]])
def test_data_corruption(formatted, vc, veritysetup, blocks):
    img, root = formatted
    for b in blocks:
        flip(img, b * BS + 1234)
    j = check_damage(vc, veritysetup, img, root)
    assert j["error"] == "Corrupted" and j["area"] == "data" and j["block"] == min(blocks)


@pytest.mark.parametrize("level,index", [(0, 0), (0, 156), (1, 1)])
def test_hash_block_corruption(formatted, vc, veritysetup, level, index):
    img, root = formatted
    tree = 20001  # the superblock takes block 20000; top (1), level 1 (2), leaves (157)
    start = {2: 0, 1: 1, 0: 3}[level]
    flip(img, (tree + start + index) * BS + 40)
    j = check_damage(vc, veritysetup, img, root)
    assert j["error"] == "Corrupted" and j["area"] == "hash"
    assert j["level"] == level and j["index"] == index and j["block"] == tree + start + index


def test_top_block_corruption(formatted, vc, veritysetup):
    img, root = formatted
    flip(img, 20001 * BS + 33)  # second digest of the top block
    j = check_damage(vc, veritysetup, img, root)
    assert j["error"] == "Corrupted" and j["area"] == "hash" and j["block"] == 20001 and j["level"] == 2


def test_salt_corruption(formatted, vc, veritysetup):
    img, root = formatted
    flip(img, 20000 * BS + 88 + 3)
    j = check_damage(vc, veritysetup, img, root)
    assert j["error"] == "Corrupted" and j["area"] == "superblock" and j["block"] == 20000
    assert "salt" in j["message"]


def test_superblock_corruption(formatted, vc, veritysetup):
    img, root = formatted
    flip(img, 20000 * BS + 2)  # "verity" signature
    j = check_damage(vc, veritysetup, img, root)
    assert j["error"] == "BadSuperblock" and "signature" in j["message"]


def test_wrong_root_hash(formatted, vc):
    img, root = formatted
    other = ("0" if root[0] != "0" else "1") + root[1:]
    p, j = verify_json(vc, img, f"--root-hash={other}", f"--hash-offset={20000 * BS}")
    assert j["error"] == "RootHashMismatch" and j["actual_root_hash"] == root
    assert "expected " + other in one_error_line(p)


# ---- bad input: one clear error each ----

def test_bad_inputs(formatted, vc, tmp_path):
    img, root = formatted
    ho = f"--hash-offset={20000 * BS}"

    line = one_error_line(vc("verify", img, f"--root-hash={root}", f"--hash-offset={100 * BS}", check=False))
    assert "no valid verity superblock at offset 409600" in line and "signature" in line

    line = one_error_line(vc("verify", img, f"--root-hash={root}", f"--hash-offset={30000 * BS}", check=False))
    assert "beyond the end of the device" in line

    line = one_error_line(vc("verify", img, "--root-hash=xyz", ho, check=False))
    assert "not 64 hex characters" in line
    line = one_error_line(vc("verify", img, "--root-hash=" + "g" * 64, ho, check=False))
    assert "not 64 hex characters" in line

    line = one_error_line(vc("verify", img, ho, check=False))
    assert "No expected root hash" in line

    bad = tmp_path / "badsalt.img"
    shutil.copy(img, bad)
    with open(bad, "r+b") as f:
        f.seek(20000 * BS + 80)
        f.write(struct.pack("<H", 300))
    line = one_error_line(vc("verify", bad, f"--root-hash={root}", ho, check=False))
    assert "salt size 300 exceeds" in line

    short = tmp_path / "short.img"
    shutil.copy(img, short)
    os.truncate(short, (20000 + 1 + 100) * BS)
    line = one_error_line(vc("verify", short, f"--root-hash={root}", ho, check=False))
    assert "hash tree shorter than the data" in line

    line = one_error_line(vc("verify", tmp_path / "missing.img", f"--root-hash={root}", check=False))
    assert "missing.img" in line
    line = one_error_line(vc("verify", img, f"--root-hash={root}", f"--size={30000 * BS}", check=False))
    assert "smaller than --offset/--size" in line
    line = one_error_line(vc("verify", img, "--root-hash=" + root, "--frobnicate", check=False))
    assert "frobnicate" in line

    line = one_error_line(vc("format", img, "--salt=abc", check=False))
    assert "--salt" in line
    line = one_error_line(vc("format", img, "--data-blocks=30000", check=False))
    assert "30000 data blocks need" in line
    line = one_error_line(vc("format", img, "--data-blocks=20000", f"--hash-offset={100 * BS}", check=False))
    assert "overlaps" in line


def test_help_version_and_fd(formatted, program):
    img, root = formatted
    vc = str(program("verity-check"))
    out = run([vc, "--help"]).stdout
    for word in ("verify", "format", "root-hash", "status", "varlink", "--hash-offset", "--embed-into"):
        assert word in out
    assert run([vc, "--version"]).stdout.startswith("verity-check ")
    # A descriptor instead of a path, as a caller that opened the slot itself would pass it.
    fd = os.open(img, os.O_RDONLY)
    try:
        p = subprocess.run([vc, "verify", f"--data-fd={fd}", f"--root-hash={root}", f"--hash-offset={20000 * BS}",
                            "--json"], pass_fds=[fd], capture_output=True, text=True)
    finally:
        os.close(fd)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["root_hash"] == root


# ---- root hash in the kernel and on the command line ----

def fake_kernel(path, arch):
    data = bytearray(os.urandom(16384))
    if arch == "arm64":
        data[0x38:0x3c] = b"ARM\x64"
    else:
        data[0x202:0x206] = b"HdrS"
    path.write_bytes(bytes(data))
    return bytes(data)


@pytest.mark.parametrize("arch,offset", [("amd64", 64), ("arm64", 512)])
@pytest.mark.parametrize("detect", [False, True])
def test_kernel_roundtrip(tmp_path, vc, veritysetup, arch, offset, detect):
    img = tmp_path / "slot.img"
    kernel = tmp_path / "vmlinuz"
    write_data(img, 1000)
    before = fake_kernel(kernel, arch)
    archopt = [] if detect else [f"--arch={arch}"]
    root = vc("format", img, "--data-blocks=1000", f"--embed-into={kernel}", *archopt).stdout.strip()
    after = kernel.read_bytes()
    assert after[offset:offset + 64] == root.encode()
    assert after[:offset] == before[:offset] and after[offset + 64:] == before[offset + 64:]
    assert vc("root-hash", f"--kernel={kernel}", *archopt).stdout.strip() == root
    assert vs_verify(veritysetup, img, root, 1000 * BS).returncode == 0
    j = json.loads(vc("verify", img, f"--kernel={kernel}", *archopt, f"--hash-offset={1000 * BS}", "--json").stdout)
    assert j["verified"] and j["root_hash_source"] == f"kernel:{kernel}"
    # The other architecture's offset holds no hash.
    other = "arm64" if arch == "amd64" else "amd64"
    line = one_error_line(vc("root-hash", f"--kernel={kernel}", f"--arch={other}", check=False))
    assert "No verity root hash in kernel" in line


def test_cmdline_and_esp(tmp_path, vc):
    img = tmp_path / "slot.img"
    write_data(img, 600)
    root = vc("format", img, "--data-blocks=600").stdout.strip()
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("BOOT_IMAGE=/flatcar/vmlinuz-a mount.usr=/dev/mapper/usr "
                       f"verity.usr=PARTUUID=7130c94a-213a-4e5a-8e26-6cce9662f132 rootflags=rw verity.usrhash={root}\n")
    assert vc("root-hash", f"--cmdline={cmdline}").stdout.strip() == root
    vc("verify", img, f"--cmdline={cmdline}", f"--hash-offset={600 * BS}")

    esp = tmp_path / "esp"
    (esp / "flatcar").mkdir(parents=True)
    fake_kernel(esp / "flatcar" / "vmlinuz-b", "amd64")
    vc("format", img, "--data-blocks=600", f"--embed-into={esp / 'flatcar' / 'vmlinuz-b'}")
    kroot = vc("root-hash", f"--esp={esp}", "--slot=b").stdout.strip()
    vc("verify", img, f"--esp={esp}", "--slot=B", f"--hash-offset={600 * BS}")
    # Without a SLOT path, --slot=b also names the partition: USR-B by GPT label (below --root here).
    fakeroot = tmp_path / "root"
    (fakeroot / "dev" / "disk" / "by-partlabel").mkdir(parents=True)
    (fakeroot / "dev" / "disk" / "by-partlabel" / "USR-B").symlink_to(img)
    shutil.copytree(esp, fakeroot / "boot")
    j = json.loads(vc("verify", f"--root={fakeroot}", "--slot=b", f"--hash-offset={600 * BS}", "--json").stdout)
    assert j["verified"] and j["root_hash"] == kroot
    assert j["root_hash_source"] == f"kernel:{fakeroot}/boot/flatcar/vmlinuz-b"
    # The command line still names the old tree: the new one does not match it.
    if kroot != root:
        p, j = verify_json(vc, img, f"--cmdline={cmdline}", f"--hash-offset={600 * BS}")
        assert j["error"] == "RootHashMismatch"

    cmdline.write_text("quiet verity.usrhash=1234\n")
    assert "not 64 hex characters" in one_error_line(vc("root-hash", f"--cmdline={cmdline}", check=False))
    cmdline.write_text("quiet\n")
    assert "No verity.usrhash=" in one_error_line(vc("root-hash", f"--cmdline={cmdline}", check=False))
    line = one_error_line(vc("root-hash", f"--cmdline={cmdline}", f"--kernel={cmdline}", check=False))
    assert "only one of" in line


def test_status_without_device_mapper(tmp_path, vc):
    """This kernel has no device-mapper: status says so and still reports the hashes it can see."""
    root = "ab" * 32
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"mount.usr=/dev/mapper/usr verity.usr=PARTUUID=0000 verity.usrhash={root}\n")
    fakeroot = tmp_path / "root"
    (fakeroot / "proc").mkdir(parents=True)
    (fakeroot / "proc" / "misc").write_text(" 63 vga_arbiter\n")
    (fakeroot / "boot" / "flatcar").mkdir(parents=True)
    kernel = fakeroot / "boot" / "flatcar" / "vmlinuz-a"
    fake_kernel(kernel, "amd64")
    with open(kernel, "r+b") as f:
        f.seek(64)
        f.write(root.encode())
    j = json.loads(vc("status", "--json", f"--root={fakeroot}", f"--cmdline={cmdline}", "--slot=a").stdout)
    assert j["device_mapper"] is False and j["mapped"] is False and j["verified"] is False
    assert "no device-mapper" in j["device_mapper_error"]
    assert j["cmdline_root_hash"] == root and j["kernel_root_hash"] == root and j["kernel_matches"] is True
    assert j["usr"] == "PARTUUID=0000" and j["booted_slot"] == "a"
    assert j["kernel"] == f"{fakeroot}/boot/flatcar/vmlinuz-a"
    text = vc("status", f"--root={fakeroot}", f"--cmdline={cmdline}", "--slot=a").stdout
    assert "not verity-mapped" in text and "matches" in text
    # A kernel carrying another hash is reported as not matching.
    with open(kernel, "r+b") as f:
        f.seek(64)
        f.write(b"cd" * 32)
    j = json.loads(vc("status", "--json", f"--root={fakeroot}", f"--cmdline={cmdline}", "--slot=a").stdout)
    assert j["kernel_matches"] is False
    # And on this very machine: a clean report, exit 0.
    j = json.loads(vc("status", "--json", f"--cmdline={cmdline}").stdout)
    if not pathlib.Path("/dev/mapper/control").exists():
        assert j["device_mapper"] is False and j["mapped"] is False


# ---- Flatcar's layout ----

@pytest.fixture(scope="module")
def flatcar_slot(tmp_path_factory):
    """A sparse 1 GiB slot formatted by verity-check with its defaults (made once for this module)."""
    img = tmp_path_factory.mktemp("flatcar") / "usr-a.img"
    with open(img, "wb") as f:
        f.truncate(FLATCAR_SLOT)
        f.seek(5 * BS)
        f.write(b"flatcar /usr" * 100)
    j = json.loads(run([program_path("verity-check"), "format", img, "--json"]).stdout)
    yield img, j
    img.unlink()


def test_flatcar_layout_sparse(flatcar_slot, vc, veritysetup):
    """1 GiB slot: 260094 data blocks, superblock at 1065345024, 2049 hash blocks ending at 1 GiB."""
    img, j = flatcar_slot
    assert j["data_blocks"] == FLATCAR_DATA_BLOCKS and j["hash_offset"] == FLATCAR_HASH_OFFSET
    assert j["hash_offset_source"] == "flatcar"
    assert j["end_offset"] == FLATCAR_SLOT and j["hash_size"] == (1 + 2049) * BS
    assert img.stat().st_size == FLATCAR_SLOT
    dump = run([veritysetup, "dump", f"--hash-offset={FLATCAR_HASH_OFFSET}", img]).stdout
    assert "Data blocks:     \t260094" in dump and "Hash blocks:     \t2049" in dump
    assert vs_verify(veritysetup, img, j["root_hash"], FLATCAR_HASH_OFFSET).returncode == 0
    # No --hash-offset and no filesystem: Flatcar's fixed offset.
    p, v = verify_json(vc, img, f"--root-hash={j['root_hash']}")
    assert p.returncode == 0, p.stderr
    assert v["hash_offset"] == FLATCAR_HASH_OFFSET and v["hash_offset_source"] == "flatcar-default"
    # The last leaf block is the last block of the slot.
    flip(img, FLATCAR_SLOT - BS + 5)
    try:
        p, v = verify_json(vc, img, f"--root-hash={j['root_hash']}")
        assert v["error"] == "Corrupted" and v["area"] == "hash" and v["level"] == 0 and v["index"] == 2031
        assert v["block"] == FLATCAR_SLOT // BS - 1
    finally:
        flip(img, FLATCAR_SLOT - BS + 5)


def test_flatcar_layout_matches_fixture(flatcar_slot, fixtures_dir, veritysetup):
    """The layout verity-check writes is the one ../shared/fixtures/omaha/verity describes."""
    params = json.loads((fixtures_dir / "omaha" / "verity" / "usr-verity-params.json").read_text())
    img, j = flatcar_slot
    args = params["veritysetup_format_args"]
    layout = params["layout_bytes"]
    assert j["data_blocks"] == args["data-blocks"] and j["hash_offset"] == args["hash-offset"]
    assert j["algorithm"] == args["hash"] and j["data_block_size"] == args["data-block-size"]
    assert len(j["salt"]) == 2 * 32
    assert layout["verity_superblock_block"] == [j["hash_offset"], j["hash_offset"] + BS]
    assert layout["hash_tree"][1] == layout["end"] == img.stat().st_size
    levels = layout["hash_tree_blocks"]
    assert (layout["hash_tree"][1] - layout["hash_tree"][0]) // BS == levels["total"]
    # veritysetup reads the same superblock and counts the same tree.
    dump = run([veritysetup, "dump", f"--hash-offset={j['hash_offset']}", img]).stdout
    assert f"Hash blocks:     \t{levels['total']}" in dump
    assert levels["level_top"] + levels["level_mid"] + levels["level_leaf"] == levels["total"]
    # The top block is the first after the superblock block: it must hash to the root (checked by
    # verify in the test above); the leaves end exactly at the end of the slot.
    assert layout["hash_tree"][0] + levels["total"] * BS == layout["end"]


def test_flatcar_build_command(tmp_path, vc, veritysetup):
    """The image build's exact veritysetup command; verity-check finds the tree after the ext4 /usr."""
    img = tmp_path / "usr-a.img"
    with open(img, "wb") as f:
        f.truncate(FLATCAR_SLOT)
    run(["mkfs.ext4", "-q", "-b", "4096", "-O", "^has_journal", img, str(FLATCAR_DATA_BLOCKS)])
    info = vs_format(veritysetup, img, FLATCAR_DATA_BLOCKS, FLATCAR_HASH_OFFSET, "--hash=sha256",
                     "--data-block-size=4096", "--hash-block-size=4096")
    p, v = verify_json(vc, img, f"--root-hash={info['Root hash']}")
    assert p.returncode == 0, p.stderr
    assert v["hash_offset_source"] == "ext4" and v["data_blocks"] == FLATCAR_DATA_BLOCKS


def test_flatcar_slot_with_smaller_filesystem(tmp_path, vc, veritysetup):
    """In a 1 GiB slot the tree goes where Flatcar's initrd looks (1065345024), even after a smaller
    filesystem; verify finds it there when the filesystem's end holds no superblock."""
    img = tmp_path / "usr-b.img"
    with open(img, "wb") as f:
        f.truncate(FLATCAR_SLOT)
    run(["mkfs.ext4", "-q", "-b", "4096", "-O", "^has_journal", img, "100000"])
    j = json.loads(vc("format", img, "--json").stdout)
    assert j["hash_offset"] == FLATCAR_HASH_OFFSET and j["data_blocks"] == FLATCAR_DATA_BLOCKS
    assert j["hash_offset_source"] == "flatcar"
    p, v = verify_json(vc, img, f"--root-hash={j['root_hash']}")
    assert p.returncode == 0, p.stderr
    assert v["hash_offset"] == FLATCAR_HASH_OFFSET and v["hash_offset_source"] == "flatcar-default"
