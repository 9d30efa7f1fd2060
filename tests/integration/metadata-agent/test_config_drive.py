"""The unprivileged reader and the mounted config drive: PID 1 mounts the drive with the units of
metadata-agent-generator at /run/metadata-agent/config-drive/LABEL (see test_generator.py); here a
read-only bind mount of the fixtures' drive contents stands in for that mount (this machine has no
systemd as PID 1, and its kernel lacks iso9660 and vfat), at SWITCHYARD_METADATA_CONFIG_DRIVE_DIR/LABEL.
The reader takes a directory only when a file system is mounted on it, tries the labels in the spec's
order, and says clearly what is missing."""
import json
import os
import shutil
import subprocess

import pytest

FIX = "metadata"
FAST = {"SWITCHYARD_METADATA_RETRIES": "2", "SWITCHYARD_METADATA_BACKOFF_MS": "20",
        "SWITCHYARD_METADATA_TIMEOUT": "5"}


@pytest.fixture
def agent(program):
    return program("metadata-agent")


def run(agent, args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_METADATA_") and not k.lower().endswith("_proxy")}
    e.update(FAST)
    e.update(env or {})
    return subprocess.run([str(agent)] + args, env=e, capture_output=True, text=True, timeout=120)


def is_mount_point(path):
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


class Drives:
    """Read-only bind mounts at BASE/LABEL, unmounted on exit."""

    def __init__(self, base):
        if os.geteuid() != 0:
            pytest.skip("bind mounts need root")
        self.base = base
        self.mounted = []

    def mount(self, label, src):
        mnt = self.base / label
        mnt.mkdir(parents=True)
        r = subprocess.run(["mount", "--bind", "-o", "ro", str(src), str(mnt)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"bind mounts are not possible here: {r.stderr.strip()}")
        # Older util-linux makes a bind mount writable first; make it read-only as the drive is.
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
        self.mounted.append(mnt)
        return mnt

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for mnt in reversed(self.mounted):
            subprocess.run(["umount", str(mnt)], check=False)


def uuid_name_expected(fixtures, provider, prefix):
    drive = fixtures / FIX / provider / "config-drive"
    meta = json.loads((drive / "openstack/latest/meta_data.json").read_text())
    return drive, {f"AFTERBURN_{prefix}_INSTANCE_ID": meta["uuid"], f"AFTERBURN_{prefix}_LOCAL_HOSTNAME": meta["name"]}


def cloudstack_tree(tmp_path):
    d = tmp_path / "cloudstack-src"
    meta = d / "cloudstack/metadata"
    meta.mkdir(parents=True)
    values = {"availability_zone": "zone1", "cloud_identifier": "CloudStack-{abc}", "instance_id": "i-2-3-VM",
              "local_hostname": "vm-1", "service_offering": "small", "vm_id": "1234"}
    for k, v in values.items():
        (meta / f"{k}.txt").write_text(v + "\n")
    # One trailing newline is dropped (see metadata-agent-cloudstack.c).
    return d, {f"AFTERBURN_CLOUDSTACK_{k.upper()}": v for k, v in values.items()}


@pytest.mark.parametrize("provider,prefix", [("powervs", "POWERVS"), ("ibmcloud-classic", "IBMCLOUD_CLASSIC")])
def test_reader_uses_only_a_mounted_directory(agent, fixtures_dir, tmp_path, provider, prefix):
    """A plain directory with the drive's files is no drive: the error names the labels, the type and the
    directory. Mounted there, it is read; --config-drive still names another directory."""
    drive, want = uuid_name_expected(fixtures_dir, provider, prefix)
    base = tmp_path / "config-drive"
    env = {"SWITCHYARD_METADATA_CONFIG_DRIVE_DIR": str(base)}
    shutil.copytree(drive, base / "config-2")
    p = run(agent, ["--provider", provider, "--json"], env=env)
    assert p.returncode == 1
    fstype = "vfat" if provider == "ibmcloud-classic" else "iso9660"
    assert f"No {provider} config drive (label config-2, {fstype}) is mounted at {base}/LABEL" in p.stderr
    assert "metadata-agent-generator(8)" in p.stderr
    shutil.rmtree(base)
    with Drives(base) as d:
        d.mount("config-2", drive)
        p = run(agent, ["--provider", provider, "--json"], env=env)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["attributes"] == want
        p = run(agent, ["--provider", provider, "--json", "--config-drive", str(tmp_path / "nowhere")], env=env)
        assert p.returncode == 1 and f"{tmp_path / 'nowhere'}" in p.stderr


def test_kubevirt_labels_in_order(agent, fixtures_dir, tmp_path):
    """kubevirt: config-2 (ConfigDrive format) wins over cidata (NoCloud) when both are mounted; cidata alone
    is read when config-2 is absent (its mount unit then found no device)."""
    base = tmp_path / "config-drive"
    env = {"SWITCHYARD_METADATA_CONFIG_DRIVE_DIR": str(base)}
    with Drives(base) as d:
        d.mount("cidata", fixtures_dir / FIX / "kubevirt/nocloud_v1")
        p = run(agent, ["--provider", "kubevirt", "--json"], env=env)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["attributes"] == {
            "AFTERBURN_KUBEVIRT_INSTANCE_ID": "5d307ca9-b3ef-428c-8861-06e72d69f223",
            "AFTERBURN_KUBEVIRT_HOSTNAME": "test-nocloud-v1.foo.cloud"}
        d.mount("config-2", fixtures_dir / FIX / "kubevirt/config_drive")
        p = run(agent, ["--provider", "kubevirt", "--json"], env=env)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["attributes"] == {
            "AFTERBURN_KUBEVIRT_INSTANCE_ID": "5d307ca9-b3ef-428c-8861-06e72d69f223",
            "AFTERBURN_KUBEVIRT_HOSTNAME": "test_instance-kubevirt.foo.cloud",
            "AFTERBURN_KUBEVIRT_INSTANCE_TYPE": "some_type"}


def test_cloudstack_upper_case_label(agent, tmp_path):
    """cloudstack-configdrive reads CONFIG-2 when config-2 is not mounted (an empty config-2 directory, as
    a mount point left behind, is not a drive)."""
    src, want = cloudstack_tree(tmp_path)
    base = tmp_path / "config-drive"
    (base / "config-2").mkdir(parents=True)
    env = {"SWITCHYARD_METADATA_CONFIG_DRIVE_DIR": str(base)}
    with Drives(base) as d:
        d.mount("CONFIG-2", src)
        p = run(agent, ["--provider", "cloudstack-configdrive", "--json"], env=env)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["attributes"] == want
    p = run(agent, ["--provider", "cloudstack-configdrive", "--json"], env=env)
    assert p.returncode == 1
    assert f"No cloudstack-configdrive config drive (label config-2 or CONFIG-2, iso9660) is mounted at {base}/LABEL" in p.stderr


def test_openstack_falls_back_to_the_metadata_service(agent, tmp_path):
    """openstack's drive is optional: without it the metadata service is asked (unreachable here, so the
    run fails on the service, not on the drive)."""
    p = run(agent, ["--provider", "openstack", "--json"],
            env={"SWITCHYARD_METADATA_CONFIG_DRIVE_DIR": str(tmp_path / "none"),
                 "SWITCHYARD_METADATA_URL_OPENSTACK": "http://127.0.0.1:9"})
    assert f"No openstack config drive (label config-2, iso9660) is mounted at {tmp_path / 'none'}/LABEL" in p.stderr
    assert "127.0.0.1:9" in p.stderr


def test_kubevirt_and_proxmoxve_without_drive_are_noops(agent, tmp_path):
    for provider in ("kubevirt", "proxmoxve"):
        out = tmp_path / f"attrs-{provider}"
        p = run(agent, ["--provider", provider, "--attributes", str(out)],
                env={"SWITCHYARD_METADATA_CONFIG_DRIVE_DIR": str(tmp_path / "none")})
        assert p.returncode == 0, p.stderr
        assert f"is mounted at {tmp_path / 'none'}/LABEL" in p.stderr and out.read_text() == ""


def test_mount_verbs_are_gone(agent, tmp_path):
    """Nothing of metadata-agent mounts any more (PID 1 does)."""
    for verb in ("mount-config-drive", "umount-config-drive"):
        p = run(agent, [verb, "--provider", "openstack"])
        assert p.returncode == 1 and f'Unknown command "{verb}"' in p.stderr
