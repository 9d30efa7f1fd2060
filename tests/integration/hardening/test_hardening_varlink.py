"""io.switchyard.Hardening over varlink (`hardening varlink --listen=PATH`), with the independent
Python client from tests/lib/varlink.py."""
import subprocess

import pytest

import flatcar_root
from hardening_helpers import froot  # noqa: F401

import varlink


@pytest.fixture
def service(program, froot, tmp_path):
    sock = tmp_path / "io.switchyard.Hardening"
    proc = subprocess.Popen([str(program("hardening")), f"--root={froot}", "varlink", f"--listen={sock}"],
                            stderr=subprocess.PIPE, text=True)
    try:
        varlink.wait_for_socket(sock, process=proc)
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.returncode == 0, proc.stderr.read()


def statuses(report):
    return {m["name"]: m["status"] for m in report["measures"]}


def test_audit_apply_revert(service, froot):
    before = flatcar_root.tree_state(froot)
    with varlink.Client(service) as c:
        rep = c.call("io.switchyard.Hardening.Audit", {})
        assert rep["compliant"] is False and rep["profile"] == "guide"
        assert set(statuses(rep).values()) == {"not-compliant"}

        rep = c.call("io.switchyard.Hardening.Apply", {"dry_run": True})
        assert rep["dry_run"] is True and rep["changed"] is False
        assert "+core:x:500:500:Flatcar Admin:/home/core:/sbin/nologin\n" in rep["diff"]
        assert flatcar_root.tree_state(froot) == before

        rep = c.call("io.switchyard.Hardening.Apply", {})
        assert rep["changed"] is True and set(statuses(rep).values()) == {"applied"}
        rep = c.call("io.switchyard.Hardening.Apply", {"dry_run": False})
        assert rep["changed"] is False and set(statuses(rep).values()) == {"unchanged"}
        assert c.call("io.switchyard.Hardening.Audit", {})["compliant"] is True

        rep = c.call("io.switchyard.Hardening.Revert", {})
        assert rep["changed"] is True and rep["remaining"] == 0
    assert flatcar_root.tree_state(froot) == before


def test_errors_and_introspection(service, froot):
    with varlink.Client(service) as c:
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("io.switchyard.Hardening.Apply", {"dry_run": "yes"})
        assert e.value.name == "org.varlink.service.InvalidParameter"
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("io.switchyard.Hardening.Audit", {"bogus": 1})
        assert e.value.name == "org.varlink.service.InvalidParameter"
        desc = c.call("org.varlink.service.GetInterfaceDescription", {"interface": "io.switchyard.Hardening"})
        assert "method Apply(dry_run: ?bool)" in desc["description"]
        # A broken configuration is an error reply; the service keeps serving.
        (froot / "etc/switchyard").mkdir()
        (froot / "etc/switchyard/hardening.conf").write_text("PROFILE=nope\n")
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("io.switchyard.Hardening.Audit", {})
        assert e.value.name == "io.switchyard.Hardening.Failed"
        assert "hardening.conf" in e.value.parameters["message"]
        (froot / "etc/switchyard/hardening.conf").unlink()
        assert "measures" in c.call("io.switchyard.Hardening.Audit", {})


def test_socket_activation_and_exit_on_idle(program, froot, tmp_path):
    import activator
    import time
    sock = tmp_path / "run/switchyard/io.switchyard.Hardening"
    with activator.Activator(sock, [program("hardening"), f"--root={froot}", "varlink"]) as a:
        with varlink.Client(str(sock)) as c:
            assert c.call("io.switchyard.Hardening.Audit", {})["compliant"] is False
            c.call("io.switchyard.Hardening.Apply", {})
        assert a.starts == 1
        # The service exits by itself once idle (10 s), with status 0.
        deadline = time.monotonic() + 20
        while not a.exit_codes and time.monotonic() < deadline:
            time.sleep(0.2)
        assert a.exit_codes == [0]
        with varlink.Client(str(sock)) as c:
            assert c.call("io.switchyard.Hardening.Audit", {})["compliant"] is True
        assert a.starts == 2
