"""Config drives as real block devices: iso9660 (genisoimage) and vfat (mkfs.vfat + mtools) images of the
fixtures' drive contents, attached read-only with losetup, found by label with libblkid by
`metadata-agent mount-config-drive` (no /dev/disk/by-label needed), mounted, read by the unprivileged
`metadata-agent` from the mount point, and unmounted again by `umount-config-drive`."""
import json
import os
import pathlib
import shutil
import subprocess
import uuid

import pytest

from conftest import need_tool

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


def kernel_has(fstype):
    return any(line.split()[-1] == fstype for line in pathlib.Path("/proc/filesystems").read_text().splitlines() if line.strip())


def need_root():
    if os.geteuid() != 0:
        pytest.skip("attaching loop devices and mounting needs root")


def is_mount_point(path):
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def blkid_label_taken(label):
    """True if some device of this machine already carries the label (the test would be ambiguous)."""
    return subprocess.run([need_tool("blkid"), "--cache-file", "/dev/null", "-L", label],
                          capture_output=True).returncode == 0


def build_image(tmp_path, src, label, fstype):
    img = tmp_path / f"drive-{uuid.uuid4().hex[:8]}.img"
    if fstype == "iso9660":
        # As OpenStack Nova writes its config drives: Rock Ridge and Joliet.
        subprocess.run([need_tool("genisoimage"), "-quiet", "-J", "-r", "-V", label, "-o", str(img), str(src)], check=True)
    else:
        mkfs, mcopy = need_tool("mkfs.vfat"), need_tool("mcopy")
        subprocess.run(["truncate", "-s", "4M", str(img)], check=True)
        subprocess.run([mkfs, "-n", label, str(img)], check=True, capture_output=True)
        for entry in sorted(pathlib.Path(src).iterdir()):
            subprocess.run([mcopy, "-s", "-i", str(img), str(entry), "::/"], check=True,
                           env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    return img


class Loop:
    """A read-only loop device on an image, detached on exit."""

    def __init__(self, image):
        need_root()
        losetup = need_tool("losetup")
        r = subprocess.run([losetup, "--show", "-f", "-r", str(image)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"no loop device available here: {r.stderr.strip()}")
        self.dev = r.stdout.strip()
        self.losetup = losetup

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run([self.losetup, "-d", self.dev], check=False)


def cloudstack_tree(tmp_path):
    d = tmp_path / "cloudstack-src"
    meta = d / "cloudstack/metadata"
    meta.mkdir(parents=True)
    values = {"availability_zone": "zone1", "cloud_identifier": "CloudStack-{abc}", "instance_id": "i-2-3-VM",
              "local_hostname": "vm-1", "service_offering": "small", "vm_id": "1234"}
    for k, v in values.items():
        (meta / f"{k}.txt").write_text(v + "\n")
    return d, {f"AFTERBURN_CLOUDSTACK_{k.upper()}": v for k, v in values.items()}


def openstack_expected(fixtures):
    drive = fixtures / FIX / "openstack/config-drive"
    meta = json.loads((drive / "openstack/latest/meta_data.json").read_text())
    ec2 = json.loads((drive / "ec2/latest/meta-data.json").read_text())
    want = {"AFTERBURN_OPENSTACK_HOSTNAME": meta["hostname"], "AFTERBURN_OPENSTACK_INSTANCE_UUID": meta["uuid"],
            "AFTERBURN_OPENSTACK_INSTANCE_ID": ec2["instance-id"],
            "AFTERBURN_OPENSTACK_INSTANCE_TYPE": ec2["instance-type"],
            "AFTERBURN_OPENSTACK_IPV4_LOCAL": ec2["local-ipv4"], "AFTERBURN_OPENSTACK_IPV4_PUBLIC": ec2["public-ipv4"]}
    return drive, {k: v for k, v in want.items() if v is not None}


def uuid_name_expected(fixtures, provider, prefix):
    drive = fixtures / FIX / provider / "config-drive"
    meta = json.loads((drive / "openstack/latest/meta_data.json").read_text())
    return drive, {f"AFTERBURN_{prefix}_INSTANCE_ID": meta["uuid"], f"AFTERBURN_{prefix}_LOCAL_HOSTNAME": meta["name"]}


# (case id, provider, label, fstype, function(fixtures_dir, tmp_path) -> (source tree, attributes the spec gives))
CASES = [
    ("openstack", "openstack", "config-2", "iso9660", lambda f, t: openstack_expected(f)),
    ("kubevirt-config-2", "kubevirt", "config-2", "iso9660", lambda f, t: (f / FIX / "kubevirt/config_drive", {
        "AFTERBURN_KUBEVIRT_INSTANCE_ID": "5d307ca9-b3ef-428c-8861-06e72d69f223",
        "AFTERBURN_KUBEVIRT_HOSTNAME": "test_instance-kubevirt.foo.cloud",
        "AFTERBURN_KUBEVIRT_INSTANCE_TYPE": "some_type"})),
    ("kubevirt-cidata", "kubevirt", "cidata", "iso9660", lambda f, t: (f / FIX / "kubevirt/nocloud_v1", {
        "AFTERBURN_KUBEVIRT_INSTANCE_ID": "5d307ca9-b3ef-428c-8861-06e72d69f223",
        "AFTERBURN_KUBEVIRT_HOSTNAME": "test-nocloud-v1.foo.cloud"})),
    ("proxmoxve", "proxmoxve", "cidata", "iso9660", lambda f, t: (f / FIX / "proxmoxve/static", {
        "AFTERBURN_PROXMOXVE_INSTANCE_ID": "15a9919cb91024fbd1d70fa07f0efa749cbba03b",
        "AFTERBURN_PROXMOXVE_HOSTNAME": "dummy",
        "AFTERBURN_PROXMOXVE_IPV4": "192.168.1.1",
        "AFTERBURN_PROXMOXVE_IPV6": "2001:db8:85a3::8a2e:370:0"})),
    ("powervs", "powervs", "config-2", "iso9660", lambda f, t: uuid_name_expected(f, "powervs", "POWERVS")),
    ("ibmcloud-classic", "ibmcloud-classic", "config-2", "vfat",
     lambda f, t: uuid_name_expected(f, "ibmcloud-classic", "IBMCLOUD_CLASSIC")),
    ("cloudstack-CONFIG-2", "cloudstack-configdrive", "CONFIG-2", "iso9660", lambda f, t: cloudstack_tree(t)),
]


@pytest.mark.parametrize("case,provider,label,fstype,make", CASES, ids=[c[0] for c in CASES])
def test_drive_found_by_label_mounted_read_and_unmounted(agent, fixtures_dir, tmp_path, case, provider, label, fstype,
                                                         make):
    src, want = make(fixtures_dir, tmp_path)
    for other in ("config-2", "CONFIG-2", "cidata"):
        if blkid_label_taken(other):
            pytest.skip(f"a device of this machine already has the label {other}")
    img = build_image(tmp_path, src, label, fstype)
    mnt = tmp_path / "run/metadata-agent/config-drive"
    with Loop(img) as loop:
        cmdline = tmp_path / "cmdline"
        cmdline.write_text(f"BOOT_IMAGE=/vmlinuz flatcar.oem.id={provider} root=LABEL=ROOT\n")
        r = run(agent, ["mount-config-drive", "--cmdline", "--cmdline-file", str(cmdline), "--config-drive", str(mnt)])
        try:
            if not kernel_has(fstype):
                # libblkid found the loop device by its label and type; only the kernel cannot mount it.
                assert r.returncode == 1, r.stderr
                assert f"Failed to mount {loop.dev} (label {label}) as {fstype} on {mnt}" in r.stderr
                assert "the kernel has no such file system type" in r.stderr
                assert not mnt.exists(), "a failed mount leaves no mount point behind"
                pytest.skip(f"this kernel has no {fstype} (/proc/filesystems): found {loop.dev} by label {label}, "
                            "but reading the mounted drive is not exercised here")
            assert r.returncode == 0, r.stderr
            assert f"{loop.dev} (label {label}, {fstype}) read-only on {mnt}" in r.stderr
            assert is_mount_point(mnt)
            opts = subprocess.run(["findmnt", "-n", "-o", "OPTIONS,FSTYPE,SOURCE", str(mnt)], capture_output=True,
                                  text=True, check=True).stdout.split()
            assert {"ro", "nosuid", "nodev", "noexec"} <= set(opts[0].split(",")) and opts[1] == fstype
            assert mnt.stat().st_mode & 0o005 == 0o005, "the unprivileged readers can list the drive"
            assert (mnt.parent.stat().st_mode & 0o777) == 0o755
            # The unprivileged program reads the drive from the default place (redirected for the test).
            p = run(agent, ["--provider", provider, "--json"], env={"SWITCHYARD_METADATA_CONFIG_DRIVE_DIR": str(mnt)})
            assert p.returncode == 0, p.stderr
            assert json.loads(p.stdout)["attributes"] == want
            # Mounting again is a no-op.
            r2 = run(agent, ["mount-config-drive", "--provider", provider, "--config-drive", str(mnt)])
            assert r2.returncode == 0 and "already mounted" in r2.stderr
        finally:
            u = run(agent, ["umount-config-drive", "--config-drive", str(mnt)])
        assert u.returncode == 0, u.stderr
        assert not mnt.exists() and not is_mount_point(mnt)


def test_vfat_label_lookup_is_exact_about_type(agent, fixtures_dir, tmp_path):
    """A drive with the right label but another file system is ignored (with a warning) and is no error:
    ibmcloud-classic wants vfat, proxmoxve's cidata must be iso9660."""
    if blkid_label_taken("cidata"):
        pytest.skip("a device of this machine already has the label cidata")
    img = build_image(tmp_path, fixtures_dir / FIX / "proxmoxve/static", "cidata", "vfat")
    mnt = tmp_path / "cd"
    with Loop(img) as loop:
        r = run(agent, ["mount-config-drive", "--provider", "proxmoxve", "--config-drive", str(mnt)])
    assert r.returncode == 0, r.stderr
    assert f"{loop.dev} has the label cidata but holds vfat, not iso9660" in r.stderr
    assert "no config drive to mount" in r.stderr and not mnt.exists()


@pytest.mark.parametrize("provider,labels", [("proxmoxve", ["cidata"]), ("openstack", ["config-2"]),
                                             ("cloudstack-configdrive", ["config-2", "CONFIG-2"])])
def test_no_drive_mounts_nothing_and_succeeds(agent, tmp_path, provider, labels):
    for label in labels:
        if blkid_label_taken(label):
            pytest.skip(f"a device of this machine has the label {label}")
    mnt = tmp_path / "run/metadata-agent/config-drive"
    r = run(agent, ["mount-config-drive", "--provider", provider, "--config-drive", str(mnt)])
    assert r.returncode == 0, r.stderr
    assert f"No block device has the label {' or '.join(labels)}" in r.stderr
    assert not mnt.exists()


def test_provider_without_drive_and_umount_without_mount(agent, tmp_path):
    r = run(agent, ["mount-config-drive", "--provider", "aws", "--config-drive", str(tmp_path / "cd")])
    assert r.returncode == 0 and "reads no config drive" in r.stderr and not (tmp_path / "cd").exists()
    r = run(agent, ["umount-config-drive", "--config-drive", str(tmp_path / "cd")])
    assert r.returncode == 0 and "Nothing is mounted" in r.stderr
    (tmp_path / "cd").mkdir()
    r = run(agent, ["umount-config-drive", "--config-drive", str(tmp_path / "cd")])
    assert r.returncode == 0 and not (tmp_path / "cd").exists(), "an empty leftover mount point is removed"
    r = run(agent, ["mount-config-drive", "--config-drive", str(tmp_path / "cd")])
    assert r.returncode == 1 and "--provider" in r.stderr


@pytest.mark.parametrize("provider,src,prefix", [("powervs", "powervs/config-drive", "POWERVS"),
                                                 ("ibmcloud-classic", "ibmcloud-classic/config-drive", "IBMCLOUD_CLASSIC")])
def test_reader_uses_only_a_mounted_directory(agent, fixtures_dir, tmp_path, provider, src, prefix):
    """The reader takes the default directory only when a file system is mounted there (a bind mount
    stands in for the drive, which this kernel may not be able to mount); a plain directory with the
    same files is no drive, and the error names the directory and the labels. umount-config-drive
    unmounts it and removes the mount point."""
    need_root()
    drive, want = uuid_name_expected(fixtures_dir, provider, prefix)
    mnt = tmp_path / "config-drive"
    shutil.copytree(drive, mnt)
    env = {"SWITCHYARD_METADATA_CONFIG_DRIVE_DIR": str(mnt)}
    p = run(agent, ["--provider", provider, "--json"], env=env)
    assert p.returncode == 1
    assert f"No {provider} config drive (label config-2, " in p.stderr and f"is mounted at {mnt}" in p.stderr
    shutil.rmtree(mnt)
    mnt.mkdir()
    r = subprocess.run(["mount", "--bind", "-o", "ro", str(drive), str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"bind mounts are not possible here: {r.stderr.strip()}")
    try:
        p = run(agent, ["--provider", provider, "--json"], env=env)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["attributes"] == want
        # --config-drive still overrides the default place.
        p = run(agent, ["--provider", provider, "--json", "--config-drive", str(tmp_path / "nowhere")], env=env)
        assert p.returncode == 1 and f"{tmp_path / 'nowhere'}" in p.stderr
    finally:
        u = run(agent, ["umount-config-drive", "--config-drive", str(mnt)])
    assert u.returncode == 0, u.stderr
    assert not is_mount_point(mnt) and not mnt.exists()


def test_kubevirt_and_proxmoxve_without_drive_are_noops(agent, tmp_path):
    for provider in ("kubevirt", "proxmoxve"):
        out = tmp_path / f"attrs-{provider}"
        p = run(agent, ["--provider", provider, "--attributes", str(out)],
                env={"SWITCHYARD_METADATA_CONFIG_DRIVE_DIR": str(tmp_path / "none")})
        assert p.returncode == 0, p.stderr
        assert f"is mounted at {tmp_path / 'none'}" in p.stderr and out.read_text() == ""
