"""A hostile root is never written through: every case is reported, nothing outside the root (or
at the contested path) changes, and the other measures still apply."""
import json
import os
import subprocess

import pytest

import flatcar_root
from hardening_helpers import Hardening, froot, hardening  # noqa: F401


def statuses(report):
    return {m["name"]: m["status"] for m in report["measures"]}


def reasons(report, name):
    return " | ".join(next(m for m in report["measures"] if m["name"] == name).get("reasons", []))


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "outside"
    d.mkdir()
    (d / "victim").write_text("do not touch\n")
    return d


def test_unit_dir_symlink_pointing_outside(hardening, froot, outside):
    sysdir = froot / "etc/systemd/system"
    sysdir.rmdir()
    os.symlink(str(outside), sysdir)
    outside_before = flatcar_root.tree_state(outside)
    rc, rep = hardening.json("apply")
    assert rc == 2
    st = statuses(rep)
    assert st["sshd-socket"] == "conflict" and st["docker-socket"] == "conflict"
    assert f"/etc/systemd/system is a symlink to {outside}; not following it" in reasons(rep, "sshd-socket")
    # Measures that do not go through the symlink were applied.
    assert st["core-sudo"] == "applied" and st["selinux"] == "applied"
    assert flatcar_root.tree_state(outside) == outside_before
    rc, rep = hardening.json("audit")
    assert rc == 2 and statuses(rep)["sshd-socket"] == "not-compliant"
    # Revert still restores what was applied.
    hardening.run("revert", check=0)
    assert flatcar_root.tree_state(outside) == outside_before


def test_relative_symlink_climbing_out(hardening, froot, outside):
    d = froot / "etc/sudoers.d"
    d.rmdir()
    os.symlink("../../outside", d)  # root/etc/sudoers.d -> tmp/outside
    assert (froot / "etc/sudoers.d/victim").exists()
    rc, rep = hardening.json("apply", "core-sudo")
    assert rc == 2 and statuses(rep)["core-sudo"] == "conflict"
    assert "/etc/sudoers.d is a symlink to ../../outside" in reasons(rep, "core-sudo")
    assert sorted(os.listdir(outside)) == ["victim"]


def test_leaf_symlink_at_our_path_is_not_followed(hardening, froot, outside):
    d = froot / "etc/systemd/system/docker.socket.d"
    d.mkdir(parents=True)
    os.symlink(str(outside / "victim"), d / "10-restrict.conf")
    rc, rep = hardening.json("apply", "docker-socket")
    assert rc == 2
    assert "is a symlink to" in reasons(rep, "docker-socket")
    assert (outside / "victim").read_text() == "do not touch\n"
    assert os.readlink(d / "10-restrict.conf") == str(outside / "victim")


def test_selinux_config_symlink_escaping_root(hardening, froot, outside):
    (outside / "config").write_text("SELINUX=disabled\n")
    link = froot / "etc/selinux/config"
    link.unlink()
    os.symlink("../../../outside/config", link)
    rc, rep = hardening.json("apply", "selinux")
    assert rc == 2 and statuses(rep)["selinux"] == "conflict"
    assert "points outside the root" in reasons(rep, "selinux")
    assert os.readlink(link) == "../../../outside/config"
    assert (outside / "config").read_text() == "SELINUX=disabled\n"

    # An absolute symlink to something other than /usr (e.g. /etc/shadow) is not copied either.
    link.unlink()
    os.symlink("/etc/shadow", link)
    rc, rep = hardening.json("apply", "selinux")
    assert rc == 2 and "points outside /usr" in reasons(rep, "selinux")


def test_user_file_at_our_path_is_not_clobbered(hardening, froot):
    d = froot / "etc/systemd/system/docker.socket.d"
    d.mkdir(parents=True)
    (d / "10-restrict.conf").write_text("[Socket]\nSocketGroup=wheel\n")
    rc, rep = hardening.json("apply")
    assert rc == 2 and statuses(rep)["docker-socket"] == "conflict"
    assert "already exists with different contents" in reasons(rep, "docker-socket")
    assert (d / "10-restrict.conf").read_text() == "[Socket]\nSocketGroup=wheel\n"
    # The same file with our contents counts as compliant (nothing to do, nothing recorded).
    (d / "10-restrict.conf").write_text("[Socket]\nSocketGroup=root\n")
    rc, rep = hardening.json("apply", "docker-socket", check=0)
    assert statuses(rep)["docker-socket"] == "unchanged"
    hardening.run("revert", check=0)
    assert (d / "10-restrict.conf").read_text() == "[Socket]\nSocketGroup=root\n"


def test_user_override_unit_is_not_masked(hardening, froot):
    (froot / "etc/systemd/system/sshd.socket").write_text("[Socket]\nListenStream=2222\n")
    rc, rep = hardening.json("apply", "sshd-socket")
    assert rc == 2 and "already exists with different contents" in reasons(rep, "sshd-socket")
    assert (froot / "etc/systemd/system/sshd.socket").read_text() == "[Socket]\nListenStream=2222\n"


