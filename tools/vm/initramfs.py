# SPDX-License-Identifier: LGPL-2.1-or-later
"""Builds the VM proof's initramfs: busybox, slot-manager, verity-check, veritysetup, a few kernel
modules and tools/vm/init, as a gzip-compressed newc cpio archive (cached by its inputs)."""

import os
import re
import shutil
import subprocess
import tempfile

import vmlib


def ldd_closure(binaries):
    libs = set()
    for b in binaries:
        out = subprocess.run(["ldd", b], capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
            if m:
                libs.add(m.group(1))
    return sorted(libs)


def find_veritysetup():
    for p in ("/usr/sbin/veritysetup", "/sbin/veritysetup"):
        if os.path.exists(p):
            return p
    raise RuntimeError("veritysetup not found: install cryptsetup-bin")


def find_busybox():
    p = "/bin/busybox"
    out = subprocess.run(["file", "-L", p], capture_output=True, text=True).stdout if shutil.which("file") else ""
    if not os.path.exists(p) or "dynamically" in out:
        raise RuntimeError("a static /bin/busybox is needed: install busybox-static")
    return p


def build_initramfs(kdir, suite_dest):
    kinfo = vmlib.kernel_info(kdir)
    suite_bins = [os.path.join(suite_dest, "usr/bin", b) for b in ("slot-manager", "verity-check")
                  if os.path.exists(os.path.join(suite_dest, "usr/bin", b))]
    bins = suite_bins + [find_veritysetup()]
    busybox = find_busybox()
    init = os.path.join(vmlib.TOOLS_DIR, "init")
    libs = ldd_closure(bins)
    inputs = [vmlib.file_hash(p) for p in bins + libs + [busybox, init]]
    key = vmlib.key_of("initramfs", os.path.basename(kdir), inputs, vmlib.INITRD_MODULES)
    final = os.path.join(vmlib.cache_dir(), f"initramfs-{key}.img")
    if os.path.exists(final):
        return final
    vmlib.log("building the initramfs (" + ", ".join(os.path.basename(b) for b in bins) + ")")
    stage = tempfile.mkdtemp(prefix="initrd-", dir=vmlib.cache_dir())
    try:
        for d in ("bin", "dev", "proc", "sys", "run", "esp", "sysroot", "tmp", "lib/modules", "etc"):
            os.makedirs(os.path.join(stage, d), exist_ok=True)
        shutil.copy2(busybox, os.path.join(stage, "bin/busybox"))
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True).stdout.split()
        for b in bins:
            shutil.copy2(b, os.path.join(stage, "bin", os.path.basename(b)))
        for a in applets:
            p = os.path.join(stage, "bin", a)
            if not os.path.lexists(p):
                os.symlink("busybox", p)
        for lib in libs:
            dst = os.path.join(stage, lib.lstrip("/"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(lib, dst)  # follows symlinks: the soname file gets the library itself
        # Only the kernel modules this script needs, in load order.
        deps = vmlib.parse_modules_dep(kinfo["modules"])
        order = vmlib.module_closure(deps, vmlib.INITRD_MODULES)
        for rel in order:
            dst = os.path.join(stage, "lib/modules", rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(kinfo["modules"], rel), dst)
        with open(os.path.join(stage, "lib/modules/load-order"), "w") as f:
            f.write("".join(r + "\n" for r in order))
        shutil.copy2(init, os.path.join(stage, "init"))
        os.chmod(os.path.join(stage, "init"), 0o755)
        with vmlib.building(final) as tmp:
            files = subprocess.run("find . -print0 | sort -z", shell=True, cwd=stage, capture_output=True,
                                   check=True).stdout
            with open(tmp, "wb") as out:
                cpio = subprocess.Popen(["cpio", "--null", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
                                        cwd=stage, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                gz = subprocess.Popen(["gzip", "-n", "-6"], stdin=cpio.stdout, stdout=out)
                cpio.stdout.close()
                cpio.stdin.write(files)
                cpio.stdin.close()
                if cpio.wait() != 0 or gz.wait() != 0:
                    raise RuntimeError("cpio/gzip failed")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return final
