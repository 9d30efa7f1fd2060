"""The unit files confine the service as the design asks: socket activation, no network, no devices,
a dynamic user and a syscall filter; systemd accepts them."""
import shutil
import subprocess

import pytest


@pytest.fixture
def units(build_dir, source_dir, tmp_path):
    service = build_dir / "units" / "payload-writer" / "payload-writer.service"
    if not service.exists():
        pytest.fail(f"{service} was not generated")
    shutil.copy(service, tmp_path)
    shutil.copy(source_dir / "units" / "payload-writer" / "payload-writer.socket", tmp_path)
    return tmp_path


def settings(path):
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_confinement(units):
    s = settings(units / "payload-writer.service")
    assert s["ExecStart"][0].endswith("/payload-writer varlink")
    for key, value in [("DynamicUser", "yes"), ("PrivateNetwork", "yes"), ("RestrictAddressFamilies", "AF_UNIX"),
                       ("PrivateDevices", "yes"), ("DevicePolicy", "closed"), ("ProtectSystem", "strict"),
                       ("NoNewPrivileges", "yes"), ("CapabilityBoundingSet", ""), ("IPAddressDeny", "any")]:
        assert s[key] == [value], key
    assert "@system-service" in s["SystemCallFilter"]
    assert any(v.startswith("~@privileged") for v in s["SystemCallFilter"])
    sock = settings(units / "payload-writer.socket")
    assert sock["ListenStream"] == ["/run/switchyard/io.switchyard.PayloadWriter"]
    assert sock["SocketMode"] == ["0600"]


def test_systemd_accepts_units(units):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(units / "payload-writer.socket"),
                        str(units / "payload-writer.service")], capture_output=True, text=True)
    # The binary is not installed at its final path in a build tree; everything else must be clean.
    problems = [l for l in p.stderr.splitlines() if l.strip() and "is not executable" not in l]
    assert problems == []
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=10",
                        str(units / "payload-writer.service")], capture_output=True, text=True)
    # exit status is non-zero when the exposure (x10) is above the threshold: 1.0 "SAFE"
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr
