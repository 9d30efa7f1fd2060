"""metadata-agent-generator, run as systemd runs it (three output directories) with a fake kernel command
line: the exact .mount units, device drop-ins and reader drop-ins it writes for every config-drive
provider (labels and types from spec §4.5 and the provider sections), nothing for any other provider,
unit names escaped exactly as `systemd-escape --path` escapes them, and `systemd-analyze verify` accepts
the mounts with the real units and the drop-ins laid over them.

Not tested here: PID 1 actually mounting a drive (there is no systemd as PID 1 on this machine, and its
kernel has neither iso9660 nor vfat). test_config_drive.py reads bind-mounted directories instead."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import SOURCE_DIR, need_tool

GEN = "src/metadata-agent/metadata-agent-generator"
DIR = "/run/metadata-agent/config-drive"
READERS = ["metadata-agent.service", "metadata-agent-sshkeys@.service", "metadata-agent-varlink.service"]

# spec §5.7, §5.11, §5.13, §5.14, §5.19, §5.20: provider -> (labels in the order they are tried, type)
DRIVES = {
    "cloudstack-configdrive": (["config-2", "CONFIG-2"], "iso9660"),
    "ibmcloud": (["cidata"], "iso9660"),
    "ibmcloud-classic": (["config-2"], "vfat"),
    "kubevirt": (["config-2", "cidata"], "iso9660"),
    "openstack": (["config-2"], "iso9660"),
    "powervs": (["config-2"], "iso9660"),
    "proxmoxve": (["cidata"], "iso9660"),
}
# The unit names, escaped by hand from systemd.unit(5)'s rules ('-' is \x2d, '/' becomes '-').
MOUNT_NAME = {"config-2": r"run-metadata\x2dagent-config\x2ddrive-config\x2d2.mount",
              "CONFIG-2": r"run-metadata\x2dagent-config\x2ddrive-CONFIG\x2d2.mount",
              "cidata": r"run-metadata\x2dagent-config\x2ddrive-cidata.mount"}
DEVICE_NAME = {"config-2": r"dev-disk-by\x2dlabel-config\x2d2.device",
               "CONFIG-2": r"dev-disk-by\x2dlabel-CONFIG\x2d2.device",
               "cidata": r"dev-disk-by\x2dlabel-cidata.device"}


@pytest.fixture
def gen(program):
    return program(GEN)


def run_gen(gen, tmp_path, cmdline, args=None, env=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    cl = tmp_path / "cmdline"
    cl.write_text(cmdline + "\n")
    out = tmp_path / "out"
    dirs = [out / "normal", out / "early", out / "late"]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    e = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    e["SWITCHYARD_METADATA_CMDLINE"] = str(cl)
    e.update(env or {})
    r = subprocess.run([str(gen)] + (args if args is not None else [str(d) for d in dirs]), env=e,
                       capture_output=True, text=True, timeout=30)
    return r, dirs


def tree(d):
    return {str(p.relative_to(d)): p.read_text() for p in sorted(d.rglob("*")) if p.is_file()}


def expected(provider):
    labels, fstype = DRIVES[provider]
    opts = "uid=0,gid=0,fmask=0333,dmask=0222" if fstype == "vfat" else "mode=0444,dmode=0555"
    virtio = "Wants=modprobe@virtio_blk.service\nAfter=modprobe@virtio_blk.service\n" if provider == "kubevirt" else ""
    files = {}
    for label in labels:
        files[MOUNT_NAME[label]] = (
            f"# Written by metadata-agent-generator: the {provider} config drive (label {label}).\n"
            "[Unit]\n"
            f"Description=Metadata Agent config drive {label}\n"
            "Documentation=man:metadata-agent-generator(8)\n"
            "StopWhenUnneeded=yes\n"
            f"{virtio}"
            "\n"
            "[Mount]\n"
            f"What=/dev/disk/by-label/{label}\n"
            f"Where={DIR}/{label}\n"
            f"Type={fstype}\n"
            f"Options=ro,nosuid,nodev,noexec,nofail,{opts}\n"
            "DirectoryMode=0755\n")
        files[f"{DEVICE_NAME[label]}.d/50-metadata-agent-device-timeout.conf"] = (
            "# Written by metadata-agent-generator: a config drive is attached before boot.\n"
            "[Unit]\n"
            "JobRunningTimeoutSec=10s\n")
    mounts = " ".join(MOUNT_NAME[l] for l in labels)
    for reader in READERS:
        files[f"{reader}.d/50-metadata-agent-config-drive.conf"] = (
            f"# Written by metadata-agent-generator: the {provider} config drive.\n"
            "[Unit]\n"
            f"Wants={mounts}\n"
            f"After={mounts}\n")
    return files


def known_providers(program):
    r = subprocess.run([str(program("metadata-agent")), "--help"], capture_output=True, text=True)
    return re.search(r"Providers: (.*)", r.stdout).group(1).split()


def test_every_config_drive_provider_is_covered(program):
    """The table above names exactly the providers whose spec section has a config drive, and all exist."""
    assert set(DRIVES) <= set(known_providers(program))


@pytest.mark.parametrize("provider", sorted(DRIVES))
@pytest.mark.parametrize("key", ["flatcar.oem.id", "coreos.oem.id", "ignition.platform.id"])
def test_config_drive_provider_units(gen, tmp_path, provider, key):
    r, (normal, early, late) = run_gen(gen, tmp_path, f"BOOT_IMAGE=/flatcar/vmlinuz-a {key}={provider} root=LABEL=ROOT")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert tree(normal) == expected(provider)
    assert tree(early) == {} and tree(late) == {}


def test_cmdline_precedence_is_metadata_agents(gen, tmp_path):
    """flatcar.oem.id wins over coreos.oem.id and ignition.platform.id, an empty value does not count,
    exactly as `metadata-agent --cmdline` decides."""
    r, (normal, _, _) = run_gen(gen, tmp_path, "ignition.platform.id=openstack flatcar.oem.id=ec2")
    assert r.returncode == 0 and tree(normal) == {}
    r, (normal, _, _) = run_gen(gen, tmp_path / "2", "flatcar.oem.id= coreos.oem.id=proxmoxve ignition.platform.id=ec2")
    assert r.returncode == 0 and tree(normal) == expected("proxmoxve")


@pytest.mark.parametrize("provider", ["ec2", "aws", "gce", "azure", "digitalocean", "packet", "hetzner",
                                      "openstack-metadata", "cloudstack-metadata", "cloudstack", "qemu", "metal",
                                      "no-such-provider"])
def test_other_providers_generate_nothing(gen, tmp_path, program, provider):
    r, dirs = run_gen(gen, tmp_path, f"console=ttyS0 flatcar.oem.id={provider}")
    assert r.returncode == 0, r.stderr
    assert all(tree(d) == {} for d in dirs)


def test_every_other_known_provider_generates_nothing(gen, tmp_path, program):
    for i, provider in enumerate(p for p in known_providers(program) if p not in DRIVES):
        r, dirs = run_gen(gen, tmp_path / str(i), f"flatcar.oem.id={provider}")
        assert r.returncode == 0, r.stderr
        assert all(tree(d) == {} for d in dirs), provider


def test_no_provider_on_the_command_line(gen, tmp_path):
    r, dirs = run_gen(gen, tmp_path, "BOOT_IMAGE=/flatcar/vmlinuz-a mount.usr=/dev/mapper/usr root=LABEL=ROOT")
    assert r.returncode == 0 and r.stderr == ""
    assert all(tree(d) == {} for d in dirs)
    r, dirs = run_gen(gen, tmp_path / "debug", "quiet", env={"SWITCHYARD_LOG_LEVEL": "debug"})
    assert r.returncode == 0 and "No flatcar.oem.id=, coreos.oem.id= or ignition.platform.id=" in r.stderr


def test_names_escaped_as_systemd_escapes_them(gen, tmp_path):
    """The real systemd-escape agrees with every name written (CONFIG-2: '-' is \\x2d)."""
    escape = need_tool("systemd-escape")
    r, (normal, _, _) = run_gen(gen, tmp_path, "flatcar.oem.id=cloudstack-configdrive")
    assert r.returncode == 0, r.stderr
    for label in ("config-2", "CONFIG-2"):
        mount = subprocess.run([escape, "--path", "--suffix=mount", f"{DIR}/{label}"], capture_output=True, text=True,
                               check=True).stdout.strip()
        device = subprocess.run([escape, "--path", "--suffix=device", f"/dev/disk/by-label/{label}"],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert (normal / mount).is_file(), f"{mount} not written: {sorted(tree(normal))}"
        assert (normal / f"{device}.d").is_dir()
        # ... and systemd-escape --unescape gives the mount point back.
        back = subprocess.run([escape, "--unescape", "--path", mount[: -len(".mount")]], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert back == f"{DIR}/{label}"
    assert r"CONFIG\x2d2" in "".join(tree(normal))


@pytest.mark.parametrize("provider", sorted(DRIVES))
def test_systemd_analyze_verify(gen, tmp_path, provider):
    """systemd itself loads the generated mounts next to the real units with the drop-ins applied: it checks
    every directive and that each mount unit's name matches its Where=."""
    need_tool("systemd-analyze")
    r, (normal, _, _) = run_gen(gen, tmp_path, f"flatcar.oem.id={provider}")
    assert r.returncode == 0, r.stderr
    units = tmp_path / "units"
    units.mkdir()
    for p in (SOURCE_DIR / "units/metadata-agent").iterdir():
        if p.name.endswith((".service", ".socket")):
            shutil.copy(p, units / p.name)

    def verify(names):
        env = {"SYSTEMD_UNIT_PATH": f"{normal}:{units}:", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
               "SYSTEMD_LOG_LEVEL": "notice"}
        v = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True, text=True,
                           env=env, cwd=tmp_path)
        # The programs are not installed in /usr/bin on this machine; everything else must be clean.
        return [l for l in (v.stdout + v.stderr).splitlines() if l.strip() and not re.search(
            r"Command /usr/bin/(metadata-agent|update-ssh-keys) is not executable", l)]

    mounts = [str(normal / MOUNT_NAME[l]) for l in DRIVES[provider][0]]
    readers = ["metadata-agent.service", "metadata-agent-sshkeys@core.service", "metadata-agent-varlink.service"]
    assert verify(mounts + readers) == []
    # The drop-ins are really read: a bad directive in one is reported.
    dropin = normal / "metadata-agent.service.d/50-metadata-agent-config-drive.conf"
    dropin.write_text(dropin.read_text() + "NoSuchDirective=1\n")
    assert any("NoSuchDirective" in l for l in verify(readers)), "verify did not read the drop-in"
    # So is the mount's name checked against Where=.
    (normal / MOUNT_NAME[DRIVES[provider][0][0]]).rename(normal / "run-elsewhere.mount")
    assert any("doesn't match unit name" in l for l in verify([str(normal / "run-elsewhere.mount")]))


