"""Temporary roots laid out like a Flatcar host's /etc and /usr, for programs run with --root=DIR.

build(root) creates what Flatcar ships for the parts the hardening measures touch (spec
hardening.md §1.1): the socket-activated sshd.socket with its drop-in, docker.socket, baselayout's
sudoers with #includedir, passwd/group with core (uid 500) in wheel/docker/systemd-journal/portage,
/etc/selinux/config as a symlink into /usr (permissive), the OEM grub.cfg, the audit rules, sysctl and
sshd_config.d files. tree_state(root) describes a tree (type, mode, owner, contents or link target of
every entry) so that tests can prove a round trip left it byte-identical.
"""
import hashlib
import os
import pathlib
import stat

SSHD_SOCKET = """[Unit]
Description=OpenSSH Server Socket
Conflicts=sshd.service

[Socket]
ListenStream=22
Accept=yes

[Install]
WantedBy=sockets.target
"""

SSHD_SERVICE = """[Unit]
Description=OpenSSH per-connection server daemon
After=syslog.target auditd.service

[Service]
ExecStart=-/usr/sbin/sshd -i -e
StandardInput=socket
StandardError=syslog
"""

DOCKER_SOCKET = """[Unit]
Description=Docker Socket for the API
PartOf=docker.service

[Socket]
ListenStream=/run/docker.sock
SocketMode=0660
SocketUser=root
SocketGroup=docker

[Install]
WantedBy=sockets.target
"""

DOCKER_SERVICE = """[Unit]
Description=Docker Application Container Engine
After=containerd.service docker.socket network-online.target
Requires=docker.socket

[Service]
Type=notify
ExecStart=/usr/bin/dockerd --host=fd://

[Install]
WantedBy=multi-user.target
"""

SUDOERS = """root ALL=(ALL) ALL
%wheel ALL=(ALL) ALL
%sudo ALL=(ALL) NOPASSWD: ALL
core ALL=(ALL) NOPASSWD: ALL

#includedir /etc/sudoers.d
"""

PASSWD = """root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
nobody:x:65534:65534:nobody:/var/empty:/bin/false
core:x:500:500:Flatcar Admin:/home/core:/bin/bash
"""

GROUP = """root:x:0:root
bin:x:1:root,bin,daemon
wheel:x:10:root,core
sudo:x:27:
systemd-journal:x:190:core
docker:x:233:core
portage:x:250:portage,core
core:x:500:
"""

FLATCAR_SSHD = """Subsystem sftp internal-sftp
ClientAliveInterval 180
UseDNS no
UsePAM yes
PrintLastLog no
PrintMotd no
HostkeyAlgorithms +ssh-rsa
PubkeyAcceptedAlgorithms +ssh-rsa
"""

BASELAYOUT_SYSCTL = """net.ipv4.ip_forward = 1
net.ipv4.conf.default.rp_filter = 0
net.ipv4.conf.all.rp_filter = 0
net.ipv4.conf.*.rp_filter = 0
kernel.kptr_restrict = 1
fs.protected_regular = 0
fs.protected_fifos = 0
"""

SELINUX_CONFIG = "SELINUX=permissive\nSELINUXTYPE=mcs\n"

OEM_GRUB = '# Flatcar GRUB settings\n\nset oem_id="qemu"\n'

AUDIT_RULES = {
    "00-clear.rules": "-D\n",
    "80-selinux.rules": "-a exclude,never -F msgtype>=1400 -F msgtype<=1499\n",
    "99-default.rules": "-a exclude,never -F msgtype=CONFIG_CHANGE\n-a exclude,always -F msgtype>0\n",
}


def _write(root: pathlib.Path, rel: str, text: str, mode: int = 0o644) -> pathlib.Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    os.chmod(p, mode)
    return p


def _link(root: pathlib.Path, rel: str, target: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, p)


