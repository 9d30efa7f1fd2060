"""The unit files: valid for systemd, ordered before the sockets they guard, and sandboxed tightly."""
import json
import shutil
import subprocess

import pytest

UNITS = ["hardening.service", "hardening-varlink.service", "hardening-varlink.socket"]


@pytest.fixture
def units(source_dir, program, tmp_path):
    """The units with ExecStart pointing at the built program (verify checks that it exists)."""
    for u in UNITS:
        text = (source_dir / "units/hardening" / u).read_text()
        (tmp_path / u).write_text(text.replace("/usr/bin/hardening", str(program("hardening"))))
    return tmp_path


def test_units_verify(units):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    p = subprocess.run(["systemd-analyze", "verify", "--man=no"] + [str(units / u) for u in UNITS],
                       capture_output=True, text=True)
    # verify complains about units it cannot find in the host (sshd.socket, docker.socket) only as
    # ordering targets, which is not an error.
    assert p.returncode == 0, p.stderr


def test_boot_ordering(source_dir):
    text = (source_dir / "units/hardening/hardening.service").read_text()
    before = [l for l in text.splitlines() if l.startswith("Before=")][0].split("=", 1)[1].split()
    assert {"sshd.socket", "docker.socket", "sockets.target", "sysinit.target"} <= set(before)
    assert "DefaultDependencies=no" in text
    assert "ExecStart=/usr/bin/hardening apply --reload" in text


@pytest.mark.parametrize("unit", ["hardening.service", "hardening-varlink.service"])
def test_security_exposure(units, unit):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(units / unit)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Overall exposure level" in p.stdout
