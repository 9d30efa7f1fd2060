# SPDX-License-Identifier: LGPL-2.1-or-later
"""Builds and boots the switchyard VM proof: a Debian 12 guest laid out like Flatcar.

Everything expensive is cached under a cache directory (default ~/.cache/switchyard-vm, override with
SWITCHYARD_VM_CACHE), keyed by a hash of its inputs:

  base-KEY/            debootstrap --variant=minbase tree (systemd, udev, the suite's runtime libraries)
  kernel-VERSION/      Debian's linux-image package, extracted (vmlinuz + modules, depmod run)
  suite-build/         meson build of the suite for the guest (prefix /usr, no sanitizers)
  usr-KEY/             one /usr slot image: squashfs + dm-verity tree, its root hash, the kernel with
                       the hash embedded at byte 64, the release version
  disk-KEY.raw         the whole GPT disk (ESP, BIOS-BOOT, USR-A, USR-B, ROOT), sparse
  initramfs-KEY.img    the project's initramfs (see build-initramfs)

The modules here are used by tools/vm/build-image, tools/vm/build-initramfs, tools/vm/run-qemu and
tests/vm/.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

# debootstrap, depmod, sfdisk, mkfs.*, veritysetup live in sbin, which a user's PATH may lack.
for _d in ("/usr/sbin", "/sbin"):
    if _d not in os.environ.get("PATH", "").split(":"):
        os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":" + _d

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(TOOLS_DIR))

SUITE = "bookworm"
MIRROR = os.environ.get("SWITCHYARD_VM_MIRROR", "http://deb.debian.org/debian")
KERNEL_PACKAGE = "linux-image-amd64"

# What the guest's /usr needs besides minbase: systemd as init, udev, and the suite's runtime libraries.
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "udev", "kmod", "dbus",
    "libcurl4", "libjansson4", "libexpat1", "libprotobuf-c1", "libfdisk1", "libmount1",
    "libcryptsetup12", "libssl3", "libbz2-1.0", "liblzma5", "libzstd1", "libsystemd0",
]

# Kernel modules the guest gets (plus what they depend on). The full Debian set is ~390 MiB; a VM
# on virtio needs a few MiB of it, and a small /usr keeps payloads and boots fast under TCG.
GUEST_MODULES = [
    "virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng", "qemu_fw_cfg",
    "dm_mod", "dm_verity", "squashfs", "erofs", "ext4", "vfat", "nls_cp437", "nls_ascii", "nls_utf8",
    "nls_iso8859_1", "loop", "autofs4", "configfs", "efivarfs", "crc32c_generic", "sha256_ssse3",
    "serio_raw", "i2c_piix4", "af_packet", "overlay",
]
# What the initramfs loads, in this order after dependency expansion.
INITRD_MODULES = [
    "virtio_pci", "virtio_blk", "dm_mod", "dm_verity", "squashfs", "crc32c_generic", "ext4",
    "nls_cp437", "nls_ascii", "vfat",
]

USR_TYPE = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6"
ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
BIOS_TYPE = "21686148-6449-6e6f-744e-656564454649"
ROOT_TYPE = "3884dd41-8582-4404-b9a8-e9b84f2df50e"
USR_A_PARTUUID = "7130c94a-213a-4e5a-8e26-6cce9662f132"
USR_B_PARTUUID = "e03dd35c-7c2d-4a47-b3fe-27f15780a57c"
DISK_GUID = "00000000-0000-0000-0000-000000000001"

MIB = 1024 * 1024
ESP_SIZE = 64 * MIB
BIOS_SIZE = 2 * MIB
SLOT_SIZE = 512 * MIB
ROOT_SIZE = 384 * MIB
# Partition numbers as in Flatcar's disk layout.
PART_ESP, PART_BIOS, PART_USR_A, PART_USR_B, PART_ROOT = 1, 2, 3, 4, 9

GUEST_SERVER = "10.0.2.100:8080"  # QEMU guestfwd to the host's test server on 127.0.0.1
MACHINE_ID = "5377697463687961726456d50726f6f"  # fixed so the Omaha machineid is stable

BUILDER_VERSION = "7"  # bump only when every stage must be rebuilt (it keys the debootstrap too)
ROOT_VERSION = "2"  # bump when the ROOT tree (build_root_tree) changes


def log(msg):
    print(f"[vm] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def cache_dir():
    d = os.environ.get("SWITCHYARD_VM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "switchyard-vm")
    os.makedirs(d, exist_ok=True)
    return d


def key_of(*parts):
    h = hashlib.sha256()
    h.update(BUILDER_VERSION.encode())
    for p in parts:
        h.update(json.dumps(p, sort_keys=True).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def tree_hash(root):
    """Hash of the names, modes, link targets and contents of every file below root."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            h.update(f"{rel}\0{st.st_mode}\0".encode())
            if os.path.islink(p):
                h.update(os.readlink(p).encode())
            else:
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
    return h.hexdigest()