def test_conflicting_later_dropin_is_reported(hardening, froot):
    d = froot / "etc/systemd/system/docker.socket.d"
    d.mkdir(parents=True)
    (d / "50-user.conf").write_text("[Socket]\nSocketGroup=docker\n")
    rc, rep = hardening.json("apply", "docker-socket")
    assert rc == 2
    assert "50-user.conf sorts after 10-restrict.conf and sets SocketGroup=docker" in reasons(rep, "docker-socket")
    assert not (d / "10-restrict.conf").exists()
    rc, rep = hardening.json("audit", "docker-socket")
    assert rc == 2 and statuses(rep)["docker-socket"] == "not-compliant"
    # A later drop-in in /usr that sets the same group is harmless.
    (d / "50-user.conf").unlink()
    usr = froot / "usr/lib/systemd/system/docker.socket.d"
    usr.mkdir()
    (usr / "90-vendor.conf").write_text("[Socket]\nSocketGroup=root\n")
    hardening.run("apply", "docker-socket", check=0)


def test_later_sudoers_dropin_granting_nopasswd(hardening, froot):
    (froot / "etc/sudoers.d/zz-core").write_text("core ALL=(ALL) NOPASSWD: ALL\n")
    rc, rep = hardening.json("apply", "core-sudo")
    assert rc == 2
    assert "/etc/sudoers.d/zz-core comes after core-passwd and lets core use sudo without a password" in \
        reasons(rep, "core-sudo")
    # An even later entry that asks for a password again settles it.
    (froot / "etc/sudoers.d/zzz-core").write_text("core ALL=(ALL) ALL\n")
    hardening.run("audit", "core-sudo", check=2)  # not applied yet, but no conflict
    rc, rep = hardening.json("apply", "core-sudo", check=0)
    (froot / "etc/sudoers.d/zzz-core").unlink()
    hardening.run("revert", check=0)
    # A NOPASSWD line for core's group after #includedir in /etc/sudoers also counts.
    (froot / "etc/sudoers").write_text(flatcar_root.SUDOERS + "%wheel ALL=(ALL) NOPASSWD: ALL\n")
    (froot / "etc/sudoers.d/zz-core").unlink()
    rc, rep = hardening.json("apply", "core-sudo")
    assert rc == 2 and "/etc/sudoers (after its #includedir)" in reasons(rep, "core-sudo")
    (froot / "etc/sudoers").write_text(flatcar_root.SUDOERS)
    (froot / "etc/sudoers.d/zz-core").write_text("core ALL=(ALL) NOPASSWD: ALL\n")
    # sudo ignores names with a dot: such a file is no conflict.
    os.rename(froot / "etc/sudoers.d/zz-core", froot / "etc/sudoers.d/zz-core.disabled")
    hardening.run("apply", "core-sudo", check=0)


def test_read_only_passwd_is_not_modified(hardening, froot):
    p = froot / "etc/passwd"
    os.chmod(p, 0o444)
    before = p.read_bytes()
    rc, rep = hardening.json("apply")
    assert rc == 2 and statuses(rep)["core-nologin"] == "conflict"
    assert "/etc/passwd is read-only; not modifying it" in reasons(rep, "core-nologin")
    assert p.read_bytes() == before and (p.stat().st_mode & 0o777) == 0o444
    assert statuses(rep)["core-sudo"] == "applied"


def test_immutable_file_is_not_modified(hardening, froot):
    chattr = "/usr/bin/chattr"
    if not os.path.exists(chattr):
        pytest.skip("chattr (e2fsprogs) is not installed")
    p = froot / "usr/share/oem/grub.cfg"
    if subprocess.run([chattr, "+i", str(p)], capture_output=True).returncode != 0:
        pytest.skip("the file system of the temporary directory does not support the immutable attribute")
    try:
        rc, rep = hardening.json("apply", "smt")
        assert rc == 2 and "is read-only" in reasons(rep, "smt")
    finally:
        subprocess.run([chattr, "-i", str(p)], check=True)
    assert p.read_text() == flatcar_root.OEM_GRUB


def test_oem_dir_symlink_outside(hardening, froot, outside):
    oem = froot / "usr/share/oem"
    (oem / "grub.cfg").unlink()
    oem.rmdir()
    (outside / "grub.cfg").write_text("set oem_id=\"evil\"\n")
    os.symlink(str(outside), oem)
    rc, rep = hardening.json("apply", "smt")
    assert rc == 2 and "/usr/share/oem is a symlink" in reasons(rep, "smt")
    assert (outside / "grub.cfg").read_text() == "set oem_id=\"evil\"\n"


def test_state_dir_symlink_outside(hardening, froot, outside):
    os.symlink(str(outside), froot / "var/lib/switchyard")
    p = hardening.run("apply", "usb-storage", check=1)
    assert "hardening record /var/lib/switchyard/hardening/record.json" in p.stderr
    assert "symbolic links" in p.stderr
    assert sorted(os.listdir(outside)) == ["victim"]
    # Nothing is changed without a record to undo it.
    assert not (froot / "etc/modprobe.d/90-hardening-usb-storage.conf").exists()
    # The record directory itself replaced by a symlink after an apply: same refusal on revert.
    os.unlink(froot / "var/lib/switchyard")
    hardening.run("apply", "usb-storage", check=0)
    os.rename(froot / "var/lib/switchyard", froot / "var/lib/switchyard.moved")
    os.symlink(str(outside), froot / "var/lib/switchyard")
    hardening.run("revert", check=1)
    assert sorted(os.listdir(outside)) == ["victim"]


