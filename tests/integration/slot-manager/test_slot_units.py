"""The slot-manager units as built: systemd accepts them, and mark-good waits for boot-complete.target."""
import configparser
import shutil
import subprocess

import pytest

from conftest import SOURCE_DIR


def load_unit(path):
    p = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    p.optionxform = str
    # repeated keys (ConditionKernelCommandLine=, SystemCallFilter=) would collide: keep the last
    p.read_string(path.read_text())
    return p


@pytest.fixture
def units(build_dir, program, tmp_path):
    binary = program("slot-manager")
    out = tmp_path / "units"
    out.mkdir()
    for src in [build_dir / "units/slot-manager/slot-manager.service",
                build_dir / "units/slot-manager/slot-manager-mark-good.service",
                SOURCE_DIR / "units/slot-manager/slot-manager.socket"]:
        text = src.read_text()
        # the installed path does not exist here; point ExecStart= at the built binary
        text = "\n".join(l.replace(l.split("=", 1)[1].split()[0], str(binary)) if l.startswith("ExecStart=") else l
                         for l in text.splitlines()) + "\n"
        (out / src.name).write_text(text)
    return out


def test_systemd_accepts_units(units):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    names = ["slot-manager.socket", "slot-manager.service", "slot-manager-mark-good.service"]
    p = subprocess.run([analyze, "verify", "--man=no", *[str(units / n) for n in names]], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    assert "slot-manager" not in p.stderr, p.stderr


def test_mark_good_after_boot_complete(units):
    u = load_unit(units / "slot-manager-mark-good.service")
    assert "boot-complete.target" in u["Unit"]["Requires"].split()
    assert "boot-complete.target" in u["Unit"]["After"].split()
    assert "Before" not in u["Unit"]
    assert u["Service"]["Type"] == "oneshot"
    assert u["Service"]["ExecStart"].split()[1:] == ["mark-good"]
    assert u["Install"]["WantedBy"] == "multi-user.target"


def test_service_is_sandboxed(units):
    u = load_unit(units / "slot-manager.service")
    s = u["Service"]
    assert s["ExecStart"].split()[1] == "varlink"
    assert s["PrivateNetwork"] == "yes" and s["DevicePolicy"] == "closed"
    assert s["ProtectSystem"] == "strict" and s["CapabilityBoundingSet"] == ""
    sock = load_unit(units / "slot-manager.socket")
    assert sock["Socket"]["ListenStream"] == "/run/switchyard/io.switchyard.Slots"
