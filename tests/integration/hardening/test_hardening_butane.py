"""`hardening butane` output: valid YAML, only the fields of the Butane flatcar 1.0.0/1.1.0 schema
(spec hardening.md §3.2) with their semantics, and the same effect as `hardening apply` when a
minimal Ignition-like interpreter applies it to a fresh Flatcar root. Also the docs/butane examples."""
import os
import pathlib
import re

import pytest
import yaml

import flatcar_root
from hardening_helpers import Hardening, froot, hardening  # noqa: F401

TOP = {"variant", "version", "ignition", "storage", "systemd", "passwd", "kernel_arguments"}
STORAGE = {"files", "directories", "links", "disks", "raid", "filesystems", "luks", "trees"}
FILE = {"path", "overwrite", "mode", "user", "group", "contents", "append"}
CONTENTS = {"source", "inline", "local", "compression", "http_headers", "verification"}
DIRECTORY = {"path", "overwrite", "mode", "user", "group"}
UNIT = {"name", "enabled", "mask", "contents", "contents_local", "dropins"}
DROPIN = {"name", "contents", "contents_local"}
USER = {"name", "password_hash", "ssh_authorized_keys", "ssh_authorized_keys_local", "uid", "gecos", "home_dir",
        "no_create_home", "primary_group", "groups", "no_user_group", "no_log_init", "shell", "should_exist",
        "system"}
GROUP = {"name", "gid", "password_hash", "should_exist", "system"}
KARGS = {"should_exist", "should_not_exist"}
ONLY_1_1 = {"contents_local", "ssh_authorized_keys_local", "discard", "open_options"}
UNIT_TYPES = (".service", ".socket", ".target", ".timer", ".mount", ".automount", ".path", ".slice", ".scope",
              ".device", ".swap")


def check_keys(obj, allowed, where, version):
    assert isinstance(obj, dict), f"{where} is not a mapping"
    extra = set(obj) - allowed
    assert not extra, f"{where}: fields not in the Butane flatcar {version} schema: {extra}"
    if version == "1.0.0":
        assert not (set(obj) & ONLY_1_1), f"{where}: 1.1.0-only fields in a 1.0.0 config"


def validate(text, version=None):
    """Checks a Butane flatcar config field by field; returns the parsed document."""
    doc = yaml.safe_load(text)
    check_keys(doc, TOP, "top level", doc.get("version"))
    assert doc["variant"] == "flatcar"
    assert doc["version"] in ("1.0.0", "1.1.0")
    if version:
        assert doc["version"] == version
    v = doc["version"]
    # Modes must be YAML octal literals (Butane's ErrDecimalMode warns otherwise).
    for m in re.finditer(r"^\s*mode:\s*(\S+)\s*$", text, re.M):
        assert re.fullmatch(r"0[0-7]{3,4}", m.group(1)), f"mode {m.group(1)} is not an octal literal"
    storage = doc.get("storage", {})
    check_keys(storage, STORAGE, "storage", v)
    for f in storage.get("files", []):
        check_keys(f, FILE, f"file {f.get('path')}", v)
        assert f["path"].startswith("/")
        assert isinstance(f.get("mode", 0o644), int) and 0 <= f.get("mode", 0) <= 0o7777
        if f.get("overwrite"):
            assert "contents" in f, f"{f['path']}: overwrite needs contents"
        if "contents" in f:
            check_keys(f["contents"], CONTENTS, f"{f['path']}.contents", v)
            assert sum(k in f["contents"] for k in ("source", "inline", "local")) == 1
    for d in storage.get("directories", []):
        check_keys(d, DIRECTORY, f"directory {d.get('path')}", v)
    units = doc.get("systemd", {})
    check_keys(units, {"units"}, "systemd", v)
    for u in units.get("units", []):
        check_keys(u, UNIT, f"unit {u.get('name')}", v)
        assert u["name"].endswith(UNIT_TYPES), f"unit name {u['name']} has no valid unit type"
        for d in u.get("dropins", []):
            check_keys(d, DROPIN, f"{u['name']} drop-in", v)
            assert d["name"].endswith(".conf")
    passwd = doc.get("passwd", {})
    check_keys(passwd, {"users", "groups"}, "passwd", v)
    for usr in passwd.get("users", []):
        check_keys(usr, USER, f"user {usr.get('name')}", v)
    for g in passwd.get("groups", []):
        check_keys(g, GROUP, f"group {g.get('name')}", v)
    kargs = doc.get("kernel_arguments", {})
    check_keys(kargs, KARGS, "kernel_arguments", v)
    for k in kargs.get("should_exist", []) + kargs.get("should_not_exist", []):
        assert isinstance(k, str) and k and " " not in k
    return doc


def grub_args(text):
    args = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("set linux_append="):
            val = line[len("set linux_append="):].strip('"')
            args += [a for a in val.split() if a != "$linux_append"]
    return args


def effective(args):
    eff = {}
    for a in args:
        k = a.split("=", 1)[0]
        eff[k] = a
    return eff