def build(root, docker=True, oem=True, selinux=True, sudo=True, core=True) -> pathlib.Path:
    """Populates root (created if needed) like a freshly provisioned Flatcar host."""
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for d in ("etc", "usr/lib/systemd/system", "usr/share", "var/lib", "run", "home"):
        (root / d).mkdir(parents=True, exist_ok=True)

    _write(root, "usr/lib/os-release", 'NAME="Flatcar Container Linux by Kinvolk"\nID=flatcar\nVERSION_ID=4152.2.0\n')
    _link(root, "etc/os-release", "../usr/lib/os-release")

    units = "usr/lib/systemd/system"
    _write(root, f"{units}/sshd.socket", SSHD_SOCKET)
    _write(root, f"{units}/sshd@.service", SSHD_SERVICE)
    _write(root, f"{units}/sshd.socket.d/no-trigger-limit-burst.conf", "[Socket]\nTriggerLimitBurst=0\n")
    _link(root, f"{units}/sockets.target.wants/sshd.socket", "../sshd.socket")
    _write(root, f"{units}/sockets.target", "[Unit]\nDescription=Sockets\n")
    if docker:
        _write(root, f"{units}/docker.socket", DOCKER_SOCKET)
        _write(root, f"{units}/docker.service", DOCKER_SERVICE)
        _link(root, f"{units}/sockets.target.wants/docker.socket", "../docker.socket")
    (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)

    passwd = PASSWD if core else "".join(l + "\n" for l in PASSWD.splitlines() if not l.startswith("core:"))
    _write(root, "etc/passwd", passwd)
    _write(root, "etc/group", GROUP)
    _write(root, "etc/shadow", "root:*:19000:0:::::\ncore:*:19000:0:::::\n", 0o640)
    _write(root, "usr/share/baselayout/passwd", PASSWD.replace(PASSWD.splitlines()[-1] + "\n", ""))
    _write(root, "usr/share/baselayout/group", GROUP)

    if sudo:
        _write(root, "etc/sudoers", SUDOERS, 0o440)
        (root / "etc/sudoers.d").mkdir(mode=0o750)
        os.chmod(root / "etc/sudoers.d", 0o750)

    _write(root, "usr/share/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n")
    _link(root, "etc/ssh/sshd_config", "../../usr/share/ssh/sshd_config")
    _write(root, "etc/ssh/sshd_config.d/50-flatcar-sshd.conf", FLATCAR_SSHD, 0o600)

    _write(root, "usr/lib/sysctl.d/60-baselayout.conf", BASELAYOUT_SYSCTL)
    _write(root, "usr/lib/systemd/coredump.conf", "[Coredump]\n")

    if selinux:
        _write(root, "usr/lib/selinux/config", SELINUX_CONFIG)
        (root / "usr/lib/selinux/mcs").mkdir(parents=True)
        (root / "usr/lib/selinux/policy").mkdir(parents=True)
        _link(root, "etc/selinux/config", "../../usr/lib/selinux/config")
        _link(root, "etc/selinux/mcs", "../../usr/lib/selinux/mcs")
        _link(root, "var/lib/selinux", "../../usr/lib/selinux/policy")

    for name, text in AUDIT_RULES.items():
        _write(root, f"etc/audit/rules.d/{name}", text, 0o640)

    if oem:
        _write(root, "usr/share/oem/grub.cfg", OEM_GRUB)
    return root


def tree_state(root) -> dict:
    """{relative path: (type, mode, uid, gid, sha256-of-contents | link target)} for every entry."""
    root = pathlib.Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = pathlib.Path(dirpath) / name
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                what = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                what = ("dir", "")
            elif stat.S_ISREG(st.st_mode):
                what = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            else:
                what = ("other", "")
            out[rel] = (what[0], stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what[1])
    return out


def tree_hash(root) -> str:
    """One digest over tree_state(root)."""
    h = hashlib.sha256()
    for rel, v in sorted(tree_state(root).items()):
        h.update(repr((rel, v)).encode())
    return h.hexdigest()
