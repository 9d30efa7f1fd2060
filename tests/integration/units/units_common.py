"""Helpers shared by the units/man/Butane tests (imported by conftest.py and the test modules)."""
import os
import pathlib
import shutil
import subprocess

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("SWITCHYARD_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[3]))
COMPONENTS = ["slot-manager", "payload-writer", "verity-check", "omaha-client", "metadata-agent", "hardening"]
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target", ".mount")
SCORES = {}
_INSTALLED = {}


def unit_name(path: pathlib.Path) -> str | None:
    """The installed name of a unit source file (foo.service.in -> foo.service), or None."""
    name = path.name[:-3] if path.name.endswith(".in") else path.name
    return name if name.endswith(UNIT_SUFFIXES) else None


def source_units() -> list[str]:
    return sorted(n for c in COMPONENTS for p in (SOURCE_DIR / "units" / c).iterdir() if (n := unit_name(p)))


@pytest.fixture(scope="session")
def installed_root(tmp_path_factory) -> pathlib.Path:
    """Configure a release-style build (--prefix=/usr), build it and `meson install` it into DESTDIR.
    Every module imports this fixture; the first use builds, later ones reuse the result."""
    if "root" in _INSTALLED:
        return _INSTALLED["root"]
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
    _INSTALLED["root"] = root
    return root


@pytest.fixture(scope="module")
def score_summary(request):
    """Prints the exposure table at the end of a module (there is no conftest.py here on purpose: a
    second conftest module would shadow tests/integration/conftest.py for `from conftest import`)."""
    yield SCORES
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    cap = request.config.pluginmanager.get_plugin("capturemanager")
    if tr and cap and SCORES:
        with cap.global_and_fixture_disabled():
            tr.write_line("")
            tr.write_sep("-", "systemd-analyze security --offline=yes exposure")
            for unit, score in sorted(SCORES.items()):
                tr.write_line(f"{unit:60s} {score:4.1f}")
