"""The README's main job (tools/demo.py) in its three modes, checked from the real state afterwards:
the GPT as slot-manager and Debian's cgpt read it, USR-A byte for byte, USR-B against the new image, and
the events the Omaha server received."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from e2e_checks import BUILD_DIR, need_tool, padded_digest

TOP = pathlib.Path(__file__).resolve().parents[3]
DEMO = TOP / "tools" / "demo.py"
OLD, NEW = "4459.0.0", "4500.0.0"


def loop_devices_work():
    if os.geteuid() != 0:
        return "loop devices need root"
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control"
    r = subprocess.run(["losetup", "--find"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"losetup --find: {r.stderr.strip()}"
    return None


def run_demo(tmp_path, *args):
    for tool in ("cgpt", "sfdisk", "mkfs.ext4", "openssl"):
        need_tool(tool)
    work = tmp_path / "demo-work"
    summary = tmp_path / "summary.json"
    r = subprocess.run([sys.executable, str(DEMO), f"--build={BUILD_DIR}", f"--work={work}",
                        f"--json-summary={summary}", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"demo failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r, json.loads(summary.read_text()), work


def slot_status(work, disk):
    r = subprocess.run([str(BUILD_DIR / "src/slot-manager/slot-manager"), f"--disk={disk}", f"--esp={work}/esp",
                        f"--cmdline={work}/cmdline", "--json", "status"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def cgpt_attrs(disk, number):
    """priority, tries, successful as Debian's cgpt reads them."""
    def get(flag):
        r = subprocess.run(["cgpt", "show", "-i", str(number), flag, str(disk)], capture_output=True, text=True,
                           check=True)
        return int(r.stdout.strip(), 0)
    return {"priority": get("-P"), "tries": get("-T"), "successful": bool(get("-S"))}


def read(disk, offset, size):
    with open(disk, "rb") as f:
        f.seek(offset)
        return f.read(size)


def common_checks(r, s, work):
    disk = s["disk"]
    # The GPT is valid for cgpt (it lists both USR partitions and the secondary table).
    out = subprocess.run(["cgpt", "show", disk], capture_output=True, text=True, check=True).stdout
    assert "USR-A" in out and "USR-B" in out and "Sec GPT table" in out, out
    st = slot_status(work, disk)
    assert st["gpt"]["primary"] == "ok" and st["gpt"]["backup"] == "ok", st
    a_off, a_size, a_num = s["offsets"]["a"]
    b_off, b_size, b_num = s["offsets"]["b"]
    # USR-A is exactly the old image (zero padded), as written before the update.
    import hashlib
    assert hashlib.sha256(read(disk, a_off, a_size)).hexdigest() == \
        padded_digest(work / "usr-old.img", a_size) == s["usr_a_digest"]
    # USR-B holds the new image, byte for byte.
    new = pathlib.Path(s["new_image"]).read_bytes()
    assert read(disk, b_off, len(new)) == new
    # The server saw the update's events in order: download started, finished, installed.
    seq = [tuple(e[:2]) for e in s["events"]]
    i = seq.index((13, 1))
    j = seq.index((14, 1), i)
    seq.index((3, 1), j)
    assert s["payload_requests"], "the payload was never downloaded"
    return st, cgpt_attrs(disk, a_num), cgpt_attrs(disk, b_num)


def test_demo_update(tmp_path):
    r, s, work = run_demo(tmp_path)
    assert "RESULT: OK" in r.stdout
    st, a, b = common_checks(r, s, work)
    assert st["booted"] == "b"
    sb = next(x for x in st["slots"] if x["slot"] == "b")
    assert sb["successful"] and sb["next"] and sb["priority"] > 0, st
    assert b["successful"] and b["priority"] > a["priority"], (a, b)
    assert a["successful"], a  # A stays a good fallback
    # After the reboot into B, the first check reported "update complete" with the previous version.
    assert any(e[0] == 3 and e[1] == 2 and e[3] == OLD for e in s["events"]), s["events"]


def test_demo_rollback(tmp_path):
    r, s, work = run_demo(tmp_path, "--rollback")
    assert "RESULT: OK" in r.stdout and "rolled back to A" in r.stdout
    st, a, b = common_checks(r, s, work)
    assert st["booted"] == "a"
    sa = next(x for x in st["slots"] if x["slot"] == "a")
    assert sa["next"] and sa["successful"], st
    # B spent its only try and was never marked good: cgpt agrees it is out of the running.
    assert b["tries"] == 0 and not b["successful"], b
    # The rollback was reported (error 44 in the low bits) and the payload was not fetched again.
    assert any(e[0] == 3 and e[1] == 0 and e[2] is not None and (e[2] & 0xffff) == 44 for e in s["events"])
    gets = [p for p in s["payload_requests"] if p[0] == "GET"]
    assert gets, s["payload_requests"]


def test_demo_loop(tmp_path):
    why = loop_devices_work()
    if why:
        pytest.skip(why)
    need_tool("partx")
    r, s, work = run_demo(tmp_path, "--loop")
    assert "RESULT: OK" in r.stdout
    assert s["loop"] and s["loop"].startswith("/dev/loop")
    st, a, b = common_checks(r, s, work)
    assert st["booted"] == "b"
    assert b["successful"] and b["priority"] > a["priority"], (a, b)
    # The loop device was detached again.
    r = subprocess.run(["losetup", "-j", s["disk"]], capture_output=True, text=True)
    assert s["loop"] not in r.stdout