def file_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def cache_lock():
    """Serialises builds into the cache between processes (parallel pytest runs share it)."""
    import fcntl
    with open(os.path.join(cache_dir(), ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def building(final):
    """Yields a temporary path next to final; renames it into place when the block succeeds."""
    tmp = f"{final}.{os.getpid()}.tmp"
    if os.path.isdir(tmp):
        shutil.rmtree(tmp)
    elif os.path.exists(tmp):
        os.unlink(tmp)
    try:
        yield tmp
        os.rename(tmp, final)
    except BaseException:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- inputs ----

def kernel_version():
    """The linux-image-*-amd64 package linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64."""
    out = run(["apt-cache", "depends", KERNEL_PACKAGE], capture_output=True, text=True).stdout
    m = re.search(r"Depends:\s*(linux-image-\S+-amd64)", out)
    if not m:
        raise RuntimeError(f"apt-cache knows no {KERNEL_PACKAGE}; run apt-get update")
    pkg = m.group(1)
    pol = run(["apt-cache", "policy", pkg], capture_output=True, text=True).stdout
    m2 = re.search(r"Candidate:\s*(\S+)", pol)
    return pkg, (m2.group(1) if m2 else "")


def build_base():
    """debootstrap minbase + BASE_PACKAGES, cached."""
    cache = cache_dir()
    key = key_of("base", SUITE, MIRROR, sorted(BASE_PACKAGES))
    final = os.path.join(cache, f"base-{key}")
    if os.path.isdir(final):
        return final
    debs = os.path.join(cache, "debs")
    os.makedirs(debs, exist_ok=True)
    log(f"debootstrap {SUITE} (minbase + {len(BASE_PACKAGES)} packages) into {final}")
    with building(final) as tmp:
        run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
             f"--cache-dir={debs}", SUITE, tmp, MIRROR], stdout=subprocess.DEVNULL)
        for junk in ["var/cache/apt/archives", "var/lib/apt/lists"]:
            p = os.path.join(tmp, junk)
            if os.path.isdir(p):
                for n in os.listdir(p):
                    q = os.path.join(p, n)
                    if os.path.isfile(q):
                        os.unlink(q)
    return final