def test_usage_errors(gen, tmp_path):
    r, _ = run_gen(gen, tmp_path, "flatcar.oem.id=openstack", args=[])
    assert r.returncode == 1 and "Expected 1 or 3 output directories" in r.stderr
    r, _ = run_gen(gen, tmp_path, "flatcar.oem.id=openstack", args=[str(tmp_path / "missing")])
    assert r.returncode == 1 and f"Output directory {tmp_path / 'missing'}" in r.stderr
    r, (normal, _, _) = run_gen(gen, tmp_path, "", env={"SWITCHYARD_METADATA_CMDLINE": str(tmp_path / "nope")},
                                args=[str(tmp_path / "out/normal")])
    assert r.returncode == 1
    assert f"Failed to read the kernel command line from {tmp_path / 'nope'}" in r.stderr
    assert tree(normal) == {}
    # A single output directory (as systemd-analyze and older callers may pass) is enough.
    r, (normal, _, _) = run_gen(gen, tmp_path / "one", "flatcar.oem.id=powervs", args=[str(tmp_path / "one/out/normal")])
    assert r.returncode == 0 and tree(normal) == expected("powervs")
    h = subprocess.run([str(gen), "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "NORMAL-DIR" in h.stdout and "--version" in h.stdout
    v = subprocess.run([str(gen), "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and re.fullmatch(r"metadata-agent-generator \S+\n", v.stdout)
