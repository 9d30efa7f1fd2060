"""Every program has a page; every option its --help lists is in that page and every option the
page's OPTIONS section lists is in --help; every page renders without groff warnings."""
import os
import re
import shutil
import subprocess

import pytest

from units_common import COMPONENTS, SOURCE_DIR, installed_root  # noqa: F401 (fixture)

OPT = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def page_sources():
    pages = [p for c in COMPONENTS for p in sorted((SOURCE_DIR / "man" / c).iterdir()) if re.search(r"\.[1-8]$", p.name)]
    assert pages
    return pages


def plain(troff: str) -> str:
    """Page source with font changes and escapes removed, enough to find option names."""
    t = re.sub(r"\\f[BIRP]|\\f\(\w\w|\\&|\\c", "", troff)
    return t.replace("\\-", "-").replace("\\e", "\\")


def section(troff: str, name: str) -> str:
    m = re.search(rf"^\.SH \"?{name}\"?\s*$(.*?)(?=^\.SH |\Z)", troff, re.M | re.S)
    return m.group(1) if m else ""


def programs(root):
    bindir = root / "usr/bin"
    return sorted(p for p in bindir.iterdir() if not p.is_symlink() and os.access(p, os.X_OK))


def test_every_program_has_a_page(installed_root):
    for prog in programs(installed_root):
        assert (installed_root / "usr/share/man/man8" / f"{prog.name}.8").is_file(), f"no page for {prog.name}"


def test_help_and_page_agree(installed_root):
    problems = []
    for prog in programs(installed_root):
        r = subprocess.run([str(prog), "--help"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"{prog.name} --help failed: {r.stderr}"
        help_opts = set(OPT.findall(r.stdout))
        assert "--help" in help_opts and "--version" in help_opts, f"{prog.name} --help lacks --help/--version"
        src = (installed_root / "usr/share/man/man8" / f"{prog.name}.8").read_text()
        page_opts = set(OPT.findall(plain(src)))
        missing = sorted(help_opts - page_opts)
        if missing:
            problems.append(f"{prog.name}: --help lists {missing}, its page does not")
        documented = set(OPT.findall(plain(section(src, "OPTIONS"))))
        extra = sorted(documented - help_opts)
        if extra:
            problems.append(f"{prog.name}: the page's OPTIONS lists {extra}, --help does not")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", page_sources(), ids=lambda p: p.name)
def test_page_renders_without_warnings(page):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (groff-base)")
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and not r.stderr, f"groff warnings for {page.name}:\n{r.stderr}"
    if shutil.which("man"):
        r = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True, env=dict(env, MANPAGER="cat"))
        assert r.returncode == 0 and not r.stderr, f"man -l {page.name}:\n{r.stderr}"
        assert page.name.rsplit(".", 1)[0].upper() in r.stdout


def test_generated_interface_pages_render(installed_root):
    pages = sorted((installed_root / "usr/share/man/man7").glob("io.switchyard.*.7"))
    assert len(pages) == len(list((SOURCE_DIR / "src").glob("*/io.switchyard.*.varlink")))
    env = dict(os.environ, LC_ALL="C.UTF-8")
    for page in pages:
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True, env=env)
        assert r.returncode == 0 and not r.stderr, f"groff warnings for {page.name}:\n{r.stderr}"
        idl = next((SOURCE_DIR / "src").glob(f"*/{page.name[:-2]}.varlink")).read_text()
        methods = re.findall(r"^method (\w+)", idl, re.M)
        text = page.read_text()
        for m in methods:
            assert m in text, f"{page.name} does not describe {m}"
