"""The units parse, and the service's sandbox stays tight (systemd-analyze, offline)."""
import re
import subprocess

from conftest import need_tool


def test_units_verify_and_exposure(tmp_path, source_dir, program):
    analyze = need_tool("systemd-analyze")
    units = source_dir / "units" / "verity-check"
    service = (units / "verity-check.service").read_text()
    assert "ExecStart=/usr/bin/verity-check varlink" in service
    # Point ExecStart at the built binary so that "verify" can check it exists and is executable.
    (tmp_path / "verity-check.service").write_text(
        service.replace("/usr/bin/verity-check", str(program("verity-check"))))
    (tmp_path / "verity-check.socket").write_text((units / "verity-check.socket").read_text())
    p = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / "verity-check.socket"),
                        str(tmp_path / "verity-check.service")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "/run/switchyard/io.switchyard.Verity" in (units / "verity-check.socket").read_text()

    p = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(tmp_path / "verity-check.service")],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for verity-check.service: ([0-9.]+)", p.stdout)
    assert m, p.stdout + p.stderr
    assert float(m.group(1)) <= 1.0, p.stdout
    for line in ("PrivateNetwork=yes", "DevicePolicy=closed", "DynamicUser=yes", "RestrictAddressFamilies=AF_UNIX"):
        assert line in service
