"""Fixtures shared by every integration test. Helper modules live in tests/lib (on sys.path)."""
import os
import pathlib
import shutil
import sys

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("SWITCHYARD_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(SOURCE_DIR / "tests" / "lib"))

BUILD_DIR = pathlib.Path(os.environ.get("SWITCHYARD_BUILD_DIR", SOURCE_DIR / "build-test"))
SHARED_DIR = pathlib.Path(os.environ.get("SWITCHYARD_SHARED_DIR", SOURCE_DIR.parent / "shared"))

PROGRAMS = {
    "slot-manager": "src/slot-manager/slot-manager",
    "payload-writer": "src/payload-writer/payload-writer",
    "verity-check": "src/verity-check/verity-check",
    "omaha-client": "src/omaha-client/omaha-client",
    "metadata-agent": "src/metadata-agent/metadata-agent",
    "hardening": "src/hardening/hardening",
}


def program_path(name: str) -> pathlib.Path:
    """Path of a built program or test helper (relative to the build directory)."""
    rel = PROGRAMS.get(name, name)
    return BUILD_DIR / rel


@pytest.fixture(scope="session")
def build_dir() -> pathlib.Path:
    return BUILD_DIR


@pytest.fixture(scope="session")
def source_dir() -> pathlib.Path:
    return SOURCE_DIR


@pytest.fixture(scope="session")
def fixtures_dir() -> pathlib.Path:
    d = SHARED_DIR / "fixtures"
    if not d.is_dir():
        pytest.skip(f"shared fixtures not found at {d} (set SWITCHYARD_SHARED_DIR)")
    return d


@pytest.fixture(scope="session")
def spec_dir() -> pathlib.Path:
    return SHARED_DIR / "spec"


@pytest.fixture
def program():
    """program("slot-manager") -> path of the built binary; skips if it was not built."""
    def get(name):
        p = program_path(name)
        if not p.exists():
            pytest.fail(f"{name} was not built at {p}")
        return p
    return get


@pytest.fixture
def tmp_root(tmp_path) -> pathlib.Path:
    """An empty directory standing for a host's / (for --root=DIR)."""
    root = tmp_path / "root"
    for d in ("etc", "usr/share", "var/lib", "run"):
        (root / d).mkdir(parents=True)
    return root


def need_tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if not path:
        pytest.skip(f"{name} is not installed")
    return path
