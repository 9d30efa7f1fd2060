# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs the VM proof's guest under QEMU: direct kernel boot with the project's initramfs, serial
console to a log file, a command agent on a virtio-serial port, user networking restricted to one
forwarded port on the host's loopback. A guest reboot ends the QEMU process (-no-reboot); boot()
starts the next one on the same disk, as a machine's firmware would."""

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import vmlib

QEMU = "qemu-system-x86_64"
SERVER_IP = "10.0.2.100"  # the guest's name for the host's test server (guestfwd)
SERVER_PORT = 8080
RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay")  # one per guest connection

_accel_cache = {}


def qemu_available():
    if not shutil.which(QEMU):
        return f"{QEMU} is not installed (Debian package qemu-system-x86)"
    return None


def probe_accel(vmlinuz, timeout=20):
    """'kvm' if /dev/kvm can boot the guest kernel to a busybox /init, else 'tcg'.

    On some machines /dev/kvm exists and opens but a stock kernel hangs under it, so this boots one."""
    forced = os.environ.get("SWITCHYARD_VM_ACCEL")
    if forced:
        return forced
    if vmlinuz in _accel_cache:
        return _accel_cache[vmlinuz]
    result = "tcg"
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        busybox = "/bin/busybox"
        with tempfile.TemporaryDirectory() as d:
            root = os.path.join(d, "root")
            os.makedirs(os.path.join(root, "bin"))
            shutil.copy2(busybox, os.path.join(root, "bin/busybox"))
            with open(os.path.join(root, "init"), "w") as f:
                f.write("#!/bin/busybox sh\n/bin/busybox echo SWITCHYARD-KVM-PROBE-OK\n"
                        "/bin/busybox poweroff -f\n")
            os.chmod(os.path.join(root, "init"), 0o755)
            img = os.path.join(d, "probe.cpio")
            subprocess.run("find . | cpio -o -H newc --quiet -R 0:0 > ../probe.cpio", shell=True,
                           cwd=root, check=True)
            try:
                out = subprocess.run(
                    [QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none",
                     "-serial", "stdio", "-monitor", "none", "-nic", "none", "-no-reboot",
                     "-kernel", vmlinuz, "-initrd", img, "-append", "console=ttyS0 panic=-1 quiet"],
                    capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL).stdout
                if b"SWITCHYARD-KVM-PROBE-OK" in out:
                    result = "kvm"
            except subprocess.TimeoutExpired:
                pass
    vmlib.log(f"accelerator: {result}")
    _accel_cache[vmlinuz] = result
    return result


class AgentError(Exception):
    pass


