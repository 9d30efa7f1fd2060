"""bench/verity-check/bench-verify --smoke: builds a small Flatcar-style slot with real files and ends
with the ratio line (the 1 GiB measurement itself is not run in tests)."""
import os
import re
import subprocess

import pytest

from conftest import need_tool


@pytest.mark.slow
def test_bench_smoke(source_dir, program, tmp_path):
    need_tool("veritysetup")
    need_tool("mkfs.ext4")
    env = dict(os.environ, VERITY_CHECK=str(program("verity-check")), TMPDIR=str(tmp_path))
    p = subprocess.run([str(source_dir / "bench" / "verity-check" / "bench-verify"), "--smoke"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio=[0-9]+\.[0-9]{3}", lines[-1]), lines[-1]
    assert float(lines[-1][len("ratio="):]) > 0
    assert any(line.startswith("verity-check verify: wall") for line in lines)
    assert any("16255 data blocks" in line for line in lines)  # the largest data area of a 64 MiB slot
