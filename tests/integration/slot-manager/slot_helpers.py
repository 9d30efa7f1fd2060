"""Helpers for the slot-manager tests: images, running the program, reading attributes back."""
import hashlib
import json
import subprocess

import pytest

import diskimage


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
