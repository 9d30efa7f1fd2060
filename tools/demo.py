#!/usr/bin/env python3
"""The main job, end to end: a Flatcar-layout disk image goes from "A booted" to "B next" through a
local Omaha server and the suite's four services, then "reboots" into B and marks it good (or, with
--rollback, B never reaches boot-complete.target and the next boot returns to A).

Run through tools/demo, which installs and builds first. Options:
  --build DIR     where the programs were built (default build-demo)
  --work DIR      scratch directory, recreated (default demo-work)
  --rollback      the rollback story instead of the happy one
  --loop          attach the disk image to a loop device and update the block device
  --quiet         print only the step headers and the final verdict

What stands in for what (there is no real boot here): the kernel command line is a file the
slot-manager reads; the ESP is a directory (the mounted ESP partition); "boot" is
`slot-manager boot-select` (GRUB's gptprio.next) followed by the same verity check the initrd does;
"boot-complete.target reached" is `slot-manager mark-good`. Everything else is the real thing:
GPT attributes, the CrAU payload, dm-verity trees, Omaha v3 over HTTPS, varlink with fd passing.
The building blocks live in tests/lib/flatcar_host.py, shared with tests/integration/e2e.
"""
import argparse
import json
import pathlib
import shutil
import sys

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "lib"))

from flatcar_host import NEW, OLD, FlatcarHost, HostError  # noqa: E402
from omaha_server import OmahaServer  # noqa: E402

SLOT_MIB = 64
FS_MIB = 40
EVENT_NAMES = {(3, 2): "update complete (after reboot)", (13, 1): "download started",
               (14, 1): "download finished", (3, 1): "installed", (3, 0): "error"}


