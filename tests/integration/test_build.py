"""The build produced what the test suite relies on."""
import subprocess

from conftest import BUILD_DIR


def test_unit_tests_were_built():
    out = subprocess.run(["meson", "test", "-C", str(BUILD_DIR), "--list"],
                         capture_output=True, text=True, check=True).stdout
    assert "test-config" in out and "test-hash" in out


def test_release_build_has_no_warnings(tmp_path):
    """-O3 finds what -O0 misses (maybe-uninitialized); -Werror is on, so a release build (what the
    benchmarks, the VM images and packagers use) must compile clean, not only the test build."""
    from conftest import SOURCE_DIR
    build = tmp_path / "release"
    subprocess.run(["meson", "setup", str(build), "--buildtype=release", "-Dtests=false",
                    "-Dwerror=true"], cwd=SOURCE_DIR, check=True, capture_output=True)
    r = subprocess.run(["ninja", "-C", str(build)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:]