def test_revert_leaves_files_changed_after_apply(hardening, froot):
    hardening.run("apply", check=0)
    d = froot / "etc/systemd/system/docker.socket.d/10-restrict.conf"
    d.write_text("[Socket]\nSocketGroup=admins\n")
    rc, rep = hardening.json("revert")
    assert rc == 2 and rep["remaining"] == 1
    entry = next(p for p in rep["paths"] if p["path"] == "/etc/systemd/system/docker.socket.d/10-restrict.conf")
    assert entry["status"] == "conflict" and "changed after hardening wrote it" in entry["reason"]
    assert d.read_text() == "[Socket]\nSocketGroup=admins\n"
    assert (froot / "etc/passwd").read_text() == flatcar_root.PASSWD
    # Once the admin puts our contents back, revert finishes the job.
    d.write_text("[Socket]\nSocketGroup=root\n")
    rc, rep = hardening.json("revert", check=0)
    assert rep["remaining"] == 0 and not d.exists()


def test_tampered_record_is_refused(hardening, froot):
    hardening.run("apply", check=0)
    rec = froot / "var/lib/switchyard/hardening/record.json"
    good = rec.read_text()
    for bad in ("{not json", json.dumps({"entries": [{"measure": "x", "path": "/../../etc/x", "original": {"type": "absent"},
                                                      "written_sha256": "00" * 32}]}),
                json.dumps({"entries": [{"measure": "x", "path": "/etc/x", "original": {"type": "file", "mode": 420,
                                                                                     "uid": 0, "gid": 0, "data_base64": "!!"},
                                         "written_sha256": "00" * 32}]})):
        rec.write_text(bad)
        p = hardening.run("revert", check=1)
        assert "Hardening record" in p.stderr
    rec.write_text(good)
    hardening.run("revert", check=0)


def test_apply_into_directory_at_file_path(hardening, froot):
    (froot / "etc/sudoers.d/core-passwd").mkdir()
    rc, rep = hardening.json("apply", "core-sudo")
    assert rc == 2 and "/etc/sudoers.d/core-passwd is a directory; not replacing it" in reasons(rep, "core-sudo")


def test_later_sysctl_file_overriding_ours(hardening, froot):
    d = froot / "etc/sysctl.d"
    d.mkdir()
    (d / "99-site.conf").write_text("kernel.kptr_restrict = 1\nvm.swappiness = 10\n")
    rc, rep = hardening.json("apply", "sysctl")
    assert rc == 2
    assert "/etc/sysctl.d/99-site.conf sorts after 90-hardening.conf and sets kernel.kptr_restrict = 1" in \
        reasons(rep, "sysctl")
    # Flatcar's 60-baselayout.conf (kptr_restrict = 1) sorts before ours: no conflict from it.
    (d / "99-site.conf").write_text("vm.swappiness = 10\n")
    hardening.run("apply", "sysctl", check=0)


def test_passwd_symlink_is_not_followed(hardening, froot, outside):
    (outside / "passwd").write_text(flatcar_root.PASSWD)
    (froot / "etc/passwd").unlink()
    os.symlink(str(outside / "passwd"), froot / "etc/passwd")
    rc, rep = hardening.json("apply", "core-nologin", "core-sudo")
    assert rc == 2
    assert statuses(rep) == {"core-sudo": "conflict", "core-nologin": "conflict"}
    assert "/etc/passwd is a symlink" in reasons(rep, "core-nologin")
    assert (outside / "passwd").read_text() == flatcar_root.PASSWD


def test_fifos_are_never_opened(hardening, froot):
    # A drop-in that is a symlink to a fifo, and a selinux config whose target in /usr is a fifo:
    # opening either would hang; both are looked at through O_PATH only.
    d = froot / "etc/systemd/system/docker.socket.d"
    d.mkdir(parents=True)
    os.mkfifo(froot / "fifo")
    os.symlink("/fifo", d / "50-fifo.conf")
    (froot / "usr/lib/selinux/config").unlink()
    os.mkfifo(froot / "usr/lib/selinux/config")
    rc, rep = hardening.json("apply", "docker-socket", "selinux")
    st = statuses(rep)
    assert st["docker-socket"] == "applied"
    assert st["selinux"] == "conflict" and "cannot be read" in reasons(rep, "selinux")
    # A fifo at one of our own paths is reported, not replaced.
    os.mkfifo(froot / "etc/sudoers.d/core-passwd")
    rc, rep = hardening.json("apply", "core-sudo")
    assert rc == 2 and "/etc/sudoers.d/core-passwd is a special file; not replacing it" in reasons(rep, "core-sudo")
