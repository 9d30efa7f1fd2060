"""Helpers shared by the units/man/Butane tests (imported by conftest.py and the test modules)."""
import os
import pathlib

SOURCE_DIR = pathlib.Path(os.environ.get("SWITCHYARD_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[3]))
COMPONENTS = ["slot-manager", "payload-writer", "verity-check", "omaha-client", "metadata-agent", "hardening"]
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target", ".mount")
SCORES = {}


def unit_name(path: pathlib.Path) -> str | None:
    """The installed name of a unit source file (foo.service.in -> foo.service), or None."""
    name = path.name[:-3] if path.name.endswith(".in") else path.name
    return name if name.endswith(UNIT_SUFFIXES) else None


def source_units() -> list[str]:
    return sorted(n for c in COMPONENTS for p in (SOURCE_DIR / "units" / c).iterdir() if (n := unit_name(p)))


