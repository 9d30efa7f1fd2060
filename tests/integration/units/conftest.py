"""Shared fixtures for the units/man/Butane tests: one `meson install` into a temporary root."""
import os
import pathlib
import shutil
import subprocess

import pytest

from units_common import SCORES, SOURCE_DIR


@pytest.fixture(scope="session")
def installed_root(tmp_path_factory) -> pathlib.Path:
    """Configure a release-style build (--prefix=/usr), build it and `meson install` it into DESTDIR."""
    for tool in ("meson", "ninja"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    base = tmp_path_factory.mktemp("install")
    build, root = base / "build", base / "root"
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    subprocess.run(["meson", "setup", str(build), "--prefix=/usr", "-Dtests=false", "-Doptimization=0",
                    "-Ddebug=false"], cwd=SOURCE_DIR, check=True, capture_output=True, env=env)
    r = subprocess.run(["meson", "install", "-C", str(build), "--destdir", str(root)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, f"meson install failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return root


def pytest_terminal_summary(terminalreporter):
    if SCORES:
        terminalreporter.section("systemd-analyze security --offline=yes exposure")
        for unit, score in sorted(SCORES.items()):
            terminalreporter.write_line(f"{unit:45s} {score:4.1f}")
