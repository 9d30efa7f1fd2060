"""A simulated Flatcar host for the demo and the end-to-end tests: a Flatcar-layout GPT disk image with
version OLD in USR-A (ext4 /usr + dm-verity tree, root hash in the ESP's vmlinuz-a), a signed CrAU payload
of version NEW made by `payload-writer generate`, a --root directory for omaha-client, and the four
services (slot-manager, payload-writer, verity-check, omaha-client) socket-activated with activator.py.

    host = FlatcarHost(work_dir, build_dir, slot_mib=16, fs_mib=12, rich=False)
    host.make_root(OLD); host.build_host(); host.build_update()
    other = host.clone(another_dir)         # a fresh copy of disk, ESP and root (cheap; shares the payload)
    with OmahaServer(payload=host.payload, version=NEW, tls=True) as srv:
        other.start_services(srv); other.omaha("check", "--wait"); other.stop_services()
    other.slot_status(); other.cgpt_show(); other.slot_digest("a")

The kernel command line is a file (--cmdline), the ESP a directory (--esp), "boot" is `slot-manager
boot-select`. Errors raise HostError with the command's output.
"""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import uuid

import diskimage
from activator import Activator

OLD, NEW = "4459.0.0", "4500.0.0"
APPID = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
MACHINE_ID = "5e1ec7ed5e1ec7ed5e1ec7ed5e1ec7ed"
SERVICES = ("Slots", "PayloadWriter", "Verity", "Omaha")
SERVICE_PROGRAM = {"Slots": "slot-manager", "PayloadWriter": "payload-writer", "Verity": "verity-check",
                   "Omaha": "omaha-client"}


# sh -c WRAP_ONCE MARKER WRAPPER... -- COMMAND...: the first time, runs WRAPPER... -- COMMAND...;
# once MARKER exists, COMMAND... alone.
WRAP_ONCE = ('m=$0; if [ -e "$m" ]; then while [ "$1" != "--" ]; do shift; done; shift; exec "$@"; fi; '
             ': > "$m"; exec "$@"')


class HostError(RuntimeError):
    pass


def _tool(name):
    return shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else name)


def release_text(version):
    return f"FLATCAR_RELEASE_VERSION={version}\nFLATCAR_RELEASE_BOARD=amd64-usr\nFLATCAR_RELEASE_APPID={APPID}\n"


