"""Helpers for the omaha-client integration tests: a fake host root and a daemon running on it."""
import json
import os
import pathlib
import platform
import signal
import subprocess
import time

MACHINE_ID = "83ab5976451549a1afede31db82fd215"
BOOT_ID = "a9bb4db3-e555-4fb6-b9ae-6a85417e7d5b"


def make_root(root: pathlib.Path, version="4459.0.0", group="alpha", server=None, extra_update_conf="",
              switchyard_conf=""):
    """A host root as Flatcar lays it out (spec 2.2), with fixed machine and boot ids."""
    (root / "usr/share/flatcar").mkdir(parents=True, exist_ok=True)
    (root / "etc/flatcar").mkdir(parents=True, exist_ok=True)
    (root / "etc/switchyard").mkdir(parents=True, exist_ok=True)
    (root / "proc/sys/kernel/random").mkdir(parents=True, exist_ok=True)
    (root / "usr/share/flatcar/release").write_text(
        f"FLATCAR_RELEASE_VERSION={version}\nFLATCAR_RELEASE_BOARD=amd64-usr\n"
        "FLATCAR_RELEASE_APPID={e96281a6-d1af-4bde-9a0a-97b76e56dc57}\n")
    conf = f"GROUP={group}\n"
    if server:
        conf += f"SERVER={server}\n"
    (root / "usr/share/flatcar/update.conf").write_text(conf)
    (root / "etc/flatcar/update.conf").write_text(extra_update_conf)
    (root / "etc/machine-id").write_text(MACHINE_ID + "\n")
    (root / "proc/sys/kernel/random/boot_id").write_text(BOOT_ID + "\n")
    (root / "etc/switchyard/omaha-client.conf").write_text(switchyard_conf)
    return root


def state_dir(root: pathlib.Path) -> pathlib.Path:
    return root / "var/lib/switchyard/omaha-client"


def set_pref(root: pathlib.Path, name: str, value: str):
    d = state_dir(root) / "prefs"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(value)


def arch() -> str:
    return platform.machine()


FAST_SCHEDULE = """FIRST_CHECK_DELAY_SEC=3600
FIRST_CHECK_FUZZ_SEC=0
CHECK_INTERVAL_SEC=3600
CHECK_FUZZ_SEC=0
MIN_CHECK_INTERVAL_SEC=1
MIN_CHECK_INTERVAL_FUZZ_SEC=0
RETRY_DELAY_SEC=1
NO_NETWORK_RETRY_SEC=1
"""


class Daemon:
    """omaha-client daemon on a private socket."""

    def __init__(self, binary, root, tmp, extra_args=(), env=None):
        self.binary = str(binary)
        self.root = root
        self.socket = str(tmp / "omaha.sock")
        if os.path.exists(self.socket):
            os.unlink(self.socket)  # a previous daemon's
        self.log = open(tmp / "omaha-client.log", "w+")
        if not any(a.startswith("--dbus=") for a in extra_args):
            extra_args = [*extra_args, "--dbus=no"]
        args = [self.binary, f"--root={root}", f"--listen={self.socket}", *extra_args, "daemon"]
        env = dict(os.environ, SWITCHYARD_LOG_LEVEL="debug", **(env or {}))
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 10
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("omaha-client daemon did not start:\n" + self.logtext())
            time.sleep(0.05)

    def children(self):
        """pids of the daemon's child processes (its job helper while a check runs)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                pids.append(int(d))
        return pids

    def logtext(self):
        if self.log.closed:
            return self._final_log
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def ctl(self, *args, check=True, timeout=120):
        r = subprocess.run([self.binary, f"--address={self.socket}", *args], capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"omaha-client {' '.join(args)} failed ({r.returncode}):\n{r.stderr}\n"
                                 f"--- daemon log ---\n{self.logtext()}")
        return r

    def status(self):
        return json.loads(self.ctl("--json", "status").stdout)

    def wait_status(self, predicate, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.status()
            if predicate(st):
                return st
            time.sleep(0.1)
        raise AssertionError(f"status never matched; last {self.status()}\n{self.logtext()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._final_log = self.logtext()
        self.log.close()
        return self.proc.returncode


SOURCE = pathlib.Path(__file__).resolve().parents[3]


def missing_sources(peers=False):
    """What this tree lacks to build omaha-client (src/shared/varlink.c, http.c) or, with peers, to run a
    full update (the three services, tests/lib/diskimage.py). Tests skip with this list until those land."""
    paths = ["src/shared/varlink.c", "src/shared/http.c"]
    if peers:
        paths += ["src/slot-manager/slot-manager.c", "src/payload-writer/payload-writer.c",
                  "src/verity-check/verity-check.c", "tests/lib/diskimage.py"]
    return [p for p in paths if not (SOURCE / p).exists()]


def skip_unless_built(peers=False):
    import pytest
    missing = missing_sources(peers)
    return pytest.mark.skipif(bool(missing), reason="not in this tree yet: " + ", ".join(missing))
