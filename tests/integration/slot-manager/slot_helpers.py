"""Helpers for the slot-manager tests: images, running the program, reading attributes back."""
import hashlib
import json
import os
import re
import subprocess

import pytest

import diskimage
from conftest import need_tool


class SlotManager:
    def __init__(self, binary, image, tmp_path):
        self.binary = str(binary)
        self.image = image
        self.tmp_path = tmp_path
        self.cmdline = tmp_path / "cmdline"
        self.cmdline.write_text("console=ttyS0\n")
        self.esp = tmp_path / "esp"
        self.esp.mkdir(exist_ok=True)

    def boot(self, slot):
        """Pretend the system booted slot 'a'/'b' (or None: /usr is not on this disk)."""
        if slot is None:
            self.cmdline.write_text("console=ttyS0\n")
        else:
            uuid = self.image.slot(slot).uuid
            self.cmdline.write_text(f"mount.usr=/dev/mapper/usr verity.usr=PARTUUID={uuid} rootflags=rw\n")

    def args(self, *extra):
        return [self.binary, f"--disk={self.image.path}", f"--cmdline={self.cmdline}", f"--esp={self.esp}",
                *map(str, extra)]

    def run(self, *args, check=True, env=None):
        p = subprocess.run(self.args(*args), capture_output=True, text=True, env=env, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"slot-manager {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
        return p

    def fail(self, *args):
        """Runs a command that must fail with exactly one clear line on stderr and write nothing."""
        before = image_digest(self.image.path)
        p = self.run(*args, check=False)
        assert p.returncode != 0, p.stdout
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, p.stderr
        assert image_digest(self.image.path) == before
        return lines[0]

    def status(self):
        return json.loads(self.run("status", "--json").stdout)

    def attrs(self):
        """{'a': word, 'b': word} as slot-manager reads them."""
        return {s["slot"]: int(s["attributes"], 16) for s in self.status()["slots"]}


def image_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sfdisk_attrs(path):
    """{partition number: attribute word} as sfdisk (libfdisk) reads the table."""
    out = subprocess.run(["sfdisk", "--json", str(path)], capture_output=True, text=True, check=True).stdout
    result = {}
    for p in json.loads(out)["partitiontable"]["partitions"]:
        number = int(p["node"][len(str(path)):])
        word = 0
        for a in p.get("attrs", "").replace(" ", ",").split(","):
            if a.startswith("GUID:"):
                for bit in a[5:].split(","):
                    word |= 1 << int(bit)
            elif a == "LegacyBIOSBootable":
                word |= 1 << 2
            elif a == "RequiredPartition":
                word |= 1
            elif a == "NoBlockIOProtocol":
                word |= 2
            elif a.isdigit():
                word |= 1 << int(a)
        result[number] = word
    return result


@pytest.fixture
def small_image(tmp_path):
    return diskimage.make_flatcar_image(tmp_path / "disk.img", slot_size_mib=4, esp_size_mib=4, oem_size_mib=2,
                                        root_size_mib=2, format_esp=False)


@pytest.fixture
def sm(program, small_image, tmp_path):
    return SlotManager(program("slot-manager"), small_image, tmp_path)


def cgpt(*args, check=True):
    return subprocess.run([need_tool("cgpt"), *map(str, args)], capture_output=True, text=True, check=check)


def cgpt_fields(path, number):
    """(priority, tries, successful) as cgpt show -P/-T/-S prints them."""
    return tuple(int(cgpt("show", "-i", number, flag, path).stdout.strip()) for flag in ("-P", "-T", "-S"))


STRACE_CALLS = "openat,open,creat,write,pwrite64,writev,pwritev,pwritev2,truncate,ftruncate,fallocate,sendfile," \
               "copy_file_range,mmap"


# LeakSanitizer cannot run under ptrace.
NO_LSAN_ENV = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")


def strace_writes(log, image_path):
    """(opens for writing as [(path, flags)], [(syscall, fd path, offset, size)] of writes to the image)."""
    opens, writes = [], []
    for line in log.splitlines():
        m = re.search(r'\b(?:openat\((?:AT_FDCWD|\d+)(?:<([^>]*)>)?, |open\(|creat\()"([^"]*)", ([A-Z_|]+)', line)
        if m and re.search(r"O_RDWR|O_WRONLY|O_CREAT|O_TRUNC", m.group(3)):
            path = m.group(2)
            if not path.startswith("/") and m.group(1):
                path = os.path.join(m.group(1), path)
            opens.append((path, m.group(3)))
        m = re.search(r"\b(write|pwrite64|writev|pwritev2?|ftruncate|fallocate)\((\d+)<([^>]*)>, .*?(\d+)\)\s+=", line)
        if m and m.group(3) == str(image_path):
            args = line.split(", ")
            size = int(args[-2]) if m.group(1) == "pwrite64" else -1
            offset = int(m.group(4)) if m.group(1) == "pwrite64" else -1
            writes.append((m.group(1), m.group(3), offset, size))
        m = re.search(r"\bmmap\(.*PROT_WRITE.*MAP_SHARED, (\d+)<([^>]*)>", line)
        if m and m.group(2) == str(image_path):
            writes.append(("mmap", m.group(2), -1, -1))
    return opens, writes


def assert_only_gpt_writes(writes, image):
    sectors = image.size // 512
    first_usable, last_usable = 34, sectors - 34
    assert writes, "expected GPT writes"
    for call, _, offset, size in writes:
        assert call == "pwrite64" and size == 512, (call, offset, size)
        lba = offset // 512
        assert offset % 512 == 0 and (lba < first_usable or lba > last_usable), lba
