"""Smoke run of every bench/ script: tiny inputs, the test build's programs, the last line must be
`ratio=<number>`. The figures themselves mean nothing here (sanitizer build, tiny slots); the real
ones are in bench/README.md."""
import os
import re
import shutil
import subprocess

import pytest

SCRIPTS = ["bench-apply-vs-lbzip2", "bench-apply-vs-bzip2", "bench-apply-rss", "bench-generate",
           "bench-verity", "bench-sizes", "bench-idle-rss"]
TOOLS = ["lbzip2", "bzip2", "veritysetup", "mkfs.ext4", "bc", "taskset", "strip", "file"]


@pytest.fixture(scope="module")
def bench_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-cache")


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_smoke(script, source_dir, build_dir, bench_cache):
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if not shutil.which(t, path=path)]
    if missing:
        pytest.skip(f"missing benchmark tools: {' '.join(missing)}")
    if not os.path.exists("/usr/bin/time"):
        pytest.skip("GNU time (/usr/bin/time) is not installed")
    env = dict(os.environ, BENCH_BUILD_DIR=str(build_dir), BENCH_CACHE=str(bench_cache),
               ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run([str(source_dir / "bench" / script), "--smoke"], env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, f"{script} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    lines = r.stdout.strip().splitlines()
    assert lines, f"{script} printed nothing"
    m = re.fullmatch(r"ratio=([0-9]+(\.[0-9]+)?)", lines[-1])
    assert m, f"{script}: last line is {lines[-1]!r}, not ratio=<number>"
    assert float(m.group(1)) > 0, f"{script}: ratio {m.group(1)} is not positive"