class FlatcarHost:
    def __init__(self, work, build, slot_mib=64, fs_mib=40, rich=True, chunk_size=None, small_disk=False):
        """rich: fill /usr with real files from the build machine (compresses like a real /usr);
        otherwise a few MiB of incompressible data, so that a payload has a useful size for fault tests.
        small_disk: shrink ESP/OEM/ROOT so that copies are cheap."""
        self.work = pathlib.Path(work).resolve()
        self.build = pathlib.Path(build).resolve()
        self.slot_mib = slot_mib
        self.fs_mib = fs_mib
        self.rich = rich
        self.chunk_size = chunk_size
        self.small_disk = small_disk
        self.activators = {}
        self.loopdev = None
        self.disk = None
        self.esp = self.work / "esp"
        self.cmdline = self.work / "cmdline"
        self.root = self.work / "root"
        self.logs = self.work / "logs"
        run = self.work / "run/switchyard"
        if len(str(run)) > 70:  # AF_UNIX paths are at most 107 bytes
            run = pathlib.Path(tempfile.mkdtemp(prefix="switchyard-run-"))
        self.sock = {n: run / f"io.switchyard.{n}" for n in SERVICES}

    # ---- helpers ----------------------------------------------------------------------------------
    def prog(self, name):
        p = self.build / "src" / name / name
        if not p.exists():
            raise HostError(f"{p} is missing; build first")
        return str(p)

    def run(self, *argv, check=True, env=None, timeout=300):
        r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise HostError(f"{' '.join(map(str, argv))} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    # ---- images ---------------------------------------------------------------------------------------
    def usr_tree(self, version, where):
        """A small /usr: release files as Flatcar's build writes them, plus content."""
        t = self.work / where
        if t.exists():
            shutil.rmtree(t)
        (t / "share/flatcar").mkdir(parents=True)
        (t / "lib").mkdir()
        (t / "share/flatcar/release").write_text(release_text(version))
        (t / "share/flatcar/update.conf").write_text("GROUP=stable\n")
        (t / "lib/os-release").write_text(
            f'NAME="Switchyard Demo Linux"\nID=flatcar\nVERSION={version}\nVERSION_ID={version}\n')
        if self.rich:
            # Real content so that the chunks compress like a real /usr does.
            for src in ("/usr/share/common-licenses", "/usr/share/perl5", "/usr/share/zoneinfo"):
                if os.path.isdir(src):
                    shutil.copytree(src, t / "share" / os.path.basename(src), symlinks=True,
                                    ignore_dangling_symlinks=True, dirs_exist_ok=True)
        else:
            # Incompressible data, different per version: the payload is then a few MiB.
            blob = bytearray()
            seed = version.encode()
            counter = 0
            while len(blob) < 4 * 1024 * 1024:
                blob += hashlib.sha512(seed + counter.to_bytes(8, "little")).digest()
                counter += 1
            (t / "lib/blob.bin").write_bytes(bytes(blob))
        (t / "share/version-stamp").write_text(f"{version}\n" * 1000)
        return t

    def usr_image(self, version, name):
        """An ext4 /usr with its dm-verity tree after it, and a kernel file carrying the root hash."""
        tree = self.usr_tree(version, f"{name}-tree")
        img = self.work / f"{name}.img"
        with open(img, "wb") as f:
            f.truncate(self.fs_mib * 1024 * 1024)
        self.run(_tool("mkfs.ext4"), "-q", "-F", "-L", "USR", "-d", tree, img)
        kernel = self.work / f"{name}-vmlinuz"
        # A stand-in kernel: what matters is that the update carries it and that bytes 64..127 hold the
        # slot's root hash, as Flatcar's build writes them (spec §7).
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

    def make_root(self, version):
        """The --root directory omaha-client reads: release, update.conf, machine-id, boot id."""
        root = self.root
        (root / "usr/share/flatcar").mkdir(parents=True, exist_ok=True)
        (root / "etc/flatcar").mkdir(parents=True, exist_ok=True)
        (root / "etc/switchyard").mkdir(parents=True, exist_ok=True)
        self.set_release(version)
        (root / "usr/share/flatcar/update.conf").write_text("GROUP=stable\n")
        (root / "etc/machine-id").write_text(MACHINE_ID + "\n")
        self.new_boot_id()
        return root

    def set_release(self, version):
        (self.root / "usr/share/flatcar/release").write_text(release_text(version))

    def new_boot_id(self):
        """omaha-client reads the boot id below --root; every simulated boot gets a new one."""
        d = self.root / "proc/sys/kernel/random"
        d.mkdir(parents=True, exist_ok=True)
        (d / "boot_id").write_text(str(uuid.uuid4()) + "\n")

    def build_host(self, version=OLD):
        """The disk with version in USR-A, A booted and good; returns the old image's root hash."""
        self.make_disk()
        return self.install_old(version)

    def make_disk(self):
        extra = dict(esp_size_mib=2, oem_size_mib=2, oem_config_size_mib=1, root_size_mib=2) if self.small_disk else {}
        self.disk = diskimage.make_flatcar_image(self.work / "disk.img", slot_size_mib=self.slot_mib,
                                                 format_esp=False, **extra)
        (self.esp / "flatcar").mkdir(parents=True, exist_ok=True)
        return self.disk

    def install_old(self, version=OLD):
        img, kernel, root_hash, _ = self.usr_image(version, "usr-old")
        self.old_image = img
        with open(self.disk.path, "r+b") as d, open(img, "rb") as s:
            d.seek(self.disk.usr_a.offset)
            d.write(s.read())
        shutil.copy(kernel, self.esp / "flatcar/vmlinuz-a")
        self.boot_into("a")
        self.usr_a_digest = self.slot_digest("a")
        return root_hash

    def build_update(self, version=NEW):
        """Image, kernel, a fresh key and the signed payload of version."""
        img, kernel, root_hash, _ = self.usr_image(version, "usr-new")
        self.new_kernel = kernel
        self.new_image = img
        self.new_root_hash = root_hash
        key = self.work / "update-key.pem"
        self.keys = self.work / "trusted-keys"
        self.keys.mkdir(exist_ok=True)
        self.run("openssl", "genrsa", "-out", key, "2048")
        self.run("openssl", "rsa", "-in", key, "-pubout", "-out", self.keys / "update-payload-key.pub.pem")
        self.key = key
        self.payload = self.work / "flatcar_production_update.gz"
        extra = [f"--chunk-size={self.chunk_size}"] if self.chunk_size else []
        self.run(self.prog("payload-writer"), "generate", f"--image={img}", f"--kernel={kernel}", f"--key={key}",
                 f"--output={self.payload}", *extra)
        r = self.run(self.prog("payload-writer"), "inspect", self.payload, f"--keys={self.keys}", "--json")
        self.payload_info = json.loads(r.stdout)
        return self.payload_info

    def clone(self, work):
        """A fresh host in work with a copy of this one's disk, ESP and root (not the services);
        the payload, key and images are shared (read-only)."""
        other = FlatcarHost(work, self.build, self.slot_mib, self.fs_mib, self.rich, self.chunk_size,
                            self.small_disk)
        other.work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "--sparse=always", str(self.disk.path), str(other.work / "disk.img")], check=True)
        other.disk = diskimage.FlatcarImage(other.work / "disk.img", self.disk.size, self.disk.partitions)
        shutil.copytree(self.esp, other.esp)
        shutil.copytree(self.root, other.root, symlinks=True)
        shutil.copy(self.cmdline, other.cmdline)
        for attr in ("usr_a_digest", "old_image", "new_image", "new_kernel", "new_root_hash", "keys", "key",
                     "payload", "payload_info"):
            if hasattr(self, attr):
                setattr(other, attr, getattr(self, attr))
        other.new_boot_id()
        return other

    # ---- loop devices -----------------------------------------------------------------------------
    def attach_loop(self):
        """Attaches the image to a loop device with its partitions; returns the device."""
        dev = self.run("losetup", "--find", "--show", "--partscan", self.disk.path).stdout.strip()
        self.loopdev = dev
        # The kernel's partition scan is asynchronous and, in some containers, absent; partx adds the
        # partitions (an "already exists" answer is fine) and devtmpfs makes their nodes.
        subprocess.run([_tool("partx"), "-a", dev], capture_output=True)
        node = f"{dev}p{self.disk.usr_b.number}"
        for _ in range(100):
            if os.path.exists(node):
                return dev
            time.sleep(0.05)
        self.detach_loop()
        raise HostError(f"{node} did not appear; this machine cannot show loop partitions")

    def detach_loop(self):
        if self.loopdev:
            subprocess.run(["losetup", "-d", self.loopdev], capture_output=True)
            self.loopdev = None

    # ---- the host's state -------------------------------------------------------------------------
    @property
    def disk_path(self):
        return self.loopdev or str(self.disk.path)

    def slot_args(self):
        return [f"--disk={self.disk_path}", f"--esp={self.esp}", f"--cmdline={self.cmdline}"]

    def slot_status(self):
        r = self.run(self.prog("slot-manager"), *self.slot_args(), "--json", "status")
        return json.loads(r.stdout)

    def slot_table(self):
        return self.run(self.prog("slot-manager"), *self.slot_args(), "status").stdout

    def cgpt_show(self):
        """Debian's cgpt reading the disk: its output (raises if cgpt rejects the GPT)."""
        return self.run(_tool("cgpt"), "show", self.disk.path).stdout

    def cgpt_attrs(self, slot):
        return diskimage.decode_attrs(diskimage.cgpt_attrs(self.disk.path, self.disk.slot(slot).number))

    def sfdisk_json(self):
        return json.loads(self.run(_tool("sfdisk"), "--json", self.disk.path).stdout)

    def read_slot(self, slot, length=None):
        part = self.disk.slot(slot)
        with open(self.disk.path, "rb") as f:
            f.seek(part.offset)
            return f.read(part.size if length is None else length)

    def slot_digest(self, slot, length=None):
        part = self.disk.slot(slot)
        h = hashlib.sha256()
        with open(self.disk.path, "rb") as f:
            f.seek(part.offset)
            left = part.size if length is None else length
            while left:
                b = f.read(min(left, 1 << 20))
                if not b:
                    break
                h.update(b)
                left -= len(b)
        return h.hexdigest()

    def boot_into(self, slot):
        part_uuid = self.disk.slot(slot).uuid
        self.cmdline.write_text(f"mount.usr=/dev/mapper/usr verity.usr=PARTUUID={part_uuid} rootflags=rw "
                                "mount.usrflags=ro root=LABEL=ROOT console=ttyS0\n")

    def boot_select(self):
        """What GRUB's gptprio.next does: picks (and spends a try of) the next slot; returns its JSON."""
        r = self.run(self.prog("slot-manager"), *self.slot_args(), "--json", "boot-select")
        return json.loads(r.stdout)

    def verify_slot(self, slot, check=True):
        """The initrd's check: every block of the slot against the root hash in its kernel file."""
        return self.run(self.prog("verity-check"), "verify", self.disk.path, f"--offset={self.disk.slot(slot).offset}",
                        f"--size={self.disk.slot(slot).size}", f"--kernel={self.esp}/flatcar/vmlinuz-{slot}",
                        "--no-progress", check=check)

    # ---- services ---------------------------------------------------------------------------------
    def write_config(self, server, extra_conf=""):
        (self.root / "etc/flatcar/update.conf").write_text(f"SERVER={server.url}\n")
        conf = "FIRST_CHECK_DELAY_SEC=3600\nFIRST_CHECK_FUZZ_SEC=0\nCHECK_INTERVAL_SEC=3600\nCHECK_FUZZ_SEC=0\n"
        if server.ca_file:
            conf += f"CA_FILE={server.ca_file}\n"
        (self.root / "etc/switchyard/omaha-client.conf").write_text(conf + extra_conf)

    def service_argv(self):
        return {
            "Slots": [self.prog("slot-manager"), *self.slot_args(), "varlink"],
            "PayloadWriter": [self.prog("payload-writer"), f"--keys={self.keys}", "varlink"],
            "Verity": [self.prog("verity-check"), "varlink"],
            "Omaha": [self.prog("omaha-client"), f"--root={self.root}", f"--slots={self.sock['Slots']}",
                      f"--payload-writer={self.sock['PayloadWriter']}", f"--verity={self.sock['Verity']}",
                      "--dbus=no", "daemon"],
        }

    def start_services(self, server, extra_conf="", env=None, wrap=None):
        """Sockets for the four services; each starts on its first connection (systemd's Accept=no).
        wrap: {service: [argv prefix]} runs that service under e.g. strace; the prefix must exec or fork
        its command (LISTEN_PID is set again right before the service's own exec)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.write_config(server, extra_conf)
        environ = dict(os.environ, SWITCHYARD_LOG_LEVEL="info")
        environ.update(env or {})
        for name, argv in self.service_argv().items():
            if wrap and name in wrap:
                # Only the first start runs under the wrapper (a kill injected at start-up would otherwise
                # repeat on every re-activation, as systemd would until its start limit).
                marker = self.work / f".wrapped-{name}"
                if marker.exists():
                    marker.unlink()
                argv = ["/bin/sh", "-c", WRAP_ONCE, str(marker)] + list(wrap[name]) + [
                    "--", "/bin/sh", "-c", 'export LISTEN_PID=$$; exec "$@"', "sh"] + argv
            a = Activator(self.sock[name], argv, log_path=self.logs / f"{name}.log", env=environ)
            a.start()
            self.activators[name] = a
        return self.activators

    def stop_services(self):
        for a in self.activators.values():
            a.stop()
        self.activators = {}

    def log(self, name):
        p = self.logs / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def omaha(self, *args, check=True, timeout=300):
        return self.run(self.prog("omaha-client"), f"--address={self.sock['Omaha']}", *args, check=check,
                        timeout=timeout)

    def omaha_status(self):
        return json.loads(self.omaha("--json", "status").stdout)
