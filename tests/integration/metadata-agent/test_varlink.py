"""io.switchyard.Metadata served by `metadata-agent varlink`."""
import os
import subprocess
import time

import pytest

import metadata_mock

varlink = pytest.importorskip("varlink", reason="tests/lib/varlink.py (varlink helper) is not on this branch")


def need_varlink_mode(agent):
    """Skips unless the binary was built with its varlink mode (needs src/shared/varlink.c)."""
    p = subprocess.run([str(agent), "varlink"], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")})
    if 'Unknown command "varlink"' in p.stderr:
        pytest.skip("metadata-agent was built without varlink (src/shared/varlink.c not on this branch)")
    assert p.returncode != 0 and "No socket passed by systemd" in p.stderr


@pytest.fixture
def service(program, fixtures_dir, tmp_path):
    agent = program("metadata-agent")
    need_varlink_mode(agent)
    mock, exp = metadata_mock.provider_mock("aws", fixtures_dir)
    sock = tmp_path / "io.switchyard.Metadata"
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("flatcar.oem.id=ec2\n")
    env = dict(os.environ, SWITCHYARD_METADATA_RETRIES="1", SWITCHYARD_METADATA_BACKOFF_MS="20", **exp["env"])
    proc = subprocess.Popen([str(agent), "varlink", f"--listen={sock}", f"--cmdline-file={cmdline}"], env=env,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(100):
        if sock.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        err = proc.stderr.read()
        mock.close()
        pytest.fail(f"metadata-agent varlink exited: {err}")
    yield sock, mock, exp
    proc.terminate()
    proc.wait(timeout=10)
    mock.close()


def test_get_attributes_and_keys(service, fixtures_dir):
    sock, mock, exp = service
    with varlink.Client(str(sock)) as c:
        r = c.call("io.switchyard.Metadata.GetAttributes", {})
        assert r["provider"] == "aws"
        assert r["attributes"] == {f"AFTERBURN_{k}": v for k, v in exp["attributes"].items()}
        assert r["hostname"] == "test-hostname"
        n = len(mock.requests)
        r = c.call("io.switchyard.Metadata.GetAttributes", {"style": "flatcar"})
        assert r["attributes"]["COREOS_EC2_REGION"] == "test-region"
        assert len(mock.requests) == n  # served from the cache
        r = c.call("io.switchyard.Metadata.GetSshKeys", {})
        assert r == {"provider": "aws", "keys": []}
        r = c.call("io.switchyard.Metadata.Refresh", {})
        assert len(mock.requests) > n and r["attributes"]["AFTERBURN_AWS_INSTANCE_ID"] == "test-instance-id"
        desc = c.call("org.varlink.service.GetInterfaceDescription", {"interface": "io.switchyard.Metadata"})
        assert "method GetAttributes" in desc["description"]


def test_errors_keep_serving(service):
    sock, mock, exp = service
    with varlink.Client(str(sock)) as c:
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("io.switchyard.Metadata.GetAttributes", {"provider": "qemu"})
        assert e.value.name == "io.switchyard.Metadata.UnknownProvider"
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("io.switchyard.Metadata.GetAttributes", {"style": "sed"})
        assert e.value.name == "org.varlink.service.InvalidParameter"
        mock.routes[("GET", "/2021-01-03/meta-data/instance-id")].status = 500
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("io.switchyard.Metadata.Refresh", {})
        assert e.value.name == "io.switchyard.Metadata.FetchFailed"
        assert e.value.parameters["provider"] == "aws"
        mock.routes[("GET", "/2021-01-03/meta-data/instance-id")].status = 200
        assert c.call("io.switchyard.Metadata.GetAttributes", {})["provider"] == "aws"


def test_socket_activation_and_idle_exit(program, fixtures_dir, tmp_path):
    from activator import Activator
    agent = program("metadata-agent")
    need_varlink_mode(agent)
    mock, exp = metadata_mock.provider_mock("gcp", fixtures_dir)
    sock = tmp_path / "run/switchyard/io.switchyard.Metadata"
    env = dict(os.environ, SWITCHYARD_METADATA_IDLE_SEC="1", SWITCHYARD_METADATA_RETRIES="0", **exp["env"])
    with mock, Activator(sock, [agent, "varlink"], env=env) as act:
        with varlink.Client(str(sock)) as c:
            r = c.call("io.switchyard.Metadata.GetAttributes", {"provider": "gce", "style": "flatcar"})
        assert r["provider"] == "gcp" and r["attributes"]["COREOS_GCE_MACHINE_TYPE"] == "test-machine-type"
        for _ in range(100):  # exits when idle, and is started again by the next client
            if act.proc is None or act.proc.poll() is not None:
                break
            time.sleep(0.05)
        assert act.proc is None or act.proc.poll() == 0
        with varlink.Client(str(sock)) as c:
            assert c.call("io.switchyard.Metadata.GetSshKeys", {"provider": "gcp"}) == {"provider": "gcp", "keys": []}
        assert act.starts == 2
