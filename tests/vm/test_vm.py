# SPDX-License-Identifier: LGPL-2.1-or-later
"""Scenarios of the VM proof (see conftest.py and tools/vm/vmlib.py)."""
import json
import re
import time

import pytest
from conftest import need

BOOT_TIMEOUT = 300  # seconds from QEMU start to boot-complete.target; ~90 s under TCG on 2 cores


def boot(g, expect_version=None, timeout=BOOT_TIMEOUT):
    """One boot of the machine; returns (version, initrd lines) once boot-complete.target was reached."""
    g.boot()
    m = g.wait_console(r"SWITCHYARD-VM: boot-complete version=(\S+) usr=(\S+)", timeout)
    initrd = re.findall(r"switchyard-initrd: (.*)", g.console_text())
    if expect_version:
        assert m.group(1) == expect_version, f"booted {m.group(1)}, expected {expect_version}; console {g.console}"
    return m.group(1), initrd


def reboot(g, timeout=180):
    """systemctl reboot in the guest; QEMU runs with -no-reboot, so the process ends."""
    g.sock.sendall(b"systemctl reboot\n")
    g.wait_exit(timeout)


def slots(g):
    return json.loads(g.out("slot-manager status --json"))


def slot(st, name):
    return next(s for s in st["slots"] if s["slot"] == name)


def usr_backing(g):
    """(dm uuid, partition under /usr) of the running guest."""
    out = g.out("d=/sys/dev/block/$(mountpoint -d /usr); cat $d/dm/uuid; ls $d/slaves; "
                "findmnt -fno SOURCE,FSTYPE,OPTIONS /usr")
    lines = out.split("\n")
    return lines[0].strip(), lines[1].strip(), lines[2]


def omaha_status(g):
    return json.loads(g.out("omaha-client status --json"))


def wait_status(g, pred, timeout, what):
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        try:
            st = omaha_status(g)
        except Exception:  # noqa: BLE001 (daemon restarting)
            st = None
        with open(f"{g.workdir}/omaha-status.log", "a") as f:
            f.write(f"{time.strftime('%T')} {json.dumps(st)}\n")
        if st is not None and pred(st):
            return st
        time.sleep(3)
    pytest.fail(f"omaha-client never got to {what}; last status {st}; console {g.console}")


def assert_verity_usr(g, partition):
    uuid, slave, mount = usr_backing(g)
    assert uuid.startswith("CRYPT-VERITY-"), f"/usr is not a dm-verity device: {uuid}"
    assert slave == partition, f"/usr is verity on {slave}, expected {partition}"
    assert mount.split()[1] == "squashfs" and "ro" in mount.split()[2].split(",")


def test_boot_slot_a_with_verity(vm, guest, omaha):
    """The built disk boots: the initramfs chooses USR-A by gptprio, reads its root hash from
    flatcar/vmlinuz-a, opens /usr with dm-verity, systemd reaches boot-complete.target."""
    have_slot_manager = "slot-manager" in vm["programs"]
    # A network to wait for (systemd-networkd-wait-online fails without one): a server with no update.
    srv = omaha(None, "1.0.0")
    g = guest(server_port=srv.port, append="" if have_slot_manager else "switchyard.slot=a")
    version, initrd = boot(g, "1.0.0")
    text = "\n".join(initrd)
    assert f"root hash {vm['usr']['1.0.0']['root_hash']} (from flatcar/vmlinuz-a)" in text
    assert "dm-verity active: /dev/mapper/usr on /dev/vda3" in text
    assert_verity_usr(g, "vda3")
    assert g.out("cat /proc/cmdline").find("switchyard.slot") < 0 or not have_slot_manager
    if have_slot_manager:
        assert re.search(r'boot-select: .*"label":"USR-A"', text), text
        st = slots(g)
        assert st["booted"] == "a"
        assert slot(st, "a")["successful"] and slot(st, "a")["priority"] >= 1
    if "verity-check" in vm["programs"]:
        st = json.loads(g.out("verity-check status --json"))
        assert st.get("root_hash") == vm["usr"]["1.0.0"]["root_hash"], st
    # The guest's state before the power goes: the agent answers, nothing failed.
    state = g.run("systemctl is-system-running --wait", check=False)[1].strip()
    failed = g.out("systemctl --failed --no-legend --plain")
    assert state == "running", f"system {state}; failed units: {failed}"
    assert failed.strip() == "", failed
    assert_no_restarts(g)


def assert_no_restarts(g):
    """No switchyard service crash-looped: a unit with Restart= that keeps failing is 'activating
    (auto-restart)', never 'failed', so systemctl --failed does not show it (omaha-client did so once,
    when its sandbox hid the boot id)."""
    out = g.out("for u in $(systemctl list-units --all --plain --no-legend 'omaha-client*' 'payload-writer*' "
                "'slot-manager*' 'verity-check*' 'metadata-agent*' 'hardening*' | awk '{print $1}'); do "
                "echo \"$u $(systemctl show -P NRestarts $u) $(systemctl show -P ActiveState $u)\"; done")
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert any(r[0] == "omaha-client.service" for r in rows), out
    bad = [r for r in rows if (len(r) > 1 and r[1] not in ("", "0")) or (len(r) > 2 and r[2] == "failed")]
    assert not bad, f"restarted or failed: {bad}; journal: " + g.out("journalctl -b --no-pager -n 40 -u 'omaha-client*'")