def ignition_apply(doc, root: pathlib.Path):
    """What Flatcar's Ignition (and ignition-kargs-helper) do with the parts of a config we emit."""
    for f in doc.get("storage", {}).get("files", []):
        p = root / f["path"].lstrip("/")
        for parent in reversed(p.relative_to(root).parents[:-1]):
            d = root / parent
            if not d.exists():
                d.mkdir()
                os.chmod(d, 0o755)
        data = f["contents"]["inline"].encode()
        if os.path.lexists(p):
            if not f.get("overwrite"):
                assert p.read_bytes() == data, f"{f['path']} exists and overwrite is false"
            os.unlink(p)
        p.write_bytes(data)
        os.chmod(p, f.get("mode", 0o644))
    for u in doc.get("systemd", {}).get("units", []):
        base = root / "etc/systemd/system"
        if u.get("mask"):
            os.symlink("/dev/null", base / u["name"])
        for d in u.get("dropins", []):
            dd = base / (u["name"] + ".d")
            dd.mkdir(exist_ok=True)
            os.chmod(dd, 0o755)
            (dd / d["name"]).write_text(d["contents"])
            os.chmod(dd / d["name"], 0o644)
    for usr in doc.get("passwd", {}).get("users", []):
        p = root / "etc/passwd"
        lines = p.read_text().splitlines(keepends=True)
        for i, line in enumerate(lines):
            fields = line.rstrip("\n").split(":")
            if fields[0] == usr["name"] and "shell" in usr:
                fields[6] = usr["shell"]
                lines[i] = ":".join(fields) + "\n"
        p.write_text("".join(lines))
    want = doc.get("kernel_arguments", {}).get("should_exist", [])
    if want:
        g = root / "usr/share/oem/grub.cfg"
        have = grub_args(g.read_text())
        missing = [a for a in want if a not in have]
        if missing:
            lines = [l for l in g.read_text().splitlines() if not l.strip().startswith("set linux_append=")]
            lines.append('set linux_append="$linux_append %s"' % " ".join(have + missing))
            g.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
@pytest.mark.parametrize("profile", ["guide", "strict"])
def test_butane_valid_and_same_effect_as_apply(program, tmp_path, version, profile):
    via_apply = flatcar_root.build(tmp_path / "apply")
    via_ignition = flatcar_root.build(tmp_path / "ignition")
    h = Hardening(program("hardening"), via_apply)
    out = h.run(f"--profile={profile}", "butane", f"--butane-version={version}", check=0).stdout
    doc = validate(out, version)

    h.run(f"--profile={profile}", "apply", check=0)
    ignition_apply(doc, via_ignition)

    a = flatcar_root.tree_state(via_apply)
    b = flatcar_root.tree_state(via_ignition)
    for tree in (a, b):
        for k in [k for k in tree if k.startswith("var/lib/switchyard")]:
            del tree[k]
        del tree["usr/share/oem/grub.cfg"]
    assert a == b
    ga = grub_args((via_apply / "usr/share/oem/grub.cfg").read_text())
    gb = grub_args((via_ignition / "usr/share/oem/grub.cfg").read_text())
    assert effective(ga) == effective(gb)
    assert set(doc["kernel_arguments"]["should_exist"]) <= set(ga)


def test_butane_guide_fields(hardening):
    doc = validate(hardening.run("butane", check=0).stdout, "1.1.0")
    units = {u["name"]: u for u in doc["systemd"]["units"]}
    assert units["sshd.socket"] == {"name": "sshd.socket", "mask": True}
    assert units["docker.socket"]["dropins"] == [{"name": "10-restrict.conf",
                                                  "contents": "[Socket]\nSocketGroup=root\n"}]
    assert doc["passwd"]["users"] == [{"name": "core", "shell": "/sbin/nologin"}]
    assert doc["kernel_arguments"]["should_exist"] == ["mitigations=auto,nosmt", "tsx=auto"]
    files = {f["path"]: f for f in doc["storage"]["files"]}
    assert files["/etc/sudoers.d/core-passwd"]["mode"] == 0o440
    assert files["/etc/sudoers.d/core-passwd"]["contents"]["inline"] == "core\tALL=(ALL) \tALL\n"
    assert files["/etc/selinux/config"]["overwrite"] is True
    assert files["/etc/selinux/config"]["contents"]["inline"] == "SELINUX=enforcing\nSELINUXTYPE=mcs\n"


def test_butane_follows_config(hardening, froot):
    d = froot / "etc/switchyard"
    d.mkdir()
    (d / "hardening.conf").write_text("SSHD_LISTEN=10.0.0.10:22\nDISABLE=core-nologin\n")
    doc = validate(hardening.run("butane", "--butane-version=1.0.0", check=0).stdout, "1.0.0")
    assert "passwd" not in doc
    sshd = next(u for u in doc["systemd"]["units"] if u["name"] == "sshd.socket")
    assert "mask" not in sshd
    assert sshd["dropins"][0]["contents"] == "[Socket]\nListenStream=\nListenStream=10.0.0.10:22\nFreeBind=true\n"
    hardening.run("butane", "--butane-version=1.2.0-experimental", check=1)


def docs_dir(source_dir):
    return source_dir / "docs" / "butane"


def test_docs_examples_parse(source_dir):
    files = sorted(docs_dir(source_dir).glob("hardening-*.bu"))
    assert len(files) >= 3
    for f in files:
        validate(f.read_text())


@pytest.mark.parametrize("name,args", [("hardening-guide.bu", []), ("hardening-strict.bu", ["--profile=strict"])])
def test_docs_examples_match_program(hardening, source_dir, name, args):
    doc = validate((docs_dir(source_dir) / name).read_text())
    out = hardening.run(*args, "butane", f"--butane-version={doc['version']}", check=0).stdout
    assert yaml.safe_load(out) == doc


def test_docs_config_example_writes_valid_config(program, tmp_path, source_dir):
    doc = validate((docs_dir(source_dir) / "hardening-config.bu").read_text())
    root = flatcar_root.build(tmp_path / "r")
    ignition_apply(doc, root)
    assert (root / "etc/switchyard/hardening.conf").exists()
    h = Hardening(program("hardening"), root)
    h.run("apply", "--dry-run", check=0)
    units = {u["name"]: u for u in doc["systemd"]["units"]}
    assert units["hardening.service"]["enabled"] is True
