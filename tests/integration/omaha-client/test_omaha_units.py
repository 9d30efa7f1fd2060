"""The omaha-client units as built: systemd accepts them, and the network-facing service gets no devices."""
import configparser
import shutil
import subprocess

import pytest

from conftest import SOURCE_DIR


@pytest.fixture
def units(build_dir, program, tmp_path):
    binary = program("omaha-client")
    out = tmp_path / "units"
    out.mkdir()
    for src in [build_dir / "units/omaha-client/omaha-client.service",
                SOURCE_DIR / "units/omaha-client/omaha-client.socket"]:
        lines = []
        for line in src.read_text().splitlines():
            if line.startswith("ExecStart="):  # the installed path does not exist here
                line = "ExecStart=" + str(binary) + " daemon"
            lines.append(line)
        (out / src.name).write_text("\n".join(lines) + "\n")
    return out


def test_systemd_accepts_units(units):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    p = subprocess.run([analyze, "verify", "--man=no", str(units / "omaha-client.socket"),
                        str(units / "omaha-client.service")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "omaha-client" not in p.stderr, p.stderr


def test_no_devices(units):
    u = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    u.optionxform = str
    u.read_string((units / "omaha-client.service").read_text())
    svc = u["Service"]
    # The process that parses Omaha XML and HTTP must not be able to open block devices (DESIGN.md).
    assert svc["PrivateDevices"] == "yes" and svc["DevicePolicy"] == "closed"
    assert svc["ProtectSystem"] == "strict"
    assert svc["CapabilityBoundingSet"] == ""
