"""Each daemon under the /proc its unit gives it (ProtectProc=, ProcSubset=).

systemd mounts a private procfs with hidepid=/subset= for these settings. ProcSubset=pid hides
/proc/cmdline, /proc/sys and /proc/misc, which some programs read: omaha-client crash-looped in the
VM proof with "Failed to read the boot id" before its unit dropped ProcSubset=pid. These tests build
the same procfs with unshare(1) and mount(8) and run the real programs in it."""
import pathlib
import subprocess
import sys
import time

import pytest
from units_common import SOURCE_DIR

sys.path.insert(0, str(SOURCE_DIR / "tests" / "integration" / "omaha-client"))
import omaha_env  # noqa: E402
import procview  # noqa: E402


def unit_text(component, name):
    d = SOURCE_DIR / "units" / component
    for p in (d / name, d / (name + ".in")):
        if p.exists():
            return p.read_text()
    raise FileNotFoundError(f"no unit {name} in {d}")


def unit_view(component, name):
    """argv prefix that runs a command with the unit's /proc (own mount and pid namespace)."""
    why = procview.unavailable()
    if why:
        pytest.skip(why)
    return procview.prefix(procview.proc_mount_options(unit_text(component, name)))


def test_the_view_hides_what_procsubset_hides():
    """The emulation is real: ProcSubset=pid as mounted here hides /proc/cmdline and /proc/sys."""
    text = "[Service]\nProtectProc=invisible\nProcSubset=pid\n"
    assert procview.proc_mount_options(text) == "hidepid=invisible,subset=pid"
    why = procview.unavailable()
    if why:
        pytest.skip(why)
    prefix = procview.prefix(procview.proc_mount_options(text), kill_child=False)
    r = subprocess.run([*prefix, "cat", "/proc/cmdline"], capture_output=True, text=True)
    assert r.returncode != 0 and "No such file" in r.stderr, r
    r = subprocess.run([*prefix, "cat", "/proc/sys/kernel/random/boot_id"], capture_output=True, text=True)
    assert r.returncode != 0, r
    r = subprocess.run([*prefix, "cat", "/proc/self/status"], capture_output=True, text=True)
    assert r.returncode == 0, r


def test_omaha_client_daemon_reads_the_boot_id(program, tmp_path):
    """omaha-client.service: the daemon starts and answers (it reads the kernel's boot id)."""
    root = omaha_env.make_root(tmp_path / "root", server="http://127.0.0.1:9/v1/update/",
                               switchyard_conf=omaha_env.FAST_SCHEDULE)
    (root / "proc/sys/kernel/random/boot_id").unlink()  # the real one, as on a host
    sock = tmp_path / "omaha.sock"
    log = open(tmp_path / "daemon.log", "w+")
    proc = subprocess.Popen([*unit_view("omaha-client", "omaha-client.service"), str(program("omaha-client")),
                             f"--root={root}", f"--listen={sock}", "--dbus=no", "daemon"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while not sock.exists():
            assert proc.poll() is None, f"the daemon exited ({proc.returncode}):\n{pathlib.Path(log.name).read_text()}"
            assert time.time() < deadline, "no socket within 20 s"
            time.sleep(0.05)
        r = subprocess.run([str(program("omaha-client")), f"--address={sock}", "--json", "status"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert '"current_operation"' in r.stdout
    finally:
        proc.kill()  # unshare(1) holds SIGTERM; --kill-child takes the daemon down with it
        proc.wait(10)
        log.close()
    assert "boot id" not in pathlib.Path(log.name).read_text()


def kernel_cmdline_errors(prefix, argv):
    r = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=60)
    return r.stderr


@pytest.mark.parametrize("unit", ["metadata-agent.service", "metadata-agent-varlink.service",
                                  "metadata-agent-sshkeys@.service"])
def test_metadata_agent_reads_the_kernel_command_line(program, unit):
    """The platform comes from /proc/cmdline; this machine's has no flatcar.oem.id, so the program
    must say exactly that, not that it could not read the command line."""
    err = kernel_cmdline_errors(unit_view("metadata-agent", unit), [str(program("metadata-agent")), "--cmdline", "--json"])
    assert "Failed to read" not in err, err
    assert "on the kernel command line" in err, err


def test_verity_check_reads_the_kernel_command_line(program):
    err = kernel_cmdline_errors(unit_view("verity-check", "verity-check.service"),
                                [str(program("verity-check")), "root-hash", "--cmdline"])
    assert "Failed to read" not in err, err
    assert "verity.usrhash=" in err, err
