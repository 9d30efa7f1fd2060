"""Flatcar-layout GPT disk images for tests (spec flatcar-update.md §6.1), built with sfdisk.

    import diskimage
    img = diskimage.make_flatcar_image(tmp_path / "disk.img", slot_size_mib=64)
    img.usr_a.offset, img.usr_a.size      # bytes within the image
    img.partitions["OEM"].number          # 6

The layout follows Flatcar's disk_layout.json: 1 EFI-SYSTEM, 2 BIOS-BOOT, 3 USR-A, 4 USR-B, 6 OEM,
7 OEM-CONFIG, 9 ROOT, aligned to 4096 sectors, with Flatcar's type GUIDs, the fixed USR PARTUUIDs and
the build's attributes (USR-A priority 1 successful 1, USR-B all zero). Sizes are scaled down for
tests. The ESP is formatted as FAT with mkfs.vfat and filled from esp_dir with mtools when those
tools are installed (packages dosfstools, mtools).
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import subprocess

SECTOR = 512
ALIGN = 4096  # sectors, as in disk_layout.json

TYPE_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
TYPE_BIOS = "21686148-6449-6E6F-744E-656564454649"
TYPE_USR = "5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6"
TYPE_DATA = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
TYPE_RESERVED = "C95DC21A-DF0E-4340-8D7B-26CBFA9A03E0"
TYPE_RESIZE = "3884DD41-8582-4404-B9A8-E9B84F2DF50E"
TYPE_CHROMEOS_KERNEL = "FE3A2A5D-4F32-41A7-B725-ACCC3285A309"

USR_A_PARTUUID = "7130c94a-213a-4e5a-8e26-6cce9662f132"
USR_B_PARTUUID = "e03dd35c-7c2d-4a47-b3fe-27f15780a57c"
DISK_GUID = "00000000-0000-0000-0000-000000000001"

# Attribute words (spec §6.2): priority bits 48-51, tries 52-55, successful 56.
ATTR_LEGACY_BIOS_BOOTABLE = 1 << 2


def attrs(priority: int = 0, tries: int = 0, successful: bool = False) -> int:
    """The 64-bit GPT attribute word for the ChromeOS/Flatcar A/B fields."""
    if not (0 <= priority <= 15 and 0 <= tries <= 15):
        raise ValueError("priority and tries are 0-15")
    return priority << 48 | tries << 52 | int(bool(successful)) << 56


def decode_attrs(word: int) -> dict:
    """{'priority', 'tries', 'successful'} of an attribute word."""
    return {"priority": (word >> 48) & 15, "tries": (word >> 52) & 15, "successful": bool((word >> 56) & 1)}


@dataclasses.dataclass
class Partition:
    number: int
    label: str
    type: str
    uuid: str
    offset: int  # bytes
    size: int  # bytes
    attrs: int = 0

    @property
    def start_lba(self) -> int:
        return self.offset // SECTOR


@dataclasses.dataclass
class FlatcarImage:
    path: pathlib.Path
    size: int
    partitions: dict  # label -> Partition

    @property
    def usr_a(self) -> Partition:
        return next(p for p in self.partitions.values() if p.number == 3)

    @property
    def usr_b(self) -> Partition:
        return next(p for p in self.partitions.values() if p.number == 4)

    @property
    def esp(self) -> Partition:
        return self.partitions["EFI-SYSTEM"]

    def slot(self, name: str) -> Partition:
        """'a' or 'b'."""
        return self.usr_a if name.lower() == "a" else self.usr_b


def _sfdisk_attrs(word: int) -> str:
    names = {0: "RequiredPartition", 1: "NoBlockIOProtocol", 2: "LegacyBIOSBootable"}
    parts = []
    for bit in range(64):
        if word >> bit & 1:
            if bit in names:
                parts.append(names[bit])
            elif bit >= 48:
                parts.append(f"GUID:{bit}")
            else:
                raise ValueError(f"sfdisk cannot set attribute bit {bit}")
    return ",".join(parts)


def _tool(name: str) -> str | None:
    return shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)


def make_flatcar_image(path, slot_size_mib: int = 64, esp_size_mib: int = 32, oem_size_mib: int = 8,
                       oem_config_size_mib: int = 2, root_size_mib: int = 16, esp_dir=None,
                       format_esp: bool = True, usr_a_attrs: int | None = None, usr_b_attrs: int = 0,
                       usr_type: str = TYPE_USR, legacy_labels: bool = False,
                       extra_usr_partition: bool = False) -> FlatcarImage:
    """Creates (or overwrites) a Flatcar-layout GPT image file at path and returns its layout.

    slot_size_mib: size of USR-A and USR-B (Flatcar: 1024 before 2025-10, 2048 now).
    usr_a_attrs / usr_b_attrs: attribute words (see attrs()); default A = attrs(1, 0, True), B = 0,
      as the image build writes them.
    esp_dir: a directory copied into the ESP (needs mtools); format_esp: make the ESP a FAT file
      system (needs dosfstools; silently skipped when mkfs.vfat is missing and esp_dir is None).
    usr_type: the slots' type GUID (tests against cgpt prioritize use TYPE_CHROMEOS_KERNEL).
    legacy_labels: label the slots ROOT-A/ROOT-B (old CoreOS names).
    extra_usr_partition: add partition 5 "USR-C" of the USR type (a third gptprio candidate).
    """
    path = pathlib.Path(path)
    sfdisk = _tool("sfdisk")
    if not sfdisk:
        raise RuntimeError("sfdisk (package fdisk) is not installed")
    if usr_a_attrs is None:
        usr_a_attrs = attrs(1, 0, True)

    mib = 2048  # sectors
    a, b = ("ROOT-A", "ROOT-B") if legacy_labels else ("USR-A", "USR-B")
    plan = [
        (1, "EFI-SYSTEM", TYPE_ESP, "596ff08e-5617-4497-b10b-27a23f658b73", esp_size_mib * mib,
         ATTR_LEGACY_BIOS_BOOTABLE),
        (2, "BIOS-BOOT", TYPE_BIOS, "eaccc3d5-e7e9-461d-a6e2-1dcdae4671ec", 2 * mib, 0),
        (3, a, usr_type, USR_A_PARTUUID, slot_size_mib * mib, usr_a_attrs),
        (4, b, usr_type, USR_B_PARTUUID, slot_size_mib * mib, usr_b_attrs),
    ]
    if extra_usr_partition:
        plan.append((5, "USR-C", usr_type, "2f1c3e7a-55b1-4f6e-9d52-6a1c0b7e9e01", 2 * mib, 0))
    plan += [
        (6, "OEM", TYPE_DATA, "726e33fa-dfe9-45b2-b215-fb35cd9c2388", oem_size_mib * mib, 0),
        (7, "OEM-CONFIG", TYPE_RESERVED, "8f39ce8b-1fb3-4e7e-a784-0c53c8f40442", oem_config_size_mib * mib, 0),
        (9, "ROOT", TYPE_RESIZE, "d9a972bb-8084-4ab5-ba55-f8a3affad70d", root_size_mib * mib, 0),
    ]

    lines = ["label: gpt", f"label-id: {DISK_GUID}", "unit: sectors", "first-lba: 34", ""]
    parts = {}
    lba = ALIGN
    for number, label, ptype, uuid, size, word in plan:
        lba = (lba + ALIGN - 1) // ALIGN * ALIGN
        attr = _sfdisk_attrs(word)
        lines.append(f"{path}{number} : start={lba}, size={size}, type={ptype}, uuid={uuid}, name=\"{label}\""
                     + (f", attrs=\"{attr}\"" if attr else ""))
        parts[label] = Partition(number, label, ptype.lower(), uuid, lba * SECTOR, size * SECTOR, word)
        lba += size
    total_sectors = lba + 34 + ALIGN  # room for the backup GPT
    total_sectors = (total_sectors + mib - 1) // mib * mib

    with open(path, "wb") as f:
        f.truncate(total_sectors * SECTOR)
    subprocess.run([sfdisk, "--no-reread", "--no-tell-kernel", "-q", str(path)], input="\n".join(lines) + "\n",
                   text=True, check=True, capture_output=True)

    esp = parts["EFI-SYSTEM"]
    mkfs = _tool("mkfs.vfat")
    if esp_dir is not None or (format_esp and mkfs):
        if not mkfs:
            raise RuntimeError("mkfs.vfat (package dosfstools) is needed to fill the ESP")
        subprocess.run([mkfs, "-n", "EFI-SYSTEM", "--offset", str(esp.start_lba), str(path),
                        str(esp.size // 1024)], check=True, capture_output=True)
    if esp_dir is not None:
        mcopy = _tool("mcopy")
        if not mcopy:
            raise RuntimeError("mcopy (package mtools) is needed to fill the ESP")
        entries = [str(p) for p in sorted(pathlib.Path(esp_dir).iterdir())]
        if entries:
            env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
            subprocess.run([mcopy, "-s", "-o", "-i", f"{path}@@{esp.offset}", *entries, "::/"], check=True,
                           capture_output=True, env=env)

    return FlatcarImage(path, total_sectors * SECTOR, parts)


def esp_read_file(image: FlatcarImage, name: str) -> bytes:
    """A file from the image's FAT ESP (e.g. 'flatcar/vmlinuz-a'), read with mtools."""
    mtype = _tool("mtype") or _tool("mcopy")
    if not mtype:
        raise RuntimeError("mtools is not installed")
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    out = subprocess.run([_tool("mcopy"), "-n", "-i", f"{image.path}@@{image.esp.offset}", f"::/{name}", "-"],
                         check=True, capture_output=True, env=env)
    return out.stdout


def cgpt_attrs(path, number: int) -> int:
    """The partition's attribute word as Debian's cgpt reads it (cgpt show -A prints bits 48-63)."""
    cgpt = _tool("cgpt")
    if not cgpt:
        raise RuntimeError("cgpt is not installed")
    out = subprocess.run([cgpt, "show", "-i", str(number), "-A", str(path)], check=True, capture_output=True,
                         text=True).stdout.strip()
    return int(out, 16) << 48
