"""`meson install` into a DESTDIR puts every unit, tmpfiles/sysusers entry, man page and varlink IDL in
place; every unit enables and disables cleanly with `systemctl --root`; `systemd-analyze verify` passes."""
import configparser
import os
import re
import shutil
import subprocess

import pytest

from units_common import COMPONENTS, SOURCE_DIR, installed_root, source_units, unit_name  # noqa: F401 (fixture)

UNITDIR = "usr/lib/systemd/system"
# Programs the units call that belong to Flatcar, not to this suite.
FLATCAR_TOOLS = {"/usr/bin/update-ssh-keys"}


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")


def unit_sections(path):
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str
    cp.read_string(path.read_text())
    return cp


def test_units_installed(installed_root):
    unitdir = installed_root / UNITDIR
    for c in COMPONENTS:
        for src in (SOURCE_DIR / "units" / c).iterdir():
            name = unit_name(src)
            if not name:
                continue
            dst = unitdir / name
            assert dst.is_file(), f"{name} (from units/{c}) is not installed in {UNITDIR}"
            text = dst.read_text()
            assert not re.search(r"@[A-Za-z_]+@", text), f"{name} has unsubstituted @VAR@ placeholders"
            if not src.name.endswith(".in"):
                assert text == src.read_text(), f"{name} differs from units/{c}/{src.name}"


def test_installed_units_come_from_the_tree(installed_root):
    installed = sorted(p.name for p in (installed_root / UNITDIR).iterdir() if p.is_file())
    assert installed == source_units()


def test_exec_paths_point_at_installed_programs(installed_root):
    for name in source_units():
        cp = unit_sections(installed_root / UNITDIR / name)
        if not cp.has_section("Service"):
            continue
        for key, value in cp.items("Service"):
            if not key.startswith("Exec"):
                continue
            prog = value.lstrip("-+!@:").split()[0]
            if prog in FLATCAR_TOOLS or prog.startswith("/usr/bin/ln"):
                continue
            assert (installed_root / prog.lstrip("/")).is_file(), f"{name}: {key}={prog} is not installed"
            assert os.access(installed_root / prog.lstrip("/"), os.X_OK), f"{name}: {prog} is not executable"


def test_sockets_live_in_run_switchyard_and_limit_callers(installed_root):
    for name in source_units():
        if not name.endswith(".socket"):
            continue
        cp = unit_sections(installed_root / UNITDIR / name)
        listen = cp.get("Socket", "ListenStream")
        assert re.fullmatch(r"/run/switchyard/io\.switchyard\.[A-Z]\w+", listen), f"{name}: {listen}"
        mode = int(cp.get("Socket", "SocketMode"), 8)
        # Only slot-manager, which checks SO_PEERCRED on every method that changes state, is world-writable.
        if name != "slot-manager.socket":
            assert mode & 0o007 == 0, f"{name}: SocketMode={mode:o} lets anyone call"
        service = name.replace(".socket", ".service")
        assert (installed_root / UNITDIR / service).is_file(), f"{name} activates a missing {service}"


