"""A complete A/B update of a Flatcar-layout disk image through the real slot-manager, payload-writer and
verity-check, driven by omaha-client against the local Omaha server; then the reboot, the report of
the new version, resume of a cut download, and refusal of a payload that is not the announced one."""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest

from conftest import need_tool
from omaha_env import skip_unless_built, FAST_SCHEDULE, Daemon, make_root, state_dir
from omaha_server import OmahaServer

pytestmark = skip_unless_built(peers=True)

SLOT_MIB = 32
OLD, NEW = "4459.0.0", "4500.0.0"


def start_service(binary, tmp_path, name, *args):
    sock = tmp_path / f"{name}.sock"
    log = open(tmp_path / f"{name}.log", "w")
    p = subprocess.Popen([str(binary), *map(str, args), f"--listen={sock}", "varlink"], stdout=log,
                         stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while not sock.exists():
        if p.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{name} did not start: {(tmp_path / f'{name}.log').read_text()}")
        time.sleep(0.05)
    return p, sock


class Host:
    """A disk image booted from USR-A at OLD, its ESP as a directory, the three services, the server."""

    def __init__(self, program, tmp_path, payload_cut=None):
        import diskimage
        need_tool("sfdisk")
        need_tool("mkfs.ext4")
        self.tmp = tmp_path
        self.program = program
        self.image = diskimage.make_flatcar_image(tmp_path / "disk.img", slot_size_mib=SLOT_MIB, format_esp=False)
        self.esp = tmp_path / "esp"
        (self.esp / "flatcar").mkdir(parents=True)
        self.cmdline = tmp_path / "cmdline"
        self.cmdline.write_text(f"mount.usr=/dev/mapper/usr verity.usr=PARTUUID={self.image.usr_a.uuid}\n")
        self.build_update()
        self.procs = []

    def build_update(self):
        """A /usr image (ext4 + verity tree), a kernel carrying its root hash, a signed payload."""
        t = self.tmp
        self.key = t / "key.pem"
        self.pub = t / "key.pub.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(self.key), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(self.key), "-pubout", "-out", str(self.pub)], check=True,
                       capture_output=True)
        self.usr, self.kernel, self.payload = self.make_payload(NEW)

    def make_payload(self, version, name="update"):
        t = self.tmp / f"{name}-{version}"
        t.mkdir()
        usr = t / "usr.img"
        with open(usr, "wb") as f:
            f.truncate(12 * 1024 * 1024)
        src = t / "usr-src"
        (src / "share/flatcar").mkdir(parents=True)
        (src / "share/flatcar/release").write_text(f"FLATCAR_RELEASE_VERSION={version}\n")
        (src / "lib").mkdir()
        (src / "lib/data.bin").write_bytes(os.urandom(3 * 1024 * 1024))
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(src), str(usr), "8M"], check=True, capture_output=True)
        kernel = t / "vmlinuz"
        kernel.write_bytes(os.urandom(512 * 1024))
        r = subprocess.run([str(self.program("verity-check")), "format", str(usr), f"--embed-into={kernel}",
                            "--json", "--no-progress"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        payload = t / "flatcar_production_update.gz"
        r = subprocess.run([str(self.program("payload-writer")), "generate", f"--image={usr}", f"--kernel={kernel}",
                            f"--key={self.key}", f"--output={payload}", "--chunk-size=256K"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return usr, kernel, payload

    def start_services(self):
        p, self.slots_sock = start_service(self.program("slot-manager"), self.tmp, "slot-manager",
                                           f"--disk={self.image.path}", f"--esp={self.esp}",
                                           f"--cmdline={self.cmdline}")
        self.procs.append(p)
        p, self.pw_sock = start_service(self.program("payload-writer"), self.tmp, "payload-writer",
                                        f"--keys={self.pub}")
        self.procs.append(p)
        p, self.verity_sock = start_service(self.program("verity-check"), self.tmp, "verity-check")
        self.procs.append(p)

    def start_client(self, server, version=OLD, name="root", extra_conf=""):
        self.root = make_root(self.tmp / name, version=version, server=server.url,
                              switchyard_conf=FAST_SCHEDULE + extra_conf +
                              (f"CA_FILE={server.ca_file}\n" if server.ca_file else ""))
        self.daemon = Daemon(self.program("omaha-client"), self.root, self.tmp,
                             [f"--slots={self.slots_sock}", f"--payload-writer={self.pw_sock}",
                              f"--verity={self.verity_sock}"])
        return self.daemon

    def slot_status(self):
        r = subprocess.run([str(self.program("slot-manager")), f"--disk={self.image.path}", f"--esp={self.esp}",
                            f"--cmdline={self.cmdline}", "--json", "status"], capture_output=True, text=True,
                           check=True)
        return json.loads(r.stdout)

    def slot_bytes(self, slot, size):
        part = self.image.slot(slot)
        with open(self.image.path, "rb") as f:
            f.seek(part.offset)
            return f.read(size)

    def stop(self):
        for p in self.procs:
            p.terminate()
            p.wait(timeout=30)


@pytest.fixture
def host(program, tmp_path):
    h = Host(program, tmp_path)
    h.start_services()
    yield h
    h.stop()


def usr_a_digest(host):
    return hashlib.sha256(host.slot_bytes("a", SLOT_MIB * 1024 * 1024)).hexdigest()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_full_update_and_reboot(host, tls):
    a_before = usr_a_digest(host)
    with OmahaServer(payload=host.payload, version=NEW, tls=tls) as server:
        d = host.start_client(server)
        try:
            d.ctl("check", "--wait", timeout=180)
            st = d.status()
            assert st["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", d.logtext()
            assert st["new_version"] == NEW and st["new_size"] == host.payload.stat().st_size
        finally:
            assert d.stop() == 0
        events = server.events()
        assert events == [(3, 2, None, "0.0.0.0"), (13, 1, None, None), (14, 1, None, None), (3, 1, None, None)]
        assert all(r.status in (200, 206) for r in server.payload_requests)

    # The written slot holds the image, the kernel went to the ESP, B is next with one try, A untouched.
    usr = host.usr.read_bytes()
    assert host.slot_bytes("b", len(usr)) == usr
    assert (host.esp / "flatcar/vmlinuz-b").read_bytes() == host.kernel.read_bytes()
    assert usr_a_digest(host) == a_before
    s = host.slot_status()
    assert s["next"] == "b"
    b = [x for x in s["slots"] if x["slot"] == "b"][0]
    assert b["tries"] == 1 and b["successful"] is False and b["priority"] > 0
    sd = state_dir(host.root)
    assert (sd / "prefs/previous-version").read_text() == OLD
    assert (host.root / "run/reboot-required").exists()
    assert (host.root / "run/switchyard/omaha-client/update-completed").exists()

    # A restart of the daemon (not of the machine) keeps UPDATED_NEED_REBOOT.
    with OmahaServer(payload=host.payload, version=NEW) as server:
        (host.root / "etc/flatcar/update.conf").write_text(f"SERVER={server.url}\n")
        (host.root / "etc/switchyard/omaha-client.conf").write_text(FAST_SCHEDULE)
        d = Daemon(host.program("omaha-client"), host.root, host.tmp,
                   [f"--slots={host.slots_sock}", f"--payload-writer={host.pw_sock}", f"--verity={host.verity_sock}"])
        try:
            assert d.status()["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT"
            d.ctl("check", "--wait")
            # Asked again (no event: it was reported), the same version is not downloaded a second time.
            assert len(server.requests) == 1 and server.requests[0].updatecheck and not server.requests[0].events
            assert not server.payload_requests
            assert d.status()["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT"
        finally:
            d.stop()

    # "Reboot" into B: /run is empty, the release says NEW, the first check reports the update complete.
    shutil.rmtree(host.root / "run")
    (host.root / "run").mkdir()
    (host.root / "usr/share/flatcar/release").write_text(
        f"FLATCAR_RELEASE_VERSION={NEW}\nFLATCAR_RELEASE_BOARD=amd64-usr\n")
    with OmahaServer(payload=host.payload, version=NEW) as server:
        (host.root / "etc/flatcar/update.conf").write_text(f"SERVER={server.url}\n")
        (host.root / "etc/switchyard/omaha-client.conf").write_text(FAST_SCHEDULE)
        d = Daemon(host.program("omaha-client"), host.root, host.tmp,
                   [f"--slots={host.slots_sock}", f"--payload-writer={host.pw_sock}", f"--verity={host.verity_sock}"])
        try:
            assert d.status()["current_operation"] == "UPDATE_STATUS_IDLE"
            d.ctl("check", "--wait")
            assert server.requests[0].events == [(3, 2, None, OLD)]
            assert server.requests[0].version == NEW
        finally:
            d.stop()


def test_cut_download_resumes(host):
    with OmahaServer(payload=host.payload, version=NEW) as server:
        size = host.payload.stat().st_size
        server.cut_after = size * 2 // 3
        server.cut_times = 1
        d = host.start_client(server)
        try:
            d.ctl("check", "--wait", timeout=180)
            assert d.status()["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", d.logtext()
        finally:
            d.stop()
        reqs = server.payload_requests
        assert len(reqs) >= 3, reqs
        assert reqs[0].range is None and reqs[0].sent < size
        # the metadata again, then the rest from the checkpoint's blob offset
        assert reqs[1].range is not None and reqs[1].range.startswith("bytes=0-")
        assert reqs[2].range is not None and reqs[2].status == 206
        start = int(reqs[2].range.split("=")[1].split("-")[0])
        assert 0 < start <= server.cut_after
        assert "Resuming the download" in d.logtext()
    assert host.slot_bytes("b", host.usr.stat().st_size) == host.usr.read_bytes()


def test_daemon_stopped_mid_download_resumes(host):
    """Stopping the daemon (SIGTERM) stops the job helper mid-download; payload-writer keeps its
    checkpoint and the next daemon's check resumes from it (HTTP ranges) to a good slot."""
    with OmahaServer(payload=host.payload, version=NEW) as server:
        size = host.payload.stat().st_size
        server.throttle = 0.2  # 64 KiB every 200 ms: about 12 s for the payload
        d = host.start_client(server)
        d.ctl("check")
        st = d.wait_status(lambda st: st["current_operation"] == "UPDATE_STATUS_DOWNLOADING" and
                           st["bytes"] > size // 4, timeout=60)
        assert st["bytes"] < size
        helpers = d.children()
        assert len(helpers) == 1, helpers
        assert d.stop() == 0
        assert not os.path.exists(f"/proc/{helpers[0]}"), "the job helper outlived the daemon"
        first_log = d.logtext()
        assert "Stopping the update job" in first_log

        server.throttle = 0
        d = host.start_client(server)
        try:
            d.ctl("check", "--wait", timeout=180)
            assert d.status()["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", d.logtext()
            assert "Resuming the download" in d.logtext()
        finally:
            d.stop()
        resumed = [r for r in server.payload_requests[1:] if r.range is not None and r.status == 206]
        assert resumed, server.payload_requests
    assert host.slot_bytes("b", host.usr.stat().st_size) == host.usr.read_bytes()


@pytest.mark.parametrize("lie,code", [("size", 11), ("hash", 10)])
def test_wrong_size_or_hash_refused(host, lie, code):
    a_before = usr_a_digest(host)
    with OmahaServer(payload=host.payload, version=NEW) as server:
        if lie == "size":
            server.announced_size = host.payload.stat().st_size - 1000
        else:
            server.announced_sha256 = "stLG3U/o4Ar8TMHFwT/RWB0iNkaWOO6QtLrq6+AHBbA="
        d = host.start_client(server)
        try:
            r = d.ctl("check", "--wait", check=False, timeout=180)
            assert r.returncode != 0
            st = d.status()
            assert st["current_operation"] == "UPDATE_STATUS_IDLE"
            assert st["last_error"] == code, st
        finally:
            d.stop()
        assert (3, 0, 0x10000000 | code, None) in server.events()
        assert (14, 1, None, None) not in server.events()
    # Nothing was made bootable; the active slot is untouched.
    s = host.slot_status()
    assert s["next"] == "a"
    b = [x for x in s["slots"] if x["slot"] == "b"][0]
    assert b["priority"] == 0
    assert usr_a_digest(host) == a_before


def test_newer_version_replaces_staged_slot(host):
    with OmahaServer(payload=host.payload, version=NEW) as server:
        d = host.start_client(server)
        try:
            d.ctl("check", "--wait", timeout=180)
            assert d.status()["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT"
            # Before the reboot a newer version appears: it is written over the staged, unbooted slot.
            usr2, kernel2, payload2 = host.make_payload("4600.0.0")
            server.payload = payload2
            server.version = "4600.0.0"
            d.ctl("check", "--wait", timeout=180)
            st = d.status()
            assert st["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", d.logtext()
            assert st["new_version"] == "4600.0.0"
            assert "replaces the staged, not yet booted 4500.0.0" in d.logtext()
        finally:
            d.stop()
        assert server.events()[-3:] == [(13, 1, None, None), (14, 1, None, None), (3, 1, None, None)]
    assert host.slot_bytes("b", usr2.stat().st_size) == usr2.read_bytes()
    assert (host.esp / "flatcar/vmlinuz-b").read_bytes() == kernel2.read_bytes()
    assert host.slot_status()["next"] == "b"
    assert (state_dir(host.root) / "prefs/previous-version").read_text() == OLD
    state = json.loads((state_dir(host.root) / "state.json").read_text())
    assert state["staged_version"] == "4600.0.0"


def test_url_failover(host):
    """A dead first URL: after MaxFailureCountPerUrl failures the next URL is used (spec 1.7)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}/nothing/"
    s.close()
    with OmahaServer(payload=host.payload, version=NEW) as server:
        server.extra_codebases_first = [dead]
        server.max_failure_count_per_url = 2
        d = host.start_client(server)
        try:
            d.ctl("check", "--wait", timeout=180)
            assert d.status()["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", d.logtext()
            log = d.logtext()
            assert log.count(f"Downloading {dead}flatcar_production_update.gz") == 2
            assert f"Downloading {server.base_url}/payloads/flatcar_production_update.gz" in log
        finally:
            d.stop()
    assert host.slot_bytes("b", host.usr.stat().st_size) == host.usr.read_bytes()