class Demo:
    def __init__(self, args):
        self.args = args
        self.quiet = args.quiet
        self.step_no = 0
        self.host = FlatcarHost(args.work, args.build, slot_mib=SLOT_MIB, fs_mib=FS_MIB, rich=True)

    # ---- output -------------------------------------------------------------------------------
    def step(self, title):
        self.step_no += 1
        print(f"\n== {self.step_no}. {title}", flush=True)

    def say(self, text):
        if not self.quiet:
            print(f"   {text}", flush=True)

    def show_slots(self):
        for line in self.host.slot_table().rstrip().splitlines():
            print(f"   | {line}")

    def show_events(self, server, since=0):
        evs = server.events()[since:]
        for (etype, result, code, prev) in evs:
            name = EVENT_NAMES.get((etype, result), "")
            extra = (f" errorcode={code}" if code is not None else "") + (
                f" previousversion={prev}" if prev is not None else "")
            print(f"   | event type={etype} result={result}{extra}  {name}")
        return evs

    # ---- building the images ------------------------------------------------------------------
    def build_host(self):
        h = self.host
        self.step("Build a Flatcar-layout disk: ESP, BIOS-BOOT, USR-A, USR-B, OEM, OEM-CONFIG, ROOT")
        h.make_disk()
        for p in sorted(h.disk.partitions.values(), key=lambda p: p.number):
            self.say(f"partition {p.number:>2} {p.label:<11} {p.size // (1024 * 1024):>4} MiB  {p.uuid}")
        self.step(f"Version {OLD}: /usr filesystem + verity tree into USR-A, root hash into vmlinuz-a")
        root_hash = h.install_old(OLD)
        self.say(f"root hash of USR-A: {root_hash}")

    def build_update(self):
        h = self.host
        self.step(f"Version {NEW}: image, kernel and a signed payload made by payload-writer generate")
        info = h.build_update(NEW)
        # `payload-writer inspect --keys` names the trusted key that verified each signature.
        verified = [sg["verified_by"] for sg in info.get("signatures", []) if sg.get("verified_by")]
        if not verified or info.get("problems"):
            sys.exit(f"demo: the new payload does not verify: {info.get('problems')}")
        self.say(f"payload: {h.payload.stat().st_size} bytes, {info['operations']} operations,"
                 f" signature verified by {pathlib.Path(verified[0]).name}")
        self.say(f"root hash of the new /usr: {h.new_root_hash}")

    # ---- the story ------------------------------------------------------------------------------
    def start_services(self, server):
        for name, a in self.host.start_services(server).items():
            path = pathlib.Path(a.path)
            if path.is_relative_to(self.host.work):
                path = path.relative_to(self.host.work)
            self.say(f"socket {path} -> "
                     f"{pathlib.Path(a.argv[0]).name} (activated on demand)")

    def update(self, server):
        h = self.host
        self.step("Start the four services, socket-activated, and ask for an update")
        self.start_services(server)
        r = h.omaha("check", "--wait")
        st = h.omaha_status()
        self.say(f"omaha-client status: {st['current_operation']} new_version={st['new_version']}")
        if st["current_operation"] != "UPDATE_STATUS_UPDATED_NEED_REBOOT":
            raise HostError(f"the update did not complete:\n{r.stdout}{r.stderr}\nsee {h.logs}")
        self.step("Events the Omaha server received")
        self.show_events(server)
        h.stop_services()
        self.step("Slot table after the update: B is next with one try, A untouched")
        self.show_slots()
        if h.slot_digest("a") != h.usr_a_digest:
            raise HostError("USR-A changed!")
        self.say("USR-A is byte-for-byte what it was before the update")

    def boot(self, expect):
        h = self.host
        chosen = h.boot_select()
        slot = chosen.get("slot") or chosen.get("next")
        self.say(f"gptprio.next chose {slot} ({chosen.get('label', '')})")
        if slot != expect:
            raise HostError(f"expected the boot loader to pick {expect}, it picked {slot}")
        # What the initrd does before mounting /usr: the root hash comes from the slot's kernel.
        h.verify_slot(slot)
        self.say(f"verity: every block of USR-{slot.upper()} matches the root hash in vmlinuz-{slot}")
        h.boot_into(slot)

    def first_check_after_boot(self, server, version, expect_refusal=False):
        h = self.host
        shutil.rmtree(h.root / "run", ignore_errors=True)
        h.new_boot_id()
        h.set_release(version)
        before = len(server.events())
        self.start_services(server)
        r = h.omaha("check", "--wait", check=not expect_refusal)
        if expect_refusal:
            self.say("omaha-client: " + (r.stderr.strip().splitlines() or ["(no message)"])[-1].removeprefix("omaha-client: "))
        st = h.omaha_status()
        h.stop_services()
        return before, st

    def happy(self, server):
        h = self.host
        self.step("Reboot: the boot loader's choice (gptprio.next) spends B's try")
        self.boot("b")
        self.show_slots()
        self.step("boot-complete.target reached on B: mark-good")
        h.run(h.prog("slot-manager"), *h.slot_args(), "mark-good")
        self.show_slots()
        self.step(f"First update check on B reports {NEW} installed (event 3/2 with previousversion)")
        before, st = self.first_check_after_boot(server, NEW)
        evs = self.show_events(server, before)
        ok = any(e[0] == 3 and e[1] == 2 and e[3] == OLD for e in evs)
        s = h.slot_status()
        b = [x for x in s["slots"] if x["slot"] == "b"][0]
        ok = ok and s["booted"] == "b" and b["successful"] and h.slot_digest("a") == h.usr_a_digest
        return ok

    def rollback(self, server):
        h = self.host
        self.step("Reboot: the boot loader's choice (gptprio.next) spends B's only try")
        self.boot("b")
        self.step("B never reaches boot-complete.target (a health check fails): no mark-good")
        self.show_slots()
        self.step("Next reboot: B has no tries left and was never good, so the boot loader returns to A")
        self.boot("a")
        self.show_slots()
        self.step(f"First update check on A reports the rollback (error 44) and does not fetch {NEW} again")
        requests_before = len(server.payload_requests)
        before, st = self.first_check_after_boot(server, OLD, expect_refusal=True)
        evs = self.show_events(server, before)
        self.say(f"payload downloads after the rollback: {len(server.payload_requests) - requests_before}")
        ok = any(e[0] == 3 and e[1] == 0 and e[2] is not None and (e[2] & 0xffff) == 44 for e in evs)
        ok = ok and len(server.payload_requests) == requests_before
        ok = ok and h.slot_status()["booted"] == "a" and h.slot_digest("a") == h.usr_a_digest
        return ok

    def main(self):
        h = self.host
        if h.work.exists():
            shutil.rmtree(h.work)
        h.work.mkdir(parents=True)
        print(f"switchyard demo: A/B update of a disk image ({'rollback story' if self.args.rollback else 'update story'})")
        h.make_root(OLD)
        self.build_host()
        self.build_update()
        if self.args.loop:
            self.step("Attach the disk image to a loop device")
            dev = h.attach_loop()
            self.say(f"{dev} with partitions {dev}p1..p9")
        try:
            self.step("Slot table before the update: A booted and good")
            self.show_slots()
            with OmahaServer(payload=h.payload, version=NEW, tls=True) as server:
                self.say(f"local Omaha server (Nebraska framing) at {server.url}, offering {NEW}")
                self.update(server)
                ok = self.rollback(server) if self.args.rollback else self.happy(server)
                if self.args.json_summary:
                    self.write_summary(server)
        finally:
            h.stop_services()
            h.detach_loop()
        print()
        print("RESULT: " + ("OK" if ok else "FAILED") + (" - rolled back to A, A untouched" if self.args.rollback
                                                        else f" - B runs {NEW} and is marked good, A untouched"))
        return 0 if ok else 1

    def write_summary(self, server):
        """Facts for tests (tests/integration/e2e): where things are, what the server saw."""
        h = self.host
        summary = {
            "disk": str(h.disk.path), "esp": str(h.esp), "cmdline": str(h.cmdline), "loop": h.loopdev,
            "usr_a_digest": h.usr_a_digest, "new_image": str(h.new_image), "payload": str(h.payload),
            "new_root_hash": h.new_root_hash,
            "events": [list(e) for e in server.events()],
            "payload_requests": [[p.method, p.range, p.status] for p in server.payload_requests],
            "offsets": {s: [h.disk.slot(s).offset, h.disk.slot(s).size, h.disk.slot(s).number] for s in "ab"},
        }
        pathlib.Path(self.args.json_summary).write_text(json.dumps(summary, indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=str(TOP / "build-demo"))
    p.add_argument("--work", default=str(TOP / "demo-work"))
    p.add_argument("--rollback", action="store_true")
    p.add_argument("--loop", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json-summary", metavar="FILE", help="write the final facts as JSON (for tests)")
    try:
        return Demo(p.parse_args()).main()
    except HostError as e:
        sys.exit(f"demo: {e}")


if __name__ == "__main__":
    sys.exit(main())
