"""The build produced what the test suite relies on."""
import subprocess

from conftest import BUILD_DIR


def test_unit_tests_were_built():
    out = subprocess.run(["meson", "test", "-C", str(BUILD_DIR), "--list"],
                         capture_output=True, text=True, check=True).stdout
    assert "test-config" in out and "test-hash" in out
