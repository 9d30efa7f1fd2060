"""apply / audit / revert on Flatcar-like roots, checked with Debian's own tools."""
import os
import subprocess

import pytest

import flatcar_root
from hardening_helpers import Hardening, froot, hardening, need_tool  # noqa: F401

GUIDE = ["sshd-socket", "core-sudo", "core-nologin", "docker-socket", "usb-storage", "smt", "selinux"]
STRICT = GUIDE + ["kernel-modules", "sysctl", "coredump", "sshd-config"]


def statuses(report):
    return {m["name"]: m["status"] for m in report["measures"]}


def write_conf(root, text, name=None):
    d = root / "etc/switchyard"
    if name:
        d = d / "hardening.conf.d"
    d.mkdir(parents=True, exist_ok=True)
    (d / (name or "hardening.conf")).write_text(text)


def test_apply_seen_by_systemctl_and_visudo(hardening, froot):
    hardening.run("apply", check=0)

    systemctl = need_tool("systemctl")
    out = subprocess.run([systemctl, f"--root={froot}", "is-enabled", "sshd.socket"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "masked"
    assert os.readlink(froot / "etc/systemd/system/sshd.socket") == "/dev/null"

    # systemctl cat refuses --root on systemd 252; systemd-analyze cat-config shows the unit with its drop-ins.
    out = subprocess.run(["systemd-analyze", f"--root={froot}", "cat-config", "systemd/system/docker.socket"],
                         capture_output=True, text=True, check=True).stdout
    assert f"# {froot}/etc/systemd/system/docker.socket.d/10-restrict.conf" in out
    assert out.rstrip().endswith("[Socket]\nSocketGroup=root")

    visudo = need_tool("visudo")
    dropin = froot / "etc/sudoers.d/core-passwd"
    assert dropin.read_text() == "core\tALL=(ALL) \tALL\n"
    assert oct(dropin.stat().st_mode & 0o7777) == "0o440"
    subprocess.run([visudo, "-c", "-f", str(dropin)], check=True, capture_output=True)
    # The whole sudoers as sudo reads it (main file, then the drop-in) still parses.
    combined = froot / "combined-sudoers"
    combined.write_text(flatcar_root.SUDOERS.replace("#includedir /etc/sudoers.d\n", "") + dropin.read_text())
    os.chmod(combined, 0o440)
    subprocess.run([visudo, "-c", "-f", str(combined)], check=True, capture_output=True)
    combined.unlink()

    passwd = (froot / "etc/passwd").read_text()
    assert "core:x:500:500:Flatcar Admin:/home/core:/sbin/nologin\n" in passwd
    assert passwd.replace("/home/core:/sbin/nologin", "/home/core:/bin/bash") == flatcar_root.PASSWD

    grub = (froot / "usr/share/oem/grub.cfg").read_text()
    assert grub == flatcar_root.OEM_GRUB + 'set linux_append="$linux_append mitigations=auto,nosmt tsx=auto"\n'

    sel = froot / "etc/selinux/config"
    assert not sel.is_symlink()
    assert sel.read_text() == "SELINUX=enforcing\nSELINUXTYPE=mcs\n"
    # The file in /usr it used to point to is untouched.
    assert (froot / "usr/lib/selinux/config").read_text() == flatcar_root.SELINUX_CONFIG

    assert (froot / "etc/modprobe.d/90-hardening-usb-storage.conf").read_text() == \
        "blacklist usb-storage\ninstall usb-storage /bin/false\n"


def test_apply_is_idempotent(hardening, froot):
    hardening.run("apply", check=0)
    before = flatcar_root.tree_state(froot)
    p = hardening.run("apply", check=0)
    assert "No changes made: every selected measure is already in place" in p.stdout
    rc, rep = hardening.json("apply", check=0)
    assert rep["changed"] is False
    assert set(statuses(rep).values()) == {"unchanged"}
    assert flatcar_root.tree_state(froot) == before


def test_audit_exit_codes_and_json(hardening, froot):
    rc, rep = hardening.json("audit")
    assert rc == 2 and rep["compliant"] is False
    assert statuses(rep) == {m: "not-compliant" for m in GUIDE}
    reasons = {m["name"]: m["reasons"] for m in rep["measures"]}
    assert "/etc/systemd/system/sshd.socket is missing" in reasons["sshd-socket"]
    assert "/etc/selinux/config is a symlink, should be a file" in reasons["selinux"]

    hardening.run("apply", check=0)
    rc, rep = hardening.json("audit")
    assert rc == 0 and rep["compliant"] is True
    assert statuses(rep) == {m: "compliant" for m in GUIDE}
    assert hardening.run("audit").stdout.rstrip().endswith("Compliant.")

    # Undo one measure behind its back: audit names it.
    (froot / "etc/systemd/system/sshd.socket").unlink()
    rc, rep = hardening.json("audit")
    assert rc == 2
    assert statuses(rep)["sshd-socket"] == "not-compliant"
    assert statuses(rep)["core-sudo"] == "compliant"


def test_not_applicable(program, tmp_path):
    root = flatcar_root.build(tmp_path / "r", docker=False, oem=False, selinux=False, sudo=False, core=False)
    h = Hardening(program("hardening"), root)
    rc, rep = h.json("audit")
    st = statuses(rep)
    for m in ("docker-socket", "smt", "selinux", "core-sudo", "core-nologin"):
        assert st[m] == "not-applicable", (m, rep)
    assert st["sshd-socket"] == "not-compliant"
    rc, rep = h.json("apply", check=0)
    rc, rep = h.json("audit", check=0)
    assert rep["compliant"] is True


@pytest.mark.parametrize("profile,expected", [("guide", GUIDE), ("strict", STRICT)])
def test_round_trip_is_byte_identical(hardening, froot, profile, expected):
    before = flatcar_root.tree_state(froot)
    rc, rep = hardening.json(f"--profile={profile}", "apply", check=0)
    assert statuses(rep) == {m: "applied" for m in expected}
    assert flatcar_root.tree_state(froot) != before
    hardening.run(f"--profile={profile}", "audit", check=0)
    rc, rep = hardening.json("revert", check=0)
    assert rep["remaining"] == 0
    assert {p["status"] for p in rep["paths"]} == {"restored"}
    assert flatcar_root.tree_state(froot) == before
    assert not (froot / "var/lib/switchyard").exists()
    # Nothing left to revert.
    p = hardening.run("revert", check=0)
    assert "Nothing was reverted." in p.stdout


def test_round_trip_with_existing_dirs_and_owners(hardening, froot):
    # Directories that already exist stay; owners and modes of edited files come back.
    (froot / "etc/modprobe.d").mkdir()
    (froot / "etc/modprobe.d/keep.conf").write_text("options foo bar=1\n")
    (froot / "var/lib/switchyard").mkdir(parents=True)
    os.chown(froot / "etc/passwd", 0, 42)
    os.chmod(froot / "etc/passwd", 0o664)
    before = flatcar_root.tree_state(froot)
    hardening.run("apply", check=0)
    st = os.stat(froot / "etc/passwd")
    assert (st.st_gid, st.st_mode & 0o7777) == (42, 0o664)
    hardening.run("revert", check=0)
    assert flatcar_root.tree_state(froot) == before


def test_dry_run_shows_diff_and_changes_nothing(hardening, froot):
    before = flatcar_root.tree_state(froot)
    p = hardening.run("apply", "--dry-run", check=0)
    assert flatcar_root.tree_state(froot) == before
    out = p.stdout
    assert "--- a/etc/passwd\n+++ b/etc/passwd\n" in out
    assert "-core:x:500:500:Flatcar Admin:/home/core:/bin/bash\n+core:x:500:500:Flatcar Admin:/home/core:/sbin/nologin\n" in out
    assert "+++ b/etc/systemd/system/sshd.socket\n" in out and "+symbolic link to /dev/null\n" in out
    assert "new file mode 0440\n" in out and "+core\tALL=(ALL) \tALL\n" in out
    assert '+set linux_append="$linux_append mitigations=auto,nosmt tsx=auto"\n' in out
    assert "-symbolic link to ../../usr/lib/selinux/config\n+SELINUX=enforcing\n" in out
    rc, rep = hardening.json("apply", "--dry-run", check=0)
    assert rep["dry_run"] is True and rep["changed"] is False
    assert set(statuses(rep).values()) == {"would-change"}
    assert flatcar_root.tree_state(froot) == before

    hardening.run("apply", check=0)
    after = flatcar_root.tree_state(froot)
    p = hardening.run("apply", "--dry-run", check=0)
    assert "Nothing would change." in p.stdout
    p = hardening.run("revert", "--dry-run", check=0)
    assert "-core:x:500:500:Flatcar Admin:/home/core:/sbin/nologin\n" in p.stdout
    assert flatcar_root.tree_state(froot) == after


def test_select_measures_on_command_line_and_revert_one(hardening, froot):
    before = flatcar_root.tree_state(froot)
    rc, rep = hardening.json("apply", "sshd-socket", "core-sudo", check=0)
    assert statuses(rep) == {"sshd-socket": "applied", "core-sudo": "applied"}
    assert (froot / "etc/passwd").read_text() == flatcar_root.PASSWD
    rc, rep = hardening.json("revert", "core-sudo", check=0)
    assert [p["path"] for p in rep["paths"]] == ["/etc/sudoers.d/core-passwd"]
    assert rep["remaining"] == 1
    assert os.path.islink(froot / "etc/systemd/system/sshd.socket")
    hardening.run("revert", check=0)
    assert flatcar_root.tree_state(froot) == before
    p = hardening.run("apply", "no-such-measure", check=1)
    assert 'unknown measure "no-such-measure"' in p.stderr


def test_config_and_dropins_pick_measures(hardening, froot):
    write_conf(froot, "# site policy\nPROFILE=strict\nDISABLE=core-nologin selinux\n")
    write_conf(froot, "SYSCTL_OPT_IN=kernel.yama.ptrace_scope\nSYSCTL_EXCLUDE=kernel.sysrq\n", "50-sysctl.conf")
    rc, rep = hardening.json("apply", check=0)
    assert set(statuses(rep)) == set(STRICT) - {"core-nologin", "selinux"}
    sysctl = (froot / "etc/sysctl.d/90-hardening.conf").read_text()
    assert "-kernel.yama.ptrace_scope = 3\n" in sysctl
    assert "kernel.sysrq" not in sysctl
    # Container-breaking settings stay out unless asked for.
    for key in ("net.ipv4.ip_forward", "rp_filter", "user.max_user_namespaces", "kernel.modules_disabled"):
        assert key not in sysctl
    assert "kernel.kptr_restrict = 2\n" in sysctl
    grub = (froot / "usr/share/oem/grub.cfg").read_text()
    assert 'set linux_append="$linux_append mitigations=auto,nosmt nosmt tsx=off"\n' in grub
    assert (froot / "etc/ssh/sshd_config.d/10-hardening.conf").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("conf,message", [
    ("FOO=1\n", 'unknown key "FOO"'),
    ("PROFILE=paranoid\n", 'Unknown profile "paranoid"'),
    ("ENABLE=sshd-socket bogus\n", 'unknown measure "bogus"'),
    ("SSHD_LISTEN=10.0.0.1:99999\n", "SSHD_LISTEN"),
    ("MODULES=squashfs\n", "squashfs is needed by systemd-sysext"),
    ("SYSCTL_OPT_IN=kernel.kptr_restrict\n", "not one of the opt-in settings"),
    ("USER=../root\n", "not a valid user name"),
    ("KERNEL_ARGUMENTS=nosmt\" evil\n", "not a plain kernel argument"),
    ("just words\n", "expected KEY=VALUE"),
])
def test_bad_config_is_refused(hardening, froot, conf, message):
    write_conf(froot, conf)
    before = flatcar_root.tree_state(froot)
    p = hardening.run("apply", check=1)
    assert message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert flatcar_root.tree_state(froot) == before


def test_sshd_listen_dropin_and_switching_modes(hardening, froot):
    before = flatcar_root.tree_state(froot)
    hardening.run("apply", "sshd-socket", check=0)
    assert os.path.islink(froot / "etc/systemd/system/sshd.socket")
    write_conf(froot, "SSHD_LISTEN=10.0.0.10:22 [2001:db8::7]:22\n")
    rc, rep = hardening.json("apply", "sshd-socket", check=0)
    assert not os.path.lexists(froot / "etc/systemd/system/sshd.socket")
    out = subprocess.run(["systemd-analyze", f"--root={froot}", "cat-config", "systemd/system/sshd.socket"],
                         capture_output=True, text=True, check=True).stdout
    assert (f"# {froot}/etc/systemd/system/sshd.socket.d/10-hardening-listen.conf\n[Socket]\nListenStream=\n"
            "ListenStream=10.0.0.10:22\nListenStream=[2001:db8::7]:22\nFreeBind=true\n") in out
    systemctl = need_tool("systemctl")
    st = subprocess.run([systemctl, f"--root={froot}", "is-enabled", "sshd.socket"], capture_output=True, text=True)
    assert st.stdout.strip() != "masked"
    hardening.run("audit", "sshd-socket", check=0)
    (froot / "etc/switchyard/hardening.conf").unlink()
    hardening.run("revert", check=0)
    (froot / "etc/switchyard").rmdir()
    assert flatcar_root.tree_state(froot) == before


def test_existing_flatcar_kernel_arguments_are_respected(hardening, froot):
    grub = froot / "usr/share/oem/grub.cfg"
    grub.write_text(flatcar_root.OEM_GRUB + 'set linux_append="$linux_append flatcar.autologin mitigations=auto,nosmt tsx=auto"\n')
    hardening.run("audit", "smt", check=0)
    grub.write_text(flatcar_root.OEM_GRUB + 'set linux_append="$linux_append mitigations=auto,nosmt tsx=auto mitigations=off"')
    hardening.run("audit", "smt", check=2)
    hardening.run("apply", "smt", check=0)
    assert grub.read_text().endswith('mitigations=off"\nset linux_append="$linux_append mitigations=auto,nosmt"\n')
    hardening.run("audit", "smt", check=0)


def test_oem_partition_at_slash_oem(program, tmp_path):
    root = flatcar_root.build(tmp_path / "r", oem=False)
    (root / "oem").mkdir()
    (root / "oem/grub.cfg").write_text(flatcar_root.OEM_GRUB)
    h = Hardening(program("hardening"), root)
    rc, rep = h.json("apply", "smt", check=0)
    assert rep["measures"][0]["changed_paths"] == ["/oem/grub.cfg"]
    assert (root / "oem/grub.cfg").read_text().endswith('set linux_append="$linux_append mitigations=auto,nosmt tsx=auto"\n')
    h.run("audit", "smt", check=0)
    # An explicit GRUB_CFG is used as given.
    (root / "etc/switchyard").mkdir()
    (root / "etc/switchyard/hardening.conf").write_text("GRUB_CFG=/boot/oem/grub.cfg\n")
    rc, rep = h.json("audit", "smt", check=0)
    assert rep["measures"][0]["status"] == "not-applicable"
    assert "no OEM partition at /boot/oem" in rep["measures"][0]["reasons"][0]


def test_apply_waits_for_a_concurrent_run(hardening, froot):
    import fcntl
    import time
    fd = os.open(froot, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = subprocess.Popen([hardening.path, f"--root={froot}", "apply"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        assert proc.poll() is None, "apply did not wait for the lock"
        assert not (froot / "etc/sudoers.d/core-passwd").exists()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert proc.wait(timeout=30) == 0
    assert (froot / "etc/sudoers.d/core-passwd").exists()


def test_list_and_help(hardening):
    p = hardening.run("list", "--json", check=0, root=False)
    import json
    listed = json.loads(p.stdout)
    assert [m["name"] for m in listed] == STRICT
    assert {m["name"] for m in listed if m["profile"] == "guide"} == set(GUIDE)
    assert "audit" in hardening.run("--help", check=0, root=False).stdout
    assert hardening.run("--version", check=0, root=False).stdout.startswith("hardening ")
    p = hardening.run("frobnicate", check=1)
    assert 'Unknown command "frobnicate"' in p.stderr
    p = hardening.run("audit", "--dry-run", check=1)
    assert "--dry-run works with apply and revert only" in p.stderr


def test_revert_takes_back_only_our_edit_of_changed_files(hardening, froot):
    hardening.run("apply", check=0)
    passwd = froot / "etc/passwd"
    passwd.write_text(passwd.read_text() + "alice:x:1001:1001::/home/alice:/bin/bash\n")
    grub = froot / "usr/share/oem/grub.cfg"
    grub.write_text(grub.read_text() + 'set linux_append="$linux_append console=ttyS0"\n')

    p = hardening.run("revert", "--dry-run", check=0)
    assert "-core:x:500:500:Flatcar Admin:/home/core:/sbin/nologin\n+core:x:500:500:Flatcar Admin:/home/core:/bin/bash\n" in p.stdout
    rc, rep = hardening.json("revert", check=0)
    by_path = {x["path"]: x for x in rep["paths"]}
    assert by_path["/etc/passwd"]["status"] == "restored"
    assert "took back only hardening's edit" in by_path["/etc/passwd"]["reason"]
    assert passwd.read_text() == flatcar_root.PASSWD + "alice:x:1001:1001::/home/alice:/bin/bash\n"
    assert grub.read_text() == flatcar_root.OEM_GRUB + 'set linux_append="$linux_append console=ttyS0"\n'
    assert rep["remaining"] == 0

    # If our edit is gone as well (the admin changed core's shell again), there is nothing to take back.
    hardening.run("apply", "core-nologin", check=0)
    passwd.write_text(passwd.read_text().replace("/home/core:/sbin/nologin", "/home/core:/bin/zsh"))
    rc, rep = hardening.json("revert")
    assert rc == 2 and rep["paths"][0]["status"] == "conflict"
    assert "/home/core:/bin/zsh" in passwd.read_text()