class Guest:
    """One VM: a disk copy, its console log, and the QEMU process of the current boot."""

    def __init__(self, workdir, disk_src, vmlinuz, initramfs, server_port=None, append="",
                 memory=1024, cpus=2, accel=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.disk = os.path.join(workdir, "disk.raw")
        subprocess.run(["cp", "--sparse=always", "--reflink=auto", disk_src, self.disk], check=True)
        self.vmlinuz = vmlinuz
        self.initramfs = initramfs
        self.server_port = server_port
        self.append = append
        self.memory = memory
        self.cpus = cpus
        self.accel = accel or probe_accel(vmlinuz)
        self.console = os.path.join(workdir, "console.log")
        self.agent_path = os.path.join(workdir, "agent.sock")
        self.proc = None
        self.boots = 0
        self.sock = None
        self.buf = b""
        self.boot_console_offset = 0

    # ---- process ----

    def command(self):
        cmd = [QEMU, "-machine", "pc", "-m", str(self.memory), "-smp", str(self.cpus),
               "-display", "none", "-monitor", "none", "-no-reboot",
               "-chardev", f"file,id=con,path={self.console},append=on", "-serial", "chardev:con",
               "-drive", f"file={self.disk},if=virtio,format=raw,cache=writeback,discard=unmap",
               "-device", "virtio-rng-pci",
               "-device", "virtio-serial-pci",
               "-chardev", f"socket,id=agent,path={self.agent_path},server=on,wait=off",
               "-device", "virtserialport,chardev=agent,name=switchyard.agent",
               "-kernel", self.vmlinuz, "-initrd", self.initramfs,
               "-append", ("console=ttyS0,115200 root=LABEL=ROOT rootflags=rw mount.usr=/dev/mapper/usr "
                           "mount.usrflags=ro panic=5 systemd.show_status=1 systemd.journald.forward_to_console=0 "
                           + self.append).strip()]
        if self.accel == "kvm":
            cmd += ["-accel", "kvm", "-cpu", "host"]
        else:
            cmd += ["-accel", "tcg,thread=multi", "-cpu", "max"]
        if self.server_port:
            # restrict=on: the guest reaches nothing but the one forwarded address.
            cmd += ["-nic", f"user,model=virtio-net-pci,restrict=on,"
                            f"guestfwd=tcp:{SERVER_IP}:{SERVER_PORT}-cmd:{RELAY} 127.0.0.1 {self.server_port}"]
        else:
            cmd += ["-nic", "none"]
        return cmd

    def boot(self):
        """Starts QEMU (one boot of the machine)."""
        if self.running():
            raise RuntimeError("the guest is still running")
        self.close_agent()
        if os.path.exists(self.agent_path):
            os.unlink(self.agent_path)
        self.boots += 1
        self.boot_console_offset = os.path.getsize(self.console) if os.path.exists(self.console) else 0
        with open(self.console, "ab") as f:
            f.write(f"\n===== switchyard VM proof: boot {self.boots} ({self.accel}) =====\n".encode())
        self.boot_console_offset += 0
        self.qemu_log = open(os.path.join(self.workdir, "qemu.log"), "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=self.qemu_log,
                                     stderr=subprocess.STDOUT)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout):
        """Waits for QEMU to end (the guest rebooted, powered off or panicked)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the guest did not stop within {timeout} s") from None
        finally:
            self.close_agent()

    def kill(self):
        """Power cut: SIGKILL QEMU, nothing flushed by the guest."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.close_agent()

    def shutdown(self):
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.close_agent()

    # ---- console ----

    def console_text(self, this_boot=True):
        if not os.path.exists(self.console):
            return ""
        with open(self.console, "rb") as f:
            if this_boot:
                f.seek(self.boot_console_offset)
            return f.read().decode("utf-8", "replace")

    def wait_console(self, pattern, timeout, this_boot=True):
        """Waits until pattern (regex) shows on this boot's console; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.console_text(this_boot))
            if m:
                return m
            if not self.running():
                m = rx.search(self.console_text(this_boot))
                if m:
                    return m
                raise RuntimeError(f"QEMU ended (exit {self.proc.returncode}) before the console showed "
                                   f"{pattern!r}; console: {self.console}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern!r} on the console within {timeout} s; console: {self.console}")
            time.sleep(0.5)

    # ---- agent ----

    def close_agent(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        self.buf = b""

    def _records(self, timeout):
        """Reads one agent answer: (output, exit status)."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(rb"(?s)^(.*?)\n?__AGENT_END__ (\d+)\n", self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m.group(1).decode("utf-8", "replace"), int(m.group(2))
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the guest agent did not answer in time")
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if not self.running():
                    raise AgentError("QEMU ended while waiting for the guest agent") from None
                continue
            if not data:
                raise AgentError("the guest agent's port closed")
            self.buf += data.replace(b"__AGENT_READY__\n", b"")

    def connect_agent(self, timeout):
        """Waits until the guest's agent answers (i.e. systemd started it)."""
        deadline = time.monotonic() + timeout
        while not self.sock:
            if not self.running():
                raise AgentError(f"QEMU ended before the agent came up; console: {self.console}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.agent_path)
                self.sock = s
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise TimeoutError("no agent socket") from None
                time.sleep(0.2)
        while True:
            nonce = uuid.uuid4().hex
            self.sock.sendall(f"echo {nonce}\n".encode())
            try:
                while True:
                    out, rc = self._records(3)
                    if nonce in out:
                        return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the guest agent did not come up within {timeout} s; "
                                       f"console: {self.console}") from None

    def run(self, script, timeout=300, check=True):
        """Runs a bash script in the guest as root; returns (exit status, output)."""
        if not self.sock:
            self.connect_agent(timeout=240)
        b64 = base64.b64encode(script.encode()).decode()
        self.sock.sendall(f'eval "$(echo {b64} | base64 -d)"\n'.encode())
        out, rc = self._records(timeout)
        if check and rc != 0:
            raise AgentError(f"guest command failed ({rc}): {script}\n{out}")
        return rc, out

    def out(self, script, timeout=300):
        return self.run(script, timeout=timeout)[1]
