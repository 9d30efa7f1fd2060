"""update_engine's D-Bus API (spec 3.1) served by the daemon on a private bus."""
import shutil
import subprocess
import time

import pytest

from omaha_env import skip_unless_built, FAST_SCHEDULE, Daemon, make_root
from omaha_server import OmahaServer

pytestmark = skip_unless_built()

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@pytest.fixture
def bus(tmp_path):
    if not shutil.which("dbus-daemon") or not shutil.which("busctl"):
        pytest.skip("dbus-daemon or busctl is not installed")
    sock = tmp_path / "bus.sock"
    conf = tmp_path / "bus.conf"
    conf.write_text(BUS_CONFIG.format(path=sock))
    p = subprocess.Popen(["dbus-daemon", "--nofork", f"--config-file={conf}"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not sock.exists():
        assert time.time() < deadline and p.poll() is None, "dbus-daemon did not start"
        time.sleep(0.05)
    yield f"unix:path={sock}"
    p.terminate()
    p.wait(timeout=10)


def busctl(address, *args):
    r = subprocess.run(["busctl", f"--address={address}", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_dbus_api(program, tmp_path, bus):
    with OmahaServer(payload_bytes=b"x", version="1.0.0") as server:
        root = make_root(tmp_path / "root", server=server.url, switchyard_conf=FAST_SCHEDULE)
        mon = subprocess.Popen(["busctl", f"--address={bus}", "monitor", "--match",
                                "type='signal',interface='com.coreos.update1.Manager'"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        d = Daemon(program("omaha-client"), root, tmp_path, [f"--dbus={bus}"])
        try:
            deadline = time.time() + 10
            while "com.coreos.update1" not in busctl(bus, "list", "--acquired"):
                assert time.time() < deadline, d.logtext()
                time.sleep(0.1)
            out = busctl(bus, "call", "com.coreos.update1", "/com/coreos/update1", "com.coreos.update1.Manager",
                         "GetStatus")
            assert out.strip() == 'xdssx 0 0 "UPDATE_STATUS_IDLE" "0.0.0" 0'

            busctl(bus, "call", "com.coreos.update1", "/com/coreos/update1", "com.coreos.update1.Manager",
                   "AttemptUpdate")
            assert server.wait_for(lambda: len(server.requests) == 1)
            assert server.requests[0].installsource == "ondemandupdate"
            d.wait_status(lambda s: s["jobs_finished"] == 1)
            out = busctl(bus, "call", "com.coreos.update1", "/com/coreos/update1", "com.coreos.update1.Manager",
                         "GetStatus")
            fields = out.split()
            assert fields[0] == "xdssx" and int(fields[1]) > 0 and fields[3] == '"UPDATE_STATUS_IDLE"'

            # ResetStatus from IDLE is a no-op success.
            busctl(bus, "call", "com.coreos.update1", "/com/coreos/update1", "com.coreos.update1.Manager",
                   "ResetStatus")
            time.sleep(0.5)
        finally:
            d.stop()
            mon.terminate()
        signals = mon.communicate(timeout=10)[0]
        assert 'Member=StatusUpdate' in signals
        assert '"UPDATE_STATUS_CHECKING_FOR_UPDATE"' in signals
