#!/usr/bin/env python3
"""The main job, end to end: a Flatcar-layout disk image goes from "A booted" to "B next" through a
local Omaha server and the suite's four services, then "reboots" into B and marks it good (or, with
--rollback, B never reaches boot-complete.target and the next boot returns to A).

Run through tools/demo, which installs and builds first. Options:
  --build DIR     where the programs were built (default build-demo)
  --work DIR      scratch directory, recreated (default demo-work)
  --rollback      the rollback story instead of the happy one
  --loop          attach the disk image to a loop device and update the block device
  --quiet         print only the step headers and the final verdict

What stands in for what (there is no real boot here): the kernel command line is a file the
slot-manager reads; the ESP is a directory (the mounted ESP partition); "boot" is
`slot-manager boot-select` (GRUB's gptprio.next) followed by the same verity check the initrd does;
"boot-complete.target reached" is `slot-manager mark-good`. Everything else is the real thing:
GPT attributes, the CrAU payload, dm-verity trees, Omaha v3 over HTTPS, varlink with fd passing.
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import uuid

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "lib"))

import diskimage  # noqa: E402
from activator import Activator  # noqa: E402
from omaha_server import OmahaServer  # noqa: E402

OLD, NEW = "4459.0.0", "4500.0.0"
SLOT_MIB = 64
FS_MIB = 40
APPID = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
MACHINE_ID = "5e1ec7ed5e1ec7ed5e1ec7ed5e1ec7ed"
EVENT_NAMES = {(3, 2): "update complete (after reboot)", (13, 1): "download started",
               (14, 1): "download finished", (3, 1): "installed", (3, 0): "error"}


class Demo:
    def __init__(self, args):
        self.args = args
        self.build = pathlib.Path(args.build).resolve()
        self.work = pathlib.Path(args.work).resolve()
        self.quiet = args.quiet
        self.step_no = 0
        self.activators = []
        self.loopdev = None

    # ---- output -------------------------------------------------------------------------------
    def step(self, title):
        self.step_no += 1
        print(f"\n== {self.step_no}. {title}", flush=True)

    def say(self, text):
        if not self.quiet:
            print(f"   {text}", flush=True)

    def prog(self, name):
        p = self.build / "src" / name / name
        if not p.exists():
            sys.exit(f"demo: {p} is missing; build first (tools/demo does)")
        return str(p)

    def run(self, *argv, capture=True, check=True):
        r = subprocess.run([str(a) for a in argv], capture_output=capture, text=True)
        if check and r.returncode != 0:
            sys.exit(f"demo: {' '.join(map(str, argv))} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    # ---- building the images ------------------------------------------------------------------
    def usr_tree(self, version, where):
        """A small /usr: release files as Flatcar's build writes them, plus real files."""
        t = self.work / where
        (t / "share/flatcar").mkdir(parents=True)
        (t / "lib").mkdir()
        (t / "share/flatcar/release").write_text(
            f"FLATCAR_RELEASE_VERSION={version}\nFLATCAR_RELEASE_BOARD=amd64-usr\nFLATCAR_RELEASE_APPID={APPID}\n")
        (t / "share/flatcar/update.conf").write_text("GROUP=stable\n")
        (t / "lib/os-release").write_text(
            f'NAME="Switchyard Demo Linux"\nID=flatcar\nVERSION={version}\nVERSION_ID={version}\n')
        # Real content so that the chunks compress like a real /usr does.
        for src in ("/usr/share/common-licenses", "/usr/share/perl5", "/usr/share/zoneinfo"):
            if os.path.isdir(src):
                shutil.copytree(src, t / "share" / os.path.basename(src), symlinks=True,
                                ignore_dangling_symlinks=True, dirs_exist_ok=True)
        (t / "share/version-stamp").write_text(f"{version}\n" * 1000)
        return t

    def usr_image(self, version, name):
        """An ext4 /usr with its dm-verity tree after it, and a kernel file carrying the root hash."""
        tree = self.usr_tree(version, f"{name}-tree")
        img = self.work / f"{name}.img"
        with open(img, "wb") as f:
            f.truncate(FS_MIB * 1024 * 1024)
        self.run("mkfs.ext4", "-q", "-F", "-L", "USR", "-d", tree, img)
        kernel = self.work / f"{name}-vmlinuz"
        # A stand-in kernel: what matters here is that the update carries it and that bytes 64..127
        # hold the slot's root hash, as Flatcar's build writes them (spec §7).
        kernel.write_bytes(b"MZ" + bytes(62) + bytes(64) + hashlib.sha256(version.encode()).digest() * 8192)
        r = self.run(self.prog("verity-check"), "format", img, f"--embed-into={kernel}", "--arch=amd64",
                     "--json", "--no-progress")
        info = json.loads(r.stdout)
        # The image the payload carries ends with the verity tree (like Flatcar's first 1 GiB).
        end = info["hash_offset"] + info.get("hash_size", 0)
        size = max(end, os.path.getsize(img))
        size = (size + 4095) // 4096 * 4096
        with open(img, "r+b") as f:
            f.truncate(size)
        return img, kernel, info["root_hash"], info

    def build_host(self):
        self.step("Build a Flatcar-layout disk: ESP, BIOS-BOOT, USR-A, USR-B, OEM, OEM-CONFIG, ROOT")
        self.disk = diskimage.make_flatcar_image(self.work / "disk.img", slot_size_mib=SLOT_MIB, format_esp=False)
        for p in sorted(self.disk.partitions.values(), key=lambda p: p.number):
            self.say(f"partition {p.number:>2} {p.label:<11} {p.size // (1024 * 1024):>4} MiB  {p.uuid}")
        self.esp = self.work / "esp"
        (self.esp / "flatcar").mkdir(parents=True)

        self.step(f"Version {OLD}: /usr filesystem + verity tree into USR-A, root hash into vmlinuz-a")
        img, kernel, root_hash, _ = self.usr_image(OLD, "usr-old")
        with open(self.disk.path, "r+b") as d, open(img, "rb") as s:
            d.seek(self.disk.usr_a.offset)
            d.write(s.read())
        shutil.copy(kernel, self.esp / "flatcar/vmlinuz-a")
        self.say(f"root hash of USR-A: {root_hash}")
        self.cmdline = self.work / "cmdline"
        self.boot_into("a")
        self.usr_a_digest = self.slot_digest("a")

    def build_update(self):
        self.step(f"Version {NEW}: image, kernel and a signed payload made by payload-writer generate")
        img, kernel, root_hash, _ = self.usr_image(NEW, "usr-new")
        self.new_kernel = kernel
        self.new_image = img
        key = self.work / "update-key.pem"
        self.keys = self.work / "trusted-keys"
        self.keys.mkdir()
        self.run("openssl", "genrsa", "-out", key, "2048")
        self.run("openssl", "rsa", "-in", key, "-pubout", "-out", self.keys / "update-payload-key.pub.pem")
        self.payload = self.work / "flatcar_production_update.gz"
        self.run(self.prog("payload-writer"), "generate", f"--image={img}", f"--kernel={kernel}", f"--key={key}",
                 f"--output={self.payload}")
        r = self.run(self.prog("payload-writer"), "inspect", self.payload, f"--keys={self.keys}", "--json")
        info = json.loads(r.stdout)
        self.say(f"payload: {self.payload.stat().st_size} bytes, {len(info.get('manifest', {}).get('partition_operations', []))}"
                 f" operations, signature {'valid' if info.get('signature_valid', info.get('signatures_valid')) else 'checked'}")
        self.say(f"root hash of the new /usr: {root_hash}")

    # ---- the host's state -----------------------------------------------------------------------
    @property
    def disk_path(self):
        return self.loopdev or str(self.disk.path)

    def slot_args(self):
        return [f"--disk={self.disk_path}", f"--esp={self.esp}", f"--cmdline={self.cmdline}"]

    def slot_status(self):
        r = self.run(self.prog("slot-manager"), *self.slot_args(), "--json", "status")
        return json.loads(r.stdout)

    def show_slots(self):
        r = self.run(self.prog("slot-manager"), *self.slot_args(), "status")
        for line in r.stdout.rstrip().splitlines():
            print(f"   | {line}")

    def slot_digest(self, slot):
        part = self.disk.slot(slot)
        h = hashlib.sha256()
        with open(self.disk.path, "rb") as f:
            f.seek(part.offset)
            left = part.size
            while left:
                b = f.read(min(left, 1 << 20))
                h.update(b)
                left -= len(b)
        return h.hexdigest()

    def boot_into(self, slot):
        uuid = self.disk.slot(slot).uuid
        self.cmdline.write_text(f"mount.usr=/dev/mapper/usr verity.usr=PARTUUID={uuid} rootflags=rw "
                                "mount.usrflags=ro root=LABEL=ROOT console=ttyS0\n")

    def make_root(self, version):
        root = self.work / "root"
        (root / "usr/share/flatcar").mkdir(parents=True, exist_ok=True)
        (root / "etc/flatcar").mkdir(parents=True, exist_ok=True)
        (root / "etc/switchyard").mkdir(parents=True, exist_ok=True)
        (root / "usr/share/flatcar/release").write_text(
            f"FLATCAR_RELEASE_VERSION={version}\nFLATCAR_RELEASE_BOARD=amd64-usr\nFLATCAR_RELEASE_APPID={APPID}\n")
        (root / "usr/share/flatcar/update.conf").write_text("GROUP=stable\n")
        (root / "etc/machine-id").write_text(MACHINE_ID + "\n")
        self.root = root
        self.new_boot_id()
        return root

    def new_boot_id(self):
        """omaha-client reads the boot id below --root; every simulated boot gets a new one."""
        d = self.root / "proc/sys/kernel/random"
        d.mkdir(parents=True, exist_ok=True)
        (d / "boot_id").write_text(str(uuid.uuid4()) + "\n")

    # ---- services -------------------------------------------------------------------------------
    def start_services(self, server):
        run = self.work / "run/switchyard"
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        self.sock = {n: run / f"io.switchyard.{n}" for n in ("Slots", "PayloadWriter", "Verity", "Omaha")}
        (self.root / "etc/flatcar/update.conf").write_text(f"SERVER={server.url}\n")
        conf = "FIRST_CHECK_DELAY_SEC=3600\nFIRST_CHECK_FUZZ_SEC=0\nCHECK_INTERVAL_SEC=3600\nCHECK_FUZZ_SEC=0\n"
        if server.ca_file:
            conf += f"CA_FILE={server.ca_file}\n"
        (self.root / "etc/switchyard/omaha-client.conf").write_text(conf)
        services = [
            ("Slots", [self.prog("slot-manager"), *self.slot_args(), "varlink"]),
            ("PayloadWriter", [self.prog("payload-writer"), f"--keys={self.keys}", "varlink"]),
            ("Verity", [self.prog("verity-check"), "varlink"]),
            ("Omaha", [self.prog("omaha-client"), f"--root={self.root}", f"--slots={self.sock['Slots']}",
                       f"--payload-writer={self.sock['PayloadWriter']}", f"--verity={self.sock['Verity']}",
                       "--dbus=no", "daemon"]),
        ]
        for name, argv in services:
            a = Activator(self.sock[name], argv, log_path=logs / f"{name}.log",
                          env=dict(os.environ, SWITCHYARD_LOG_LEVEL="info"))
            a.start()
            self.activators.append(a)
            self.say(f"socket {self.sock[name].relative_to(self.work)} -> {pathlib.Path(argv[0]).name} (activated on demand)")

    def stop_services(self):
        for a in self.activators:
            a.stop()
        self.activators = []

    def omaha(self, *args, check=True):
        return self.run(self.prog("omaha-client"), f"--address={self.sock['Omaha']}", *args, check=check)

    def show_events(self, server, since=0):
        evs = server.events()[since:]
        for (etype, result, code, prev) in evs:
            name = EVENT_NAMES.get((etype, result), "")
            extra = (f" errorcode={code}" if code is not None else "") + (
                f" previousversion={prev}" if prev is not None else "")
            print(f"   | event type={etype} result={result}{extra}  {name}")
        return evs

    # ---- the story ------------------------------------------------------------------------------
    def update(self, server):
        self.step("Start the four services, socket-activated, and ask for an update")
        self.start_services(server)
        r = self.omaha("check", "--wait")
        st = json.loads(self.omaha("--json", "status").stdout)
        self.say(f"omaha-client status: {st['current_operation']} new_version={st['new_version']}")
        if st["current_operation"] != "UPDATE_STATUS_UPDATED_NEED_REBOOT":
            sys.exit(f"demo: the update did not complete:\n{r.stdout}{r.stderr}\nsee {self.work}/logs")
        self.step("Events the Omaha server received")
        self.show_events(server)
        self.stop_services()
        self.step("Slot table after the update: B is next with one try, A untouched")
        self.show_slots()
        assert self.slot_digest("a") == self.usr_a_digest, "USR-A changed!"
        self.say("USR-A is byte-for-byte what it was before the update")

    def boot(self, expect):
        r = self.run(self.prog("slot-manager"), *self.slot_args(), "--json", "boot-select")
        chosen = json.loads(r.stdout)
        slot = chosen.get("slot") or chosen.get("next")
        self.say(f"gptprio.next chose {slot} ({chosen.get('label', '')})")
        if slot != expect:
            sys.exit(f"demo: expected the boot loader to pick {expect}, it picked {slot}")
        # What the initrd does before mounting /usr: the root hash comes from the slot's kernel.
        self.run(self.prog("verity-check"), "verify", self.disk.path, f"--offset={self.disk.slot(slot).offset}",
                 f"--size={self.disk.slot(slot).size}", f"--kernel={self.esp}/flatcar/vmlinuz-{slot}", "--no-progress")
        self.say(f"verity: every block of USR-{slot.upper()} matches the root hash in vmlinuz-{slot}")
        self.boot_into(slot)

    def first_check_after_boot(self, server, version, expect_refusal=False):
        shutil.rmtree(self.work / "root/run", ignore_errors=True)
        self.new_boot_id()
        (self.root / "usr/share/flatcar/release").write_text(
            f"FLATCAR_RELEASE_VERSION={version}\nFLATCAR_RELEASE_BOARD=amd64-usr\nFLATCAR_RELEASE_APPID={APPID}\n")
        before = len(server.events())
        self.start_services(server)
        r = self.omaha("check", "--wait", check=not expect_refusal)
        if expect_refusal:
            self.say("omaha-client: " + (r.stderr.strip().splitlines() or ["(no message)"])[-1].removeprefix("omaha-client: "))
        st = json.loads(self.omaha("--json", "status").stdout)
        self.stop_services()
        return before, st

    def happy(self, server):
        self.step("Reboot: the boot loader's choice (gptprio.next) spends B's try")
        self.boot("b")
        self.show_slots()
        self.step("boot-complete.target reached on B: mark-good")
        self.run(self.prog("slot-manager"), *self.slot_args(), "mark-good")
        self.show_slots()
        self.step(f"First update check on B reports {NEW} installed (event 3/2 with previousversion)")
        before, st = self.first_check_after_boot(server, NEW)
        evs = self.show_events(server, before)
        ok = any(e[0] == 3 and e[1] == 2 and e[3] == OLD for e in evs)
        s = self.slot_status()
        b = [x for x in s["slots"] if x["slot"] == "b"][0]
        ok = ok and s["booted"] == "b" and b["successful"] and self.slot_digest("a") == self.usr_a_digest
        return ok

    def rollback(self, server):
        self.step("Reboot: the boot loader's choice (gptprio.next) spends B's only try")
        self.boot("b")
        self.step("B never reaches boot-complete.target (a health check fails): no mark-good")
        self.show_slots()
        self.step("Next reboot: B has no tries left and was never good, so the boot loader returns to A")
        self.boot("a")
        self.show_slots()
        self.step(f"First update check on A reports the rollback (error 44) and does not fetch {NEW} again")
        requests_before = len(server.payload_requests)
        before, st = self.first_check_after_boot(server, OLD, expect_refusal=True)
        evs = self.show_events(server, before)
        self.say(f"payload downloads after the rollback: {len(server.payload_requests) - requests_before}")
        ok = any(e[0] == 3 and e[1] == 0 and e[2] is not None and (e[2] & 0xffff) == 44 for e in evs)
        ok = ok and len(server.payload_requests) == requests_before
        ok = ok and self.slot_status()["booted"] == "a" and self.slot_digest("a") == self.usr_a_digest
        return ok

    def main(self):
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        print(f"switchyard demo: A/B update of a disk image ({'rollback story' if self.args.rollback else 'update story'})")
        self.make_root(OLD)
        self.build_host()
        self.build_update()
        if self.args.loop:
            self.step("Attach the disk image to a loop device")
            self.loopdev = self.run("losetup", "--find", "--show", "--partscan", self.disk.path).stdout.strip()
            # The kernel's partition scan is asynchronous and, in some containers, absent; partx adds
            # the partitions (an "already exists" answer is fine) and devtmpfs makes their nodes.
            subprocess.run(["partx", "-a", self.loopdev], capture_output=True)
            node = f"{self.loopdev}p{self.disk.usr_b.number}"
            for _ in range(100):
                if os.path.exists(node):
                    break
                time.sleep(0.05)
            else:
                sys.exit(f"demo: {node} did not appear; this machine cannot show loop partitions")
            self.say(f"{self.loopdev} with partitions {self.loopdev}p1..p9")
        try:
            self.step("Slot table before the update: A booted and good")
            self.show_slots()
            with OmahaServer(payload=self.payload, version=NEW, tls=True) as server:
                self.say(f"local Omaha server (Nebraska framing) at {server.url}, offering {NEW}")
                self.update(server)
                ok = self.rollback(server) if self.args.rollback else self.happy(server)
        finally:
            self.stop_services()
            if self.loopdev:
                subprocess.run(["losetup", "-d", self.loopdev])
        print()
        print("RESULT: " + ("OK" if ok else "FAILED") + (" - rolled back to A, A untouched" if self.args.rollback
                                                        else f" - B runs {NEW} and is marked good, A untouched"))
        return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=str(TOP / "build-demo"))
    p.add_argument("--work", default=str(TOP / "demo-work"))
    p.add_argument("--rollback", action="store_true")
    p.add_argument("--loop", action="store_true")
    p.add_argument("--quiet", action="store_true")
    return Demo(p.parse_args()).main()


if __name__ == "__main__":
    sys.exit(main())