def build_kernel():
    """Debian's kernel package, extracted, modules reduced to GUEST_MODULES' closure, depmod run."""
    cache = cache_dir()
    pkg, ver = kernel_version()
    kver = pkg[len("linux-image-"):]
    key = key_of("kernel", pkg, ver, sorted(GUEST_MODULES))
    final = os.path.join(cache, f"kernel-{kver}-{key}")
    if os.path.isdir(final):
        return final
    log(f"fetching {pkg} {ver}")
    with building(final) as tmp:
        os.makedirs(tmp)
        dl = os.path.join(tmp, "dl")
        os.makedirs(dl)
        run(["apt-get", "download", f"{pkg}={ver}" if ver else pkg], cwd=dl,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deb = [f for f in os.listdir(dl) if f.endswith(".deb")][0]
        full = os.path.join(tmp, "full")
        run(["dpkg-deb", "-x", os.path.join(dl, deb), full])
        shutil.rmtree(dl)
        moddir = os.path.join(full, "lib/modules", kver)
        run(["depmod", "-b", full, kver])
        deps = parse_modules_dep(moddir)
        keep = module_closure(deps, GUEST_MODULES)
        out = os.path.join(tmp, "tree")
        outmod = os.path.join(out, "usr/lib/modules", kver)
        for rel in keep:
            dst = os.path.join(outmod, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(moddir, rel), dst)
        for f in ["modules.order", "modules.builtin", "modules.builtin.modinfo"]:
            if os.path.exists(os.path.join(moddir, f)):
                shutil.copy2(os.path.join(moddir, f), outmod)
        # depmod wants /lib/modules; a merged-usr tree has it as a symlink.
        os.symlink("usr/lib", os.path.join(out, "lib"))
        run(["depmod", "-b", out, kver])
        os.unlink(os.path.join(out, "lib"))
        os.makedirs(os.path.join(out, "boot"))
        shutil.copy2(os.path.join(full, "boot", f"vmlinuz-{kver}"), os.path.join(out, "boot/vmlinuz"))
        shutil.copy2(os.path.join(full, "boot", f"config-{kver}"), os.path.join(out, "boot/config"))
        shutil.rmtree(full)
        with open(os.path.join(tmp, "version"), "w") as f:
            f.write(kver + "\n")
    return final


def kernel_info(kdir):
    with open(os.path.join(kdir, "version")) as f:
        kver = f.read().strip()
    return {
        "version": kver,
        "vmlinuz": os.path.join(kdir, "tree/boot/vmlinuz"),
        "modules": os.path.join(kdir, "tree/usr/lib/modules", kver),
        "tree": os.path.join(kdir, "tree"),
    }


def parse_modules_dep(moddir):
    """{name: (relpath, [dep relpaths])} from modules.dep."""
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            mod, _, rest = line.partition(":")
            name = os.path.basename(mod).split(".ko")[0].replace("-", "_")
            deps[name] = (mod.strip(), rest.split())
    return deps


def module_closure(deps, roots):
    """Relative paths of roots and everything they depend on, dependencies first."""
    byrel = {v[0]: v for v in deps.values()}
    order, seen = [], set()

    def visit(rel):
        if rel in seen:
            return
        seen.add(rel)
        for d in byrel[rel][1]:
            visit(d)
        order.append(rel)

    for r in roots:
        n = r.replace("-", "_")
        if n in deps:
            visit(deps[n][0])
        # else: built into the kernel (or absent); nothing to load
    return order


# ---- the suite ----

def build_suite(source_dir=None):
    """Builds the suite for the guest (prefix /usr, no sanitizers) and installs it into a tree.

    The source is this checkout, or $SWITCHYARD_VM_SOURCE (another checkout of the suite).

    Returns (destdir, hash of the installed tree)."""
    source_dir = source_dir or os.environ.get("SWITCHYARD_VM_SOURCE") or SOURCE_DIR
    cache = cache_dir()
    bdir = os.path.join(cache, "suite-build-" + hashlib.sha256(source_dir.encode()).hexdigest()[:8])
    if not os.path.exists(os.path.join(bdir, "build.ninja")):
        if os.path.isdir(bdir):
            shutil.rmtree(bdir)
        run(["meson", "setup", bdir, source_dir, "--prefix=/usr", "--sysconfdir=/etc",
             "--buildtype=release", "-Dtests=false", "-Dsanitizers=false", "-Dwerror=false"],
            stdout=subprocess.DEVNULL)
    r = run(["ninja", "-C", bdir], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError("building the suite for the guest failed:\n" + r.stdout[-4000:] + r.stderr[-2000:])
    dest = bdir + "-install"
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    run(["meson", "install", "-C", bdir, "--destdir", dest, "--quiet"], stdout=subprocess.DEVNULL)
    return dest, tree_hash(dest)


def suite_programs(destdir):
    return sorted(os.listdir(os.path.join(destdir, "usr/bin"))) if os.path.isdir(
        os.path.join(destdir, "usr/bin")) else []


# ---- payload signing keys (test keys, made once per cache) ----

def test_keys():
    """(private key, public key) PEM paths of the VM proof's payload signing key."""
    d = os.path.join(cache_dir(), "keys")
    priv, pub = os.path.join(d, "payload-key.pem"), os.path.join(d, "payload-key.pub.pem")
    if not os.path.exists(pub):
        with building(d) as tmp:
            os.makedirs(tmp)
            run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", os.path.join(tmp, "payload-key.pem")], stderr=subprocess.DEVNULL)
            run(["openssl", "pkey", "-in", os.path.join(tmp, "payload-key.pem"), "-pubout",
                 "-out", os.path.join(tmp, "payload-key.pub.pem")])
    return priv, pub


def build_payload(usr_info, suite_build):
    """Version's full update payload (CrAU) made by the suite's own `payload-writer generate` from the
    /usr image (filesystem + verity tree) with the kernel procedure, signed with the test key."""
    out = os.path.join(usr_info["dir"], "payload.bin")
    if os.path.exists(out):
        return out
    pw = os.path.join(suite_build, "src/payload-writer/payload-writer")
    if not os.path.exists(pw):
        raise RuntimeError("this build of the suite has no payload-writer")
    priv, _ = test_keys()
    log(f"generating the update payload for {usr_info['version']}")
    with building(out) as tmp:
        run([pw, "generate", f"--image={usr_info['image']}", f"--kernel={usr_info['kernel']}",
             f"--key={priv}", "--compress=bz2", f"--output={tmp}"], stdout=subprocess.DEVNULL)
    return out


# ---- the /usr slot image ----

def merge_tree(src, dst):
    """cp -a src/. dst/ (keeps symlinks, ownership, modes); nothing when src does not exist."""
    if not os.path.isdir(src):
        return
    run(["cp", "-a", "--no-preserve=links", f"{src}/.", dst])


def squashfs_size(path):
    with open(path, "rb") as f:
        sb = f.read(96)
    if sb[:4] != b"hsqs":
        raise RuntimeError(f"{path}: not a squashfs image")
    return struct.unpack_from("<Q", sb, 40)[0]


def veritysetup_format(img, data_size):
    hash_offset = (data_size + 4095) // 4096 * 4096
    out = run(["veritysetup", "format", "--hash=sha256", "--data-block-size=4096",
               "--hash-block-size=4096", f"--data-blocks={hash_offset // 4096}",
               f"--hash-offset={hash_offset}", img, img], capture_output=True, text=True).stdout
    m = re.search(r"Root hash:\s*([0-9a-f]{64})", out)
    if not m:
        raise RuntimeError("veritysetup format printed no root hash:\n" + out)
    return m.group(1), hash_offset


def embed_root_hash(kernel, root_hash):
    """Writes the 64 hex characters at byte 64 of the amd64 kernel image (spec §7)."""
    assert re.fullmatch(r"[0-9a-f]{64}", root_hash)
    with open(kernel, "r+b") as f:
        f.seek(64)
        f.write(root_hash.encode())


def stage_usr_tree(base, kdir, suite_dest, version, extra_usr_files=None):
    """The merged /usr tree for one release: base + kernel modules + the suite + release files."""
    stage = tempfile.mkdtemp(prefix="usr-stage-", dir=cache_dir())
    usr = os.path.join(stage, "usr")
    os.makedirs(usr)
    merge_tree(os.path.join(base, "usr"), usr)
    merge_tree(os.path.join(kernel_info(kdir)["tree"], "usr"), usr)
    merge_tree(os.path.join(suite_dest, "usr"), usr)
    # Things systemd would otherwise try to put into /usr at boot.
    os.makedirs(os.path.join(usr, "share/flatcar"), exist_ok=True)
    with open(os.path.join(usr, "share/flatcar/release"), "w") as f:
        f.write(f"FLATCAR_RELEASE_VERSION={version}\nFLATCAR_RELEASE_BOARD=amd64-usr\n"
                "FLATCAR_RELEASE_APPID={e96281a6-d1af-4bde-9a0a-97b76e56dc57}\n")
    with open(os.path.join(usr, "lib/os-release"), "w") as f:
        f.write('NAME="switchyard VM proof"\nID=switchyard-vm\nID_LIKE=debian flatcar\n'
                f'VERSION={version}\nVERSION_ID={version}\nPRETTY_NAME="switchyard VM proof {version}"\n')
    # Trusted payload key, where Flatcar keeps it.
    with open(test_keys()[1]) as f:
        extra_usr_files = dict(extra_usr_files or {})
        extra_usr_files.setdefault("share/update_engine/update-payload-key.pub.pem", f.read())
    for rel, content in (extra_usr_files or {}).items():
        p = os.path.join(usr, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(content, (list, tuple)) and content[0] == "symlink":
            os.symlink(content[1], p)
            continue
        with open(p, "w") as f:
            f.write(content)
    return stage


def build_usr(base, kdir, suite_dest, suite_hash, version, extra_usr_files=None):
    """A /usr slot image for one release version, with its verity tree and a kernel carrying its hash.

    Returns a dict: image, root_hash, hash_offset, size, kernel, version."""
    cache = cache_dir()
    with open(test_keys()[1]) as f:
        pubkey = f.read()
    key = key_of("usr", os.path.basename(base), os.path.basename(kdir), suite_hash, version,
                 extra_usr_files or {}, pubkey)
    final = os.path.join(cache, f"usr-{version}-{key}")
    if not os.path.isdir(final):
        log(f"building /usr image for version {version}")
        stage = stage_usr_tree(base, kdir, suite_dest, version, extra_usr_files)
        try:
            with building(final) as tmp:
                os.makedirs(tmp)
                img = os.path.join(tmp, "usr.img")
                run(["mksquashfs", os.path.join(stage, "usr"), img, "-comp", "zstd", "-Xcompression-level", "6", "-b", "256K",
                     "-noappend", "-no-progress", "-quiet", "-all-root", "-mkfs-time", "0",
                     "-all-time", "0"], stdout=subprocess.DEVNULL)
                fs_size = squashfs_size(img)
                root_hash, hash_offset = veritysetup_format(img, fs_size)
                size = os.path.getsize(img)
                if size > SLOT_SIZE:
                    raise RuntimeError(f"/usr image is {size} bytes, more than the {SLOT_SIZE}-byte slot")
                kernel = os.path.join(tmp, "vmlinuz")
                shutil.copy2(kernel_info(kdir)["vmlinuz"], kernel)
                embed_root_hash(kernel, root_hash)
                with open(os.path.join(tmp, "info.json"), "w") as f:
                    json.dump({"root_hash": root_hash, "hash_offset": hash_offset, "size": size,
                               "fs_size": fs_size, "version": version}, f)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    with open(os.path.join(final, "info.json")) as f:
        info = json.load(f)
    info.update(image=os.path.join(final, "usr.img"), kernel=os.path.join(final, "vmlinuz"), dir=final)
    return info


# ---- the ROOT filesystem ----

GUEST_AGENT = r"""#!/bin/bash
# Test instrumentation (part of the VM proof's ROOT, not of the product's /usr): runs commands the
# host sends over a virtio-serial port and answers with their output and exit status.
port=/dev/virtio-ports/switchyard.agent
for i in $(seq 100); do [ -e "$port" ] && break; sleep 0.1; done
exec 3<>"$port"
echo "__AGENT_READY__" >&3
while IFS= read -r line <&3; do
    out=$(timeout 600 bash -c "$line" 2>&1 </dev/null)
    rc=$?
    printf '%s\n__AGENT_END__ %d\n' "$out" "$rc" >&3
done
"""

AGENT_UNIT = """[Unit]
Description=switchyard VM proof: host command agent (test instrumentation)
DefaultDependencies=no
After=systemd-udevd.service dev-virtio\\x2dports-switchyard.agent.device
Wants=dev-virtio\\x2dports-switchyard.agent.device

[Service]
ExecStart=/etc/switchyard-vm/agent
Restart=always
RestartSec=1

[Install]
WantedBy=sysinit.target
"""

REPORT_UNIT = """[Unit]
Description=switchyard VM proof: report the boot on the serial console (test instrumentation)
After=boot-complete.target slot-manager-mark-good.service multi-user.target
Requires=boot-complete.target

[Service]
Type=oneshot
# The kernel log goes to the serial console (console=ttyS0), whoever holds the tty.
ExecStart=/bin/sh -c 'echo "SWITCHYARD-VM: boot-complete version=$(. /usr/share/flatcar/release; echo $FLATCAR_RELEASE_VERSION) usr=$(findmnt -fno SOURCE /usr)" >/dev/kmsg'

[Install]
WantedBy=multi-user.target
"""

NETWORK = """[Match]
Name=en* eth*

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
"""


def build_root_tree(base, suite_dest, stage):
    """The ROOT filesystem: /etc and /var from the base system, top-level symlinks into /usr."""
    for entry in os.listdir(base):
        src = os.path.join(base, entry)
        if entry == "usr":
            os.makedirs(os.path.join(stage, "usr"))
            continue
        if entry in ("proc", "sys", "dev", "run", "tmp", "boot", "mnt", "media", "srv", "opt", "home"):
            os.makedirs(os.path.join(stage, entry))
            continue
        if os.path.islink(src):
            os.symlink(os.readlink(src), os.path.join(stage, entry))
            continue
        run(["cp", "-a", src, os.path.join(stage, entry)])
    os.chmod(os.path.join(stage, "tmp"), 0o1777)
    os.chmod(os.path.join(stage, "root"), 0o700)
    etc = os.path.join(stage, "etc")
    # The suite's /etc parts (tmpfiles, config defaults) if it installs any.
    if os.path.isdir(os.path.join(suite_dest, "etc")):
        merge_tree(os.path.join(suite_dest, "etc"), etc)

    def write(rel, content, mode=0o644):
        p = os.path.join(stage, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if os.path.lexists(p):
            os.unlink(p)
        with open(p, "w") as f:
            f.write(content)
        os.chmod(p, mode)

    write("etc/machine-id", MACHINE_ID + "\n", 0o444)
    write("etc/hostname", "switchyard-vm\n")
    write("etc/fstab", "PARTLABEL=EFI-SYSTEM /boot vfat defaults,umask=0077 0 2\n")
    write("etc/systemd/network/10-wired.network", NETWORK)
    write("etc/switchyard-vm/agent", GUEST_AGENT, 0o755)
    write("etc/systemd/system/switchyard-vm-agent.service", AGENT_UNIT)
    write("etc/systemd/system/switchyard-vm-report.service", REPORT_UNIT)
    write("etc/switchyard/slot-manager.conf", "ESP=/boot\n")
    # The update server: the host's test server, reached through QEMU's guestfwd.
    write("etc/flatcar/update.conf", f"SERVER=http://{GUEST_SERVER}/v1/update/\nGROUP=stable\n")
    # Check soon after the daemon starts (update_engine waits 7-17 minutes), then every minute.
    write("etc/switchyard/omaha-client.conf", "FIRST_CHECK_DELAY_SEC=3\nFIRST_CHECK_FUZZ_SEC=0\n"
          "CHECK_INTERVAL_SEC=60\nCHECK_FUZZ_SEC=0\nMIN_CHECK_INTERVAL_SEC=20\nMIN_CHECK_INTERVAL_FUZZ_SEC=0\n"
          "RETRY_DELAY_SEC=5\n")
    # Root without a password on the serial console, for looking into a failed scenario by hand.
    shadow = os.path.join(etc, "shadow")
    with open(shadow) as f:
        lines = f.read().splitlines()
    with open(shadow, "w") as f:
        for ln in lines:
            if ln.startswith("root:"):
                parts = ln.split(":")
                parts[1] = ""
                ln = ":".join(parts)
            f.write(ln + "\n")
    # Units: the suite's own (everything it installs with an [Install] section) and the test agent.
    unitdir = os.path.join(suite_dest, "usr/lib/systemd/system")
    units = []
    if os.path.isdir(unitdir):
        for u in sorted(os.listdir(unitdir)):
            with open(os.path.join(unitdir, u)) as f:
                if "[Install]" in f.read() and "@" not in u:
                    units.append(u)
    enable_units(stage, [unitdir, os.path.join(base, "usr/lib/systemd/system")], units + ["switchyard-vm-agent.service", "switchyard-vm-report.service",
                                          "systemd-networkd.service"])
    return units


def enable_units(root, unitdirs, units):
    """What `systemctl enable` would do, from the units' [Install] WantedBy=/RequiredBy=/Also=.

    unitdirs: where the /usr units are found at build time (the suite's install tree, the base)."""
    search = [os.path.join(root, "etc/systemd/system")] + unitdirs
    done = set()

    def find(u):
        for d in search:
            if os.path.exists(os.path.join(d, u)):
                return os.path.join(d, u)
        return None

    def enable(u):
        if u in done:
            return
        done.add(u)
        path = find(u)
        if path is None:
            return  # a base-system unit: systemctl --root below handles it
        section = None
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line
                    continue
                if section != "[Install]" or "=" not in line:
                    continue
                k, v = (s.strip() for s in line.split("=", 1))
                for target in v.split():
                    if k in ("WantedBy", "RequiredBy"):
                        d = os.path.join(root, "etc/systemd/system", target + (".wants" if k == "WantedBy" else ".requires"))
                        os.makedirs(d, exist_ok=True)
                        link = os.path.join(d, u)
                        if not os.path.lexists(link):
                            os.symlink(path[len(root):] if path.startswith(root + "/") else f"/usr/lib/systemd/system/{u}", link)
                    elif k == "Also":
                        enable(target)

    for u in units:
        if not find(u):
            raise RuntimeError(f"cannot enable {u}: no such unit in {search}")
        enable(u)


def ext4_image(tree, path, size, label):
    with open(path, "wb") as f:
        f.truncate(size)
    run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", tree, "-E", "root_owner=0:0",
         "-U", "clear", "-T", "default", path], stdout=subprocess.DEVNULL)


def vfat_image(path, size, files):
    with open(path, "wb") as f:
        f.truncate(size)
    run(["mkfs.vfat", "-n", "EFI-SYSTEM", "-F", "32", "-i", "5377ee01", path], stdout=subprocess.DEVNULL)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    dirs = sorted({os.path.dirname(d) for d in files})
    for d in dirs:
        acc = ""
        for part in d.split("/"):
            acc = f"{acc}/{part}" if acc else part
            run(["mmd", "-D", "s", "-i", path, f"::{acc}"], env=env, stderr=subprocess.DEVNULL, check=False)
    for dst, src in files.items():
        run(["mcopy", "-o", "-i", path, src, f"::{dst}"], env=env)


def partition_offsets():
    """(start, size) in bytes per partition number, 1 MiB aligned."""
    layout = [(PART_ESP, ESP_SIZE), (PART_BIOS, BIOS_SIZE), (PART_USR_A, SLOT_SIZE),
              (PART_USR_B, SLOT_SIZE), (PART_ROOT, ROOT_SIZE)]
    off, res = MIB, {}
    for n, size in layout:
        res[n] = (off, size)
        off += size
    return res, off + MIB


def build_disk(base, kdir, suite_dest, suite_hash, usr_a):
    """The whole disk: USR-A holds usr_a (priority 1, successful), USR-B empty, ROOT from the base."""
    cache = cache_dir()
    key = key_of("disk", ROOT_VERSION, os.path.basename(base), os.path.basename(kdir), suite_hash, usr_a["root_hash"],
                 partition_offsets()[1])
    final = os.path.join(cache, f"disk-{key}.raw")
    if os.path.exists(final):
        return final
    log("building the disk image")
    parts, total = partition_offsets()
    work = tempfile.mkdtemp(prefix="disk-", dir=cache)
    try:
        with building(final) as tmp:
            with open(tmp, "wb") as f:
                f.truncate(total)
            sector = 512
            script = ["label: gpt", f"label-id: {DISK_GUID}", "unit: sectors", "first-lba: 2048", ""]

            def line(n, name, typ, uuid=None, attrs=None):
                start, size = parts[n]
                s = f"{tmp}{n} : start={start // sector}, size={size // sector}, type={typ}, name=\"{name}\""
                if uuid:
                    s += f", uuid={uuid}"
                if attrs:
                    s += f", attrs=\"{attrs}\""
                return s

            script += [
                line(PART_ESP, "EFI-SYSTEM", ESP_TYPE),
                line(PART_BIOS, "BIOS-BOOT", BIOS_TYPE),
                # USR-A: priority 1 (bit 48), successful (bit 56), tries 0; USR-B: all zero (spec §6.2).
                line(PART_USR_A, "USR-A", USR_TYPE, USR_A_PARTUUID, "GUID:48,56"),
                line(PART_USR_B, "USR-B", USR_TYPE, USR_B_PARTUUID),
                line(PART_ROOT, "ROOT", ROOT_TYPE),
            ]
            run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", tmp], input="\n".join(script) + "\n",
                text=True, stdout=subprocess.DEVNULL)

            def put(n, src):
                start, size = parts[n]
                if os.path.getsize(src) > size:
                    raise RuntimeError(f"{src} does not fit partition {n}")
                run(["dd", f"if={src}", f"of={tmp}", "bs=1M", f"seek={start // MIB}", "conv=notrunc,sparse",
                     "status=none"])

            esp = os.path.join(work, "esp.img")
            vfat_image(esp, ESP_SIZE, {"flatcar/vmlinuz-a": usr_a["kernel"]})
            put(PART_ESP, esp)
            put(PART_USR_A, usr_a["image"])
            tree = os.path.join(work, "root")
            os.makedirs(tree)
            build_root_tree(base, suite_dest, tree)
            root = os.path.join(work, "root.img")
            ext4_image(tree, root, ROOT_SIZE, "ROOT")
            put(PART_ROOT, root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def build_all(versions=("1.0.0",), extra=None):
    """Builds (or finds cached) everything: returns dict with kernel, initramfs, disk, usr images."""
    with cache_lock():
        return _build_all(versions, extra)


def _build_all(versions, extra):
    base = build_base()
    kdir = build_kernel()
    suite_dest, suite_hash = build_suite()
    suite_build = suite_dest[:-len("-install")]
    usrs = {}
    for v in versions:
        usrs[v] = build_usr(base, kdir, suite_dest, suite_hash, v, (extra or {}).get(v))
    disk = build_disk(base, kdir, suite_dest, suite_hash, usrs[versions[0]])
    import initramfs  # noqa: E402 (same directory)
    initrd = initramfs.build_initramfs(kdir, suite_dest)
    return {"kernel": kernel_info(kdir), "suite_build": suite_build, "vmlinuz": kernel_info(kdir)["vmlinuz"], "initramfs": initrd,
            "disk": disk, "usr": usrs, "suite": suite_dest, "kdir": kdir, "suite_hash": suite_hash, "base": base}
