"""docs/butane/*.bu: valid Butane `variant: flatcar` documents (field by field against the schema in
spec/hardening.md §3.2), and the files and drop-ins they write hold what the suite reads."""
import re
import shutil
import subprocess

import pytest
import yaml

from units_common import SCORES, SOURCE_DIR, installed_root, score_summary  # noqa: F401 (fixtures)

FLATCAR_TOOLS = {"/usr/bin/update-ssh-keys"}

BUTANE_DIR = SOURCE_DIR / "docs/butane"
DOCS = sorted(BUTANE_DIR.glob("*.bu"))

# The flatcar schema, spec/hardening.md §3.2 ("Field names a generator needs"). A dict is an object
# with those keys, [x] a list of x, a type a scalar of that type.
STR, INT, BOOL = str, int, bool
NODE = {"id": INT, "name": STR}
RESOURCE = {"source": STR, "inline": STR, "local": STR, "compression": STR,
            "http_headers": [{"name": STR, "value": STR}], "verification": {"hash": STR}}
SCHEMA = {
    "variant": STR, "version": STR,
    "ignition": {"config": {"merge": [RESOURCE], "replace": RESOURCE},
                 "timeouts": {"http_response_headers": INT, "http_total": INT},
                 "security": {"tls": {"certificate_authorities": [RESOURCE]}},
                 "proxy": {"http_proxy": STR, "https_proxy": STR, "no_proxy": [STR]}},
    "storage": {
        "files": [{"path": STR, "overwrite": BOOL, "mode": INT, "user": NODE, "group": NODE,
                   "contents": RESOURCE, "append": [RESOURCE]}],
        "directories": [{"path": STR, "overwrite": BOOL, "mode": INT, "user": NODE, "group": NODE}],
        "links": [{"path": STR, "target": STR, "hard": BOOL, "overwrite": BOOL, "user": NODE, "group": NODE}],
        "filesystems": [{"device": STR, "format": STR, "path": STR, "wipe_filesystem": BOOL, "label": STR,
                         "uuid": STR, "options": [STR], "mount_options": [STR], "with_mount_unit": BOOL}],
        "luks": [{"name": STR, "device": STR, "key_file": RESOURCE, "label": STR, "uuid": STR,
                  "options": [STR], "discard": BOOL, "open_options": [STR], "wipe_volume": BOOL}],
        "trees": [{"local": STR, "path": STR}],
    },
    "systemd": {"units": [{"name": STR, "enabled": BOOL, "mask": BOOL, "contents": STR, "contents_local": STR,
                           "dropins": [{"name": STR, "contents": STR, "contents_local": STR}]}]},
    "passwd": {
        "users": [{"name": STR, "password_hash": STR, "ssh_authorized_keys": [STR],
                   "ssh_authorized_keys_local": [STR], "uid": INT, "gecos": STR, "home_dir": STR,
                   "no_create_home": BOOL, "primary_group": STR, "groups": [STR], "no_user_group": BOOL,
                   "no_log_init": BOOL, "shell": STR, "should_exist": BOOL, "system": BOOL}],
        "groups": [{"name": STR, "gid": INT, "password_hash": STR, "should_exist": BOOL, "system": BOOL}],
    },
    "kernel_arguments": {"should_exist": [STR], "should_not_exist": [STR]},
}
ONLY_1_1 = {"contents_local", "ssh_authorized_keys_local", "discard", "open_options"}
UNIT_TYPES = (".service", ".socket", ".device", ".mount", ".automount", ".swap", ".target", ".path",
              ".timer", ".slice", ".scope")
UPDATE_CONF_KEYS = {"SERVER", "GROUP", "MACHINE_ALIAS", "PCR_POLICY_SERVER", "DOWNLOAD_USER", "DOWNLOAD_PASSWORD",
                    "FLATCAR_RELEASE_VERSION", "FLATCAR_RELEASE_BOARD", "FLATCAR_RELEASE_APPID",
                    "REBOOT_STRATEGY", "LOCKSMITHD_REBOOT_WINDOW_START", "LOCKSMITHD_REBOOT_WINDOW_LENGTH",
                    "REBOOT_WINDOW_START", "REBOOT_WINDOW_LENGTH", "LOCKSMITHD_ENDPOINT", "LOCKSMITHD_GROUP",
                    "LOCKSMITHD_ETCD_CAFILE", "LOCKSMITHD_ETCD_CERTFILE", "LOCKSMITHD_ETCD_KEYFILE",
                    "LOCKSMITHD_ETCD_USERNAME", "LOCKSMITHD_ETCD_PASSWORD"}
SWITCHYARD_CONF_KEYS = {"slot-manager": {"DISK", "ESP", "ALLOW_USERS", "ALLOW_GROUPS"}}