def test_update_a_to_b(vm, guest, release, omaha):
    """omaha-client (started by its units) updates A to B from a local Omaha server; B boots with
    dm-verity and is marked good; the server saw every event, 3/2 with previousversion after reboot."""
    need(vm, "omaha-client", "slot-manager", "payload-writer", "verity-check")
    v2 = release("2.0.0")
    srv = omaha(v2["payload"], "2.0.0")
    g = guest(server_port=srv.port)
    boot(g, "1.0.0")
    wait_status(g, lambda s: s["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", 600,
                "UPDATED_NEED_REBOOT")
    before = slots(g)
    assert slot(before, "b")["priority"] > slot(before, "a")["priority"]
    assert slot(before, "b")["tries"] == 1 and not slot(before, "b")["successful"]
    assert before["booted"] == "a" and before["next"] == "b"
    # The suite wrote USR-B and vmlinuz-b: the kernel file carries version 2's root hash.
    assert g.out("verity-check root-hash --kernel=/boot/flatcar/vmlinuz-b").strip() == v2["root_hash"]
    events = srv.events()
    assert (13, 1, None, None) in [(e[0], e[1], e[2], None) for e in events], events
    assert any(e[0] == 14 and e[1] == 1 for e in events), events
    assert any(e[0] == 3 and e[1] == 1 for e in events), events
    assert_no_restarts(g)

    downloads = len([r for r in srv.payload_requests if r.method == "GET"])
    reboot(g)
    version, initrd = boot(g, "2.0.0")
    text = "\n".join(initrd)
    assert re.search(r'boot-select: .*"label":"USR-B"', text), text
    assert f"root hash {v2['root_hash']} (from flatcar/vmlinuz-b)" in text
    assert_verity_usr(g, "vda4")
    after = slots(g)
    assert after["booted"] == "b"
    assert slot(after, "b")["successful"] and slot(after, "b")["tries"] == 0
    assert slot(after, "b")["priority"] > slot(after, "a")["priority"]
    # First check after the reboot: event 3/2 with the old version.
    assert srv.wait_for(lambda: any(e[0] == 3 and e[1] == 2 and e[3] == "1.0.0" for e in srv.events()), 180), \
        srv.events()
    # Running 2.0.0 now: the server has nothing newer, nothing more is downloaded.
    assert omaha_status(g)["current_operation"] == "UPDATE_STATUS_IDLE"
    assert len([r for r in srv.payload_requests if r.method == "GET"]) == downloads
    assert_no_restarts(g)


def test_bad_update_rolls_back(vm, guest, release, omaha):
    """B's health check fails before boot-complete.target: B is never marked good, the next boot is
    A again, omaha-client reports the rollback and does not download version 2 again."""
    need(vm, "omaha-client", "slot-manager", "payload-writer", "verity-check")
    bad = release("2.0.0", bad=True)
    srv = omaha(bad["payload"], "2.0.0")
    g = guest(server_port=srv.port)
    boot(g, "1.0.0")
    wait_status(g, lambda s: s["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", 600,
                "UPDATED_NEED_REBOOT")
    downloads = len([r for r in srv.payload_requests if r.method == "GET"])
    assert downloads >= 1
    reboot(g)

    # Boot on B: the health check fails, boot-complete.target is never reached.
    g.boot()
    g.wait_console(r"SWITCHYARD-VM: health check failed", BOOT_TIMEOUT)
    assert "SWITCHYARD-VM: boot-complete" not in g.console_text()
    initrd = "\n".join(re.findall(r"switchyard-initrd: (.*)", g.console_text()))
    assert re.search(r'boot-select: .*"label":"USR-B"', initrd), initrd
    st = slots(g)
    assert st["booted"] == "b"
    assert not slot(st, "b")["successful"] and slot(st, "b")["tries"] == 0
    assert g.run("systemctl is-active boot-complete.target", check=False)[0] != 0
    assert g.run("systemctl is-active slot-manager-mark-good.service", check=False)[0] != 0
    g.run("systemctl --no-block reboot", check=False)
    g.wait_exit(180)

    # Next boot: gptprio falls back to A, which was never touched.
    version, initrd = boot(g, "1.0.0")
    assert re.search(r'boot-select: .*"label":"USR-A"', "\n".join(initrd))
    assert_verity_usr(g, "vda3")
    st = slots(g)
    assert st["booted"] == "a" and not slot(st, "b")["successful"]
    # omaha-client reports the rollback: update-complete event with an error code and the version it
    # left (spec 1.6: error 44 when the previous version is still running).
    assert srv.wait_for(lambda: any(e[0] == 3 and e[1] == 0 and e[2] is not None and e[2] & 0xFFFF == 44
                                    for e in srv.events()), 180), srv.events()
    # Another check (asked for by hand, so not to wait for the schedule) finds 2.0.0 offered again and
    # leaves it alone: it rolled back on this machine.
    checks = len(srv.requests)
    g.run("omaha-client check --wait", check=False, timeout=300)
    assert len(srv.requests) > checks
    assert len([r for r in srv.payload_requests if r.method == "GET"]) == downloads, srv.payload_requests
    assert omaha_status(g)["current_operation"] != "UPDATE_STATUS_UPDATED_NEED_REBOOT"


def read_partition(g, number, length, offset=0):
    """Bytes of a partition of the guest's disk file (the guest is not running)."""
    import vmlib
    start, size = vmlib.partition_offsets()[0][number]
    with open(g.disk, "rb") as f:
        f.seek(start + offset)
        return f.read(length)


def test_tampered_slot_never_runs(vm, guest, release, omaha):
    """One block of USR-B corrupted after the update and before the reboot: dm-verity refuses it at
    the first read, the guest never runs from it, and the next boot is A."""
    need(vm, "omaha-client", "slot-manager", "payload-writer", "verity-check")
    import vmlib
    v2 = release("2.0.0")
    srv = omaha(v2["payload"], "2.0.0")
    g = guest(server_port=srv.port)
    boot(g, "1.0.0")
    wait_status(g, lambda s: s["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", 600,
                "UPDATED_NEED_REBOOT")
    g.run("systemctl --no-block poweroff", check=False)
    g.wait_exit(180)

    # Flip one byte inside the first 4 KiB block of USR-B (after the squashfs superblock's fields, so
    # the initramfs still sees a squashfs): only the hash tree can tell.
    start, _ = vmlib.partition_offsets()[0][vmlib.PART_USR_B]
    with open(g.disk, "r+b") as f:
        f.seek(start + 2048)
        b = f.read(1)
        f.seek(start + 2048)
        f.write(bytes([b[0] ^ 0xFF]))

    g.boot()
    rc = g.wait_exit(BOOT_TIMEOUT)
    text = g.console_text()
    assert "SWITCHYARD-VM: boot-complete" not in text, g.console
    assert re.search(r'boot-select: .*"label":"USR-B"', text), g.console
    assert re.search(r"device-mapper: verity: .*data block 0 is corrupted|Kernel panic", text), g.console
    assert rc == 0, f"QEMU exit {rc}"

    version, initrd = boot(g, "1.0.0")
    assert re.search(r'boot-select: .*"label":"USR-A"', "\n".join(initrd))
    assert_verity_usr(g, "vda3")
    st = slots(g)
    assert st["booted"] == "a" and not slot(st, "b")["successful"] and slot(st, "b")["tries"] == 0


def test_power_cut_mid_update(vm, guest, release, omaha):
    """QEMU killed while the payload streams into USR-B: after the restart the update resumes and
    completes, and USR-A never changed."""
    need(vm, "omaha-client", "slot-manager", "payload-writer", "verity-check")
    import hashlib
    v2 = release("2.0.0")
    a_image = vm["usr"]["1.0.0"]
    srv = omaha(v2["payload"], "2.0.0")
    srv.throttle = 0.05  # 64 KiB every 50 ms: about 1.3 MB/s, so the cut lands mid-stream
    g = guest(server_port=srv.port)
    boot(g, "1.0.0")
    st = wait_status(g, lambda s: s["current_operation"] == "UPDATE_STATUS_DOWNLOADING" and s["progress"] > 0.1,
                     600, "DOWNLOADING past 10%")
    g.kill()

    def a_hash():
        return hashlib.sha256(read_partition(g, 3, a_image["size"])).hexdigest()

    with open(a_image["image"], "rb") as f:
        a_expected = hashlib.sha256(f.read()).hexdigest()
    assert a_hash() == a_expected
    gets_before = len([r for r in srv.payload_requests if r.method == "GET"])

    srv.throttle = 0
    boot(g, "1.0.0")
    wait_status(g, lambda s: s["current_operation"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT", 600,
                "UPDATED_NEED_REBOOT after the power cut")
    later = [r for r in srv.payload_requests if r.method == "GET"][gets_before:]
    assert later, "no download after the restart"
    # Resumed: a ranged request that does not start at the beginning of the payload.
    assert any(r.range and not r.range.startswith("bytes=0-") for r in later), \
        [(r.method, r.range, r.status, r.sent) for r in srv.payload_requests]
    st = slots(g)
    assert st["next"] == "b" and slot(st, "b")["tries"] == 1
    assert g.out("verity-check root-hash --kernel=/boot/flatcar/vmlinuz-b").strip() == v2["root_hash"]
    g.run("systemctl --no-block poweroff", check=False)
    g.wait_exit(180)
    assert a_hash() == a_expected