def test_tmpfiles_and_sysusers_installed_and_valid(installed_root):
    need("systemd-tmpfiles")
    found = 0
    for c in COMPONENTS:
        for src in (SOURCE_DIR / "units" / c).iterdir():
            for suffix, d in ((".tmpfiles", "tmpfiles.d"), (".sysusers", "sysusers.d")):
                if src.name.endswith(suffix):
                    dst = installed_root / "usr/lib" / d / (src.name[: -len(suffix)] + ".conf")
                    assert dst.is_file(), f"units/{c}/{src.name} is not installed as {dst}"
                    assert dst.read_text() == src.read_text()
                    found += 1
    tmpfiles = sorted((installed_root / "usr/lib/tmpfiles.d").glob("*.conf"))
    if tmpfiles:
        r = subprocess.run(["systemd-tmpfiles", f"--root={installed_root}", "--create", *map(str, tmpfiles)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert (installed_root / "etc/flatcar/update.conf").is_file()
    sysusers = sorted((installed_root / "usr/lib/sysusers.d").glob("*.conf")) \
        if (installed_root / "usr/lib/sysusers.d").is_dir() else []
    if sysusers:
        r = subprocess.run(["systemd-sysusers", f"--root={installed_root}", *map(str, sysusers)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert found >= 1


def test_man_pages_installed(installed_root):
    pages = [p for c in COMPONENTS for p in (SOURCE_DIR / "man" / c).iterdir() if re.search(r"\.[1-8]$", p.name)]
    assert pages
    for p in pages:
        section = p.name.rsplit(".", 1)[1]
        assert (installed_root / f"usr/share/man/man{section}" / p.name).is_file(), f"{p.name} not installed"
    for idl in (SOURCE_DIR / "src").glob("*/io.switchyard.*.varlink"):
        page = installed_root / "usr/share/man/man7" / (idl.name[: -len(".varlink")] + ".7")
        assert page.is_file(), f"no interface page {page.name} for {idl.name}"


def test_generator_installed_with_its_page(installed_root):
    """metadata-agent-generator goes where systemd runs generators from (pkg-config systemd
    systemdsystemgeneratordir below the prefix) and its page lists every option of its --help."""
    gen = installed_root / "usr/lib/systemd/system-generators/metadata-agent-generator"
    assert gen.is_file() and os.access(gen, os.X_OK), f"{gen} is not installed"
    page = (installed_root / "usr/share/man/man8/metadata-agent-generator.8").read_text()
    r = subprocess.run([str(gen), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for opt in set(re.findall(r"--[a-z][a-z-]*", r.stdout)):
        assert opt.replace("-", "\\-") in page, f"{opt} is not in metadata-agent-generator(8)"


def test_varlink_idl_installed_matches_source(installed_root):
    d = installed_root / "usr/share/varlink"
    if not d.is_dir():
        pytest.skip("no varlink IDL is installed")
    for f in d.iterdir():
        srcs = list((SOURCE_DIR / "src").glob(f"*/{f.name}"))
        assert len(srcs) == 1, f"{f.name} has no single source"
        assert f.read_text() == srcs[0].read_text()


def systemctl(root, *args):
    return subprocess.run(["systemctl", f"--root={root}", *args], capture_output=True, text=True)


def links(root):
    etc = root / "etc/systemd/system"
    return sorted(str(p.relative_to(etc)) for p in etc.rglob("*") if p.is_symlink()) if etc.is_dir() else []


@pytest.mark.parametrize("unit", source_units())
def test_enable_disable(installed_root, unit):
    need("systemctl")
    cp = unit_sections(installed_root / UNITDIR / unit)
    before = links(installed_root)
    r = systemctl(installed_root, "enable", unit)
    assert r.returncode == 0, f"enable {unit}: {r.stderr}"
    added = sorted(set(links(installed_root)) - set(before))
    if not cp.has_section("Install"):
        assert added == [], f"{unit} has no [Install] but enable created {added}"
        assert systemctl(installed_root, "is-enabled", unit).stdout.strip() == "static"
        return
    inst = cp["Install"]
    instance = unit.replace("@.", "@" + inst.get("DefaultInstance", "") + ".") if "@." in unit else unit
    want = set()
    for key in ("WantedBy", "RequiredBy"):
        for target in inst.get(key, "").split():
            want.add(f"{target}.{'wants' if key == 'WantedBy' else 'requires'}/{instance}")
    for alias in inst.get("Alias", "").split():
        want.add(alias)
    assert set(added) == want, f"enable {unit} created {added}, expected {sorted(want)}"
    r = systemctl(installed_root, "is-enabled", instance)
    assert r.stdout.strip() == "enabled", f"{instance}: {r.stdout} {r.stderr}"
    r = systemctl(installed_root, "disable", unit)
    assert r.returncode == 0, f"disable {unit}: {r.stderr}"
    assert links(installed_root) == before, f"disable {unit} left {set(links(installed_root)) - set(before)}"


def test_systemd_analyze_verify(installed_root):
    """Checked against the host's targets (the DESTDIR has none); the suite's own binaries are checked
    in the DESTDIR by test_exec_paths_point_at_installed_programs, so only 'not executable' complaints
    about those binaries and Flatcar's own tools are tolerated."""
    need("systemd-analyze")
    unitdir = installed_root / UNITDIR
    files = [str(unitdir / u) for u in source_units()]
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{unitdir}:", SYSTEMD_LOG_LEVEL="notice")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *files], capture_output=True, text=True, env=env)
    problems = []
    for line in (r.stdout + r.stderr).splitlines():
        m = re.search(r"Command (\S+) is not executable", line)
        if m and (m.group(1) in FLATCAR_TOOLS or (installed_root / m.group(1).lstrip("/")).is_file()):
            continue
        if line.strip():
            problems.append(line)
    assert not problems, "\n".join(problems)