def schema_names(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            schema_names(v, out)
    elif isinstance(node, list):
        schema_names(node[0], out)
    return out


def test_schema_matches_spec(spec_dir):
    """Every field name above is in the spec's §3.2 field list (so the table here is the spec's)."""
    if not (spec_dir / "hardening.md").is_file():
        pytest.skip(f"{spec_dir}/hardening.md not found (set SWITCHYARD_SHARED_DIR)")
    spec = (spec_dir / "hardening.md").read_text()
    block = spec.split("### 3.2", 1)[1].split("```", 2)[1]
    words = set(re.findall(r"[a-z_]+", block))
    missing = sorted(schema_names(SCHEMA, set()) - words)
    assert not missing, f"fields not in spec/hardening.md §3.2: {missing}"


def check(node, schema, path, errors, used):
    if isinstance(schema, dict):
        if not isinstance(node, dict):
            return errors.append(f"{path}: expected a mapping, got {type(node).__name__}")
        for k, v in node.items():
            used.add(k)
            if k not in schema:
                errors.append(f"{path}.{k}: not a field of the flatcar schema")
            else:
                check(v, schema[k], f"{path}.{k}", errors, used)
    elif isinstance(schema, list):
        if not isinstance(node, list):
            return errors.append(f"{path}: expected a list")
        for i, item in enumerate(node):
            check(item, schema[0], f"{path}[{i}]", errors, used)
    elif schema is INT and (isinstance(node, bool) or not isinstance(node, int)):
        errors.append(f"{path}: expected an integer, got {node!r}")
    elif not isinstance(node, schema):
        errors.append(f"{path}: expected {schema.__name__}, got {node!r}")


def load(doc):
    return yaml.safe_load(doc.read_text())


def files_of(cfg):
    return {f["path"]: f for f in cfg.get("storage", {}).get("files", [])}


def parse_update_conf(text):
    """update_engine's simple_key_value_store (spec flatcar-update.md §2.1)."""
    kv = {}
    for line in text.split("\n"):
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        kv[k] = v
    return kv


def parse_switchyard_conf(text, origin):
    kv = {}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        assert "=" in s, f"{origin}:{n}: not KEY=VALUE: {line!r}"
        k, v = (x.strip() for x in s.split("=", 1))
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        kv[k] = v
    return kv


def go_duration_seconds(s):
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", s)
    assert m and s, f"{s!r} is not a Go duration"
    h, mi, se = (int(x or 0) for x in m.groups())
    return h * 3600 + mi * 60 + se


def test_there_is_a_snippet_for_each_way_to_configure():
    names = {d.name for d in DOCS}
    assert HARDENING_DOCS, "no snippet writes hardening.conf"
    for want in ("update-group-server.bu", "updates-disabled.bu", "reboot-window.bu", "metadata-provider.bu",
                 "hardening-guide.bu", "hardening-strict.bu", "hardening-config.bu"):
        assert want in names, f"docs/butane/{want} is missing"
    readme = (BUTANE_DIR / "README.md").read_text()
    for d in DOCS:
        assert d.name in readme, f"docs/butane/README.md does not mention {d.name}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_schema(doc):
    raw = doc.read_text()
    cfg = load(doc)
    errors, used = [], set()
    assert cfg.get("variant") == "flatcar", "variant must be flatcar"
    assert cfg.get("version") in ("1.0.0", "1.1.0"), f"version {cfg.get('version')!r} is not a stable flatcar spec"
    check(cfg, SCHEMA, "$", errors, used)
    if cfg["version"] == "1.0.0":
        errors += [f"{k} needs version 1.1.0" for k in sorted(used & ONLY_1_1)]
    for m in re.finditer(r"^\s*mode:\s*(\S+)", raw, re.M):
        if not re.fullmatch(r"0[0-7]{3,4}", m.group(1)):
            errors.append(f"mode {m.group(1)} is not written as an octal literal with a leading 0")
    for f in cfg.get("storage", {}).get("files", []):
        if not f["path"].startswith("/"):
            errors.append(f"{f['path']}: not absolute")
        if f.get("overwrite") and "contents" not in f:
            errors.append(f"{f['path']}: overwrite: true needs contents")
    for u in cfg.get("systemd", {}).get("units", []):
        if not u["name"].endswith(UNIT_TYPES):
            errors.append(f"unit {u['name']}: not a valid unit type")
        for d in u.get("dropins", []):
            if not d["name"].endswith(".conf"):
                errors.append(f"{u['name']} drop-in {d['name']}: must end in .conf")
    assert not errors, "\n".join(errors)


def installed_unit(root, name):
    p = root / "usr/lib/systemd/system" / name
    if not p.exists() and "@" in name:
        p = root / "usr/lib/systemd/system" / re.sub(r"@[^.]+\.", "@.", name)
    return p


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_units_exist_and_can_be_enabled(doc, installed_root):
    for u in load(doc).get("systemd", {}).get("units", []):
        p = installed_unit(installed_root, u["name"])
        if not p.exists():
            # Flatcar's own units (locksmithd, sshd, docker) are not part of this suite.
            assert not u.get("enabled"), f"{u['name']} is enabled but the suite does not install it"
            continue
        if u.get("enabled"):
            assert "[Install]" in p.read_text(), f"{u['name']}: enabled has no effect without [Install]"


def omaha_print_request(root_bin, tmp, update_conf):
    root = tmp / "host"
    (root / "usr/share/flatcar").mkdir(parents=True)
    (root / "etc/flatcar").mkdir(parents=True)
    (root / "proc/sys/kernel/random").mkdir(parents=True)
    (root / "usr/share/flatcar/release").write_text("FLATCAR_RELEASE_VERSION=4459.0.0\nFLATCAR_RELEASE_BOARD=amd64-usr\n")
    (root / "usr/share/flatcar/update.conf").write_text("GROUP=stable\nSERVER=https://public.update.flatcar-linux.net/v1/update/\n")
    (root / "etc/flatcar/update.conf").write_text(update_conf)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "proc/sys/kernel/random/boot_id").write_text("11111111-2222-3333-4444-555555555555\n")
    r = subprocess.run([str(root_bin), f"--root={root}", "print-request", "updatecheck"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


UPDATE_DOCS = [d for d in DOCS if "/etc/flatcar/update.conf" in files_of(load(d))]


@pytest.mark.parametrize("doc", UPDATE_DOCS, ids=lambda d: d.name)
def test_update_conf(doc, installed_root, tmp_path):
    text = files_of(load(doc))["/etc/flatcar/update.conf"]["contents"]["inline"]
    kv = parse_update_conf(text)
    assert kv, "update.conf sets nothing"
    unknown = sorted(set(kv) - UPDATE_CONF_KEYS)
    assert not unknown, f"keys nothing reads (update_engine rules: no comments, no spaces): {unknown}"
    if "SERVER" in kv and kv["SERVER"] != "disabled":
        assert re.fullmatch(r"https?://[^\s/]+/\S*", kv["SERVER"]), f"SERVER={kv['SERVER']!r}"
    if "REBOOT_STRATEGY" in kv:
        assert kv["REBOOT_STRATEGY"] in ("reboot", "etcd-lock", "off")
    start, length = kv.get("LOCKSMITHD_REBOOT_WINDOW_START"), kv.get("LOCKSMITHD_REBOOT_WINDOW_LENGTH")
    assert (start is None) == (length is None), "reboot window start and length go together"
    if start:
        m = re.fullmatch(r"(?i)(?:(sun|mon|tue|wed|thu|fri|sat) )?([01]?\d|2[0-3]):([0-5]\d)", start)
        assert m, f"window start {start!r} is not [Day ]HH:MM"
        limit = 7 * 86400 if m.group(1) else 86400
        assert 0 < go_duration_seconds(length) < limit, f"window length {length!r}"
    # The real client reads the same file: GROUP and MACHINE_ALIAS show up in its request.
    request = omaha_print_request(installed_root / "usr/bin/omaha-client", tmp_path, text)
    assert f'track="{kv.get("GROUP", "stable")}"' in request
    assert f'machinealias="{kv.get("MACHINE_ALIAS", "")}"' in request


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_switchyard_conf_files(doc):
    for path, f in files_of(load(doc)).items():
        m = re.fullmatch(r"/etc/switchyard/([\w-]+)\.conf(?:\.d/[\w.-]+\.conf)?", path)
        if not m:
            continue
        kv = parse_switchyard_conf(f["contents"]["inline"], f"{doc.name}:{path}")
        known = SWITCHYARD_CONF_KEYS.get(m.group(1))
        if known is not None:
            assert set(kv) <= known, f"{path}: unknown keys {sorted(set(kv) - known)}"


DROPIN_DOCS = [d for d in DOCS if any(u.get("dropins") for u in load(d).get("systemd", {}).get("units", []))]


@pytest.mark.parametrize("doc", DROPIN_DOCS, ids=lambda d: d.name)
def test_dropins_apply(doc, installed_root, tmp_path, score_summary):
    """The drop-ins are laid over the installed units and checked by systemd itself."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    unitdir = tmp_path / "system"
    shutil.copytree(installed_root / "usr/lib/systemd/system", unitdir)
    providers = re.search(r"Providers: (.*)", subprocess.run(
        [str(installed_root / "usr/bin/metadata-agent"), "--help"], capture_output=True, text=True).stdout).group(1).split()
    names = []
    for u in load(doc)["systemd"]["units"]:
        if u.get("contents"):
            # A unit the snippet writes itself (e.g. a config drive's .mount) is checked with the others.
            (unitdir / u["name"]).write_text(u["contents"])
            names.append(u["name"])
        if not u.get("dropins") or not installed_unit(installed_root, u["name"]).exists():
            continue  # drop-ins for Flatcar's own units (sshd, docker) cannot be checked here
        for d in u["dropins"]:
            (unitdir / f"{u['name']}.d").mkdir(exist_ok=True)
            (unitdir / f"{u['name']}.d" / d["name"]).write_text(d["contents"])
            for env in re.findall(r"COREOS_METADATA_OPT_PROVIDER=--provider=(\S+)", d["contents"]):
                assert env in providers, f"{u['name']}: provider {env} is not one metadata-agent knows"
        names.append(u["name"].replace("@.", "@core."))
    if not names:
        pytest.skip("only drop-ins for units this suite does not install")
    env = {"SYSTEMD_UNIT_PATH": f"{unitdir}:", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    problems = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and not (
        (m := re.search(r"Command (\S+) is not executable", l))
        and (m.group(1) in FLATCAR_TOOLS or (installed_root / m.group(1).lstrip("/")).is_file()))]
    assert not problems, "\n".join(problems)
    # Informational: the exposure of the unit with the drop-in (a config-drive drop-in costs some).
    for n in (n for n in names if n.endswith(".service")):
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", n],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout)
        assert m, f"no exposure for {n} with {doc.name}: {r.stdout[-1500:]} {r.stderr[-1500:]}"
        SCORES[f"{n} + {doc.name}"] = float(m.group(1))


HARDENING_DOCS = [d for d in DOCS if any(p.startswith("/etc/switchyard/hardening.conf") for p in files_of(load(d)))]


@pytest.mark.parametrize("doc", HARDENING_DOCS, ids=lambda d: d.name)
def test_hardening_conf_is_accepted(doc, installed_root, tmp_path):
    """hardening reads the configuration the snippet writes: audit exits 0 (compliant) or 2 (not
    compliant), never 1 (a configuration error)."""
    for path, f in files_of(load(doc)).items():
        dst = tmp_path / path.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(f["contents"]["inline"])
    r = subprocess.run([str(installed_root / "usr/bin/hardening"), f"--root={tmp_path}", "audit"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode in (0, 2), f"hardening rejected {doc.name}: {r.stderr}"


MOUNT_DOCS = [d for d in DOCS if any(u["name"].endswith(".mount") for u in load(d).get("systemd", {}).get("units", []))]


@pytest.mark.parametrize("doc", MOUNT_DOCS, ids=lambda d: d.name)
def test_mount_units_are_the_generators(doc, installed_root, tmp_path):
    """A snippet that writes config drive mounts writes what the installed metadata-agent-generator writes
    for the provider it names (only the generator's comment line differs), and its drop-ins want and
    follow exactly those mounts."""
    units = load(doc)["systemd"]["units"]
    provider = {p for u in units for d in u.get("dropins", [])
                for p in re.findall(r"COREOS_METADATA_OPT_PROVIDER=--provider=(\S+)", d["contents"])}
    assert len(provider) == 1, f"{doc.name} names {provider}"
    provider = provider.pop()
    gens = list(installed_root.glob("usr/lib/systemd/system-generators/metadata-agent-generator"))
    assert gens, "metadata-agent-generator is not installed"
    (tmp_path / "cmdline").write_text(f"flatcar.oem.id={provider}\n")
    out = tmp_path / "out"
    out.mkdir()
    r = subprocess.run([str(gens[0]), str(out)], env={"SWITCHYARD_METADATA_CMDLINE": str(tmp_path / "cmdline")},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def body(text):
        return "".join(l for l in text.splitlines(keepends=True) if not l.startswith("#"))
    generated = {p.name: body(p.read_text()) for p in out.glob("*.mount")}
    written = {u["name"]: body(u["contents"]) for u in units if u["name"].endswith(".mount")}
    assert written == generated
    for u in units:
        if u["name"].endswith(".device"):
            assert (out / f"{u['name']}.d").is_dir(), f"{u['name']}: the generator writes no drop-in for it"
        for d in u.get("dropins", []):
            if u["name"].startswith("metadata-agent"):
                deps = {k: set(v.split()) for k, v in re.findall(r"^(Wants|After)=(.*)$", d["contents"], re.M)}
                assert deps == {"Wants": set(generated), "After": set(generated)}, f"{u['name']}: {deps}"
