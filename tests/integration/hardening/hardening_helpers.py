"""Fixtures and helpers for the hardening tests (imported by each test module: the top-level conftest
owns the name conftest.py)."""
import json
import subprocess

import pytest

import flatcar_root
from conftest import need_tool  # noqa: F401  (re-exported)


@pytest.fixture
def froot(tmp_path):
    return flatcar_root.build(tmp_path / "root")


class Hardening:
    def __init__(self, path, root):
        self.path = str(path)
        self.root = str(root)

    def run(self, *args, check=None, root=True):
        cmd = [self.path] + ([f"--root={self.root}"] if root else []) + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check is not None:
            assert p.returncode == check, f"{cmd} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        return p

    def json(self, *args, check=None):
        p = self.run(*args, "--json", check=check)
        return p.returncode, json.loads(p.stdout)


@pytest.fixture
def hardening(program, froot):
    return Hardening(program("hardening"), froot)
