"""Assertions on the real state of a FlatcarHost after an update, a kill or a refusal."""
import hashlib
import json
import os
import pathlib
import shutil

import pytest

from flatcar_host import NEW

BUILD_DIR = pathlib.Path(os.environ.get("SWITCHYARD_BUILD_DIR",
                                        pathlib.Path(__file__).resolve().parents[3] / "build-test"))


def need_tool(name):
    if not (shutil.which(name) or os.path.exists(f"/usr/sbin/{name}")):
        pytest.skip(f"{name} is not installed")


def padded_digest(image_path, size):
    """sha256 of an image file zero-padded to size bytes (what a slot holding it reads as)."""
    h = hashlib.sha256()
    with open(image_path, "rb") as f:
        data = f.read()
    h.update(data)
    h.update(bytes(size - len(data)))
    return h.hexdigest()


def slot_of(status, name):
    return next(s for s in status["slots"] if s["slot"] == name)


def assert_gpt_valid(host, crashed=False):
    """Both GPT copies good: slot-manager says so, Debian's cgpt and util-linux' sfdisk read it.
    crashed: right after a kill -9 in the middle of slot-manager's GPT write, one copy may be half written
    (the next write repairs it); then the copy in use must be good and the other may not."""
    st = host.slot_status()
    gpt = st["gpt"]
    if crashed:
        assert gpt[gpt["in_use"]] == "ok", gpt
        assert gpt["primary"] == "ok" or gpt["backup"] == "ok", gpt
    else:
        assert gpt["primary"] == "ok" and gpt["backup"] == "ok", gpt
    out = host.cgpt_show()
    assert "USR-A" in out and "USR-B" in out and "Sec GPT table" in out, out
    sf = host.sfdisk_json()
    names = {p.get("name") for p in sf["partitiontable"]["partitions"]}
    assert {"USR-A", "USR-B", "EFI-SYSTEM", "ROOT"} <= names, names
    return st


def assert_a_untouched(host):
    assert host.slot_digest("a") == host.usr_a_digest, "USR-A changed"
    assert host.slot_digest("a") == padded_digest(host.old_image, host.disk.usr_a.size)
    a = host.cgpt_attrs("a")
    assert a["successful"] and a["priority"] >= 1, a


def b_holds_new_image(host):
    size = len(open(host.new_image, "rb").read())
    with open(host.new_image, "rb") as f:
        return host.read_slot("b", size) == f.read()


def b_bootable(st):
    b = slot_of(st, "b")
    return b["priority"] > 0 and (b["tries"] > 0 or b["successful"])


def assert_b_next_and_new(host, crashed=False):
    """The completed update: B is next with a try, holds the new image, its kernel carries the hash."""
    st = assert_gpt_valid(host, crashed)
    b = slot_of(st, "b")
    assert b["next"] and b["priority"] > slot_of(st, "a")["priority"] and b["tries"] >= 1, st
    cg = host.cgpt_attrs("b")
    assert cg["priority"] == b["priority"] and cg["tries"] == b["tries"], (cg, b)
    assert b_holds_new_image(host), "USR-B is not the new image"
    kernel = (host.esp / "flatcar/vmlinuz-b").read_bytes()
    assert kernel == host.new_kernel.read_bytes()
    assert kernel[64:128].decode() == host.new_root_hash
    host.verify_slot("b")
    return st


def assert_safe(host, completed_ok=True, crashed=False):
    """After any fault: A untouched, GPT valid, and B not bootable unless the update completed (then B is
    the verified new image). Returns True if B is the finished update."""
    assert_a_untouched(host)
    st = assert_gpt_valid(host, crashed)
    if b_bootable(st):
        assert completed_ok, f"B is bootable after a refused update: {json.dumps(st)}"
        assert_b_next_and_new(host, crashed)
        return True
    assert slot_of(st, "a")["next"], st
    cg = host.cgpt_attrs("b")
    assert cg["priority"] == 0 or (cg["tries"] == 0 and not cg["successful"]), cg
    return False


def events_ok(events):
    """The successful update's events in order: 13/1, 14/1, 3/1."""
    seq = [(e[0], e[1]) for e in events]
    i = seq.index((13, 1))
    j = seq.index((14, 1), i)
    seq.index((3, 1), j)
    return True


def assert_new_version_offered(status):
    assert status["new_version"] == NEW, status
