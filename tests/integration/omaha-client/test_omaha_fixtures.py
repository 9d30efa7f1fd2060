"""Requests compared byte for byte with the derived fixtures; every response fixture parsed to the right
result (spec 1.2, 1.4, 1.6)."""
import json
import subprocess

import pytest

from omaha_env import skip_unless_built, arch, make_root, set_pref

pytestmark = skip_unless_built()


def print_request(binary, root, *args):
    r = subprocess.run([str(binary), f"--root={root}", "print-request", *args], capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def expected(fixtures_dir, name):
    data = (fixtures_dir / "omaha/derived" / name).read_bytes()
    return data.replace(b"_x86_64\"", f"_{arch()}\"".encode())


# (fixture, running version, aleph pref, previous-version pref (None = missing), print-request args)
REQUESTS = [
    ("request-updatecheck-scheduled.xml", "4459.0.0", "4459.0.0", "", ["updatecheck"]),
    ("request-updatecheck-interactive.xml", "4459.0.0", "4459.0.0", "", ["--interactive", "updatecheck"]),
    ("request-updatecheck-fresh-install.xml", "4459.0.0", None, None, ["updatecheck"]),
    ("request-updatecheck-first-after-update.xml", "4487.0.0", "4459.0.0", "4459.0.0", ["updatecheck"]),
    ("request-updatecheck-rollback-detected.xml", "4459.0.0", "4459.0.0", "4459.0.0", ["updatecheck"]),
    ("request-ping-only.xml", "4459.0.0", "4459.0.0", "", ["ping"]),
    ("request-event-download-started.xml", "4459.0.0", "4459.0.0", "", ["event", "13", "1"]),
    ("request-event-download-finished.xml", "4459.0.0", "4459.0.0", "", ["event", "14", "1"]),
    ("request-event-update-installed.xml", "4459.0.0", "4459.0.0", "", ["event", "3", "1"]),
    ("request-event-error-response-invalid.xml", "4459.0.0", "4459.0.0", "", ["event", "3", "0", "34"]),
    ("request-event-deferred-backoff.xml", "4459.0.0", "4459.0.0", "", ["event", "3", "9", "40"]),
]


@pytest.mark.parametrize("fixture,version,aleph,previous,args", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_request_bytes(program, fixtures_dir, tmp_path, fixture, version, aleph, previous, args):
    root = make_root(tmp_path / "root", version=version)
    if aleph is not None:
        set_pref(root, "aleph-version", aleph)
    if previous is not None:
        set_pref(root, "previous-version", previous)
    assert print_request(program("omaha-client"), root, *args) == expected(fixtures_dir, fixture)


def test_aleph_created_on_first_use(program, tmp_path):
    root = make_root(tmp_path / "root", version="4500.1.0")
    out = print_request(program("omaha-client"), root, "updatecheck")
    assert b'alephversion="4500.1.0"' in out
    assert (root / "var/lib/switchyard/omaha-client/prefs/aleph-version").read_text() == "4500.1.0"


def test_update_engine_prefs_imported(program, tmp_path):
    root = make_root(tmp_path / "root", version="4487.0.0")
    ue = root / "var/lib/update_engine/prefs"
    ue.mkdir(parents=True)
    (ue / "aleph-version").write_text("3033.2.0")
    (ue / "previous-version").write_text("4459.0.0")
    out = print_request(program("omaha-client"), root, "updatecheck")
    assert b'alephversion="3033.2.0"' in out
    assert b'previousversion="4459.0.0"' in out


def test_escaping_and_server_flag(program, tmp_path):
    # MACHINE_ALIAS from /etc wins over /usr (first file with the key), quotes are escaped (deviation from
    # update_engine, which would emit malformed XML), and a non-production SERVER sets bit 28 on errors.
    root = make_root(tmp_path / "root", server="http://127.0.0.1:1/v1/update/",
                     extra_update_conf='MACHINE_ALIAS="web "1" <&> \u03a9"\nGROUP=beta\n')
    out = print_request(program("omaha-client"), root, "event", "3", "0", "34").decode()
    assert 'machinealias="web &quot;1&quot; &lt;&amp;&gt; &#x3A9;"' in out
    assert 'track="beta"' in out
    assert 'errorcode="268435490"' in out


def parse(binary, path):
    r = subprocess.run([str(binary), "--json", "parse-response", str(path)], capture_output=True, text=True)
    return r.returncode, json.loads(r.stdout)


def test_responses(program, fixtures_dir):
    binary = program("omaha-client")
    om = fixtures_dir / "omaha"

    rc, j = parse(binary, om / "derived/nebraska-update-response.xml")
    assert rc == 0
    assert j["status"] == "ok" and j["version"] == "3732.0.0"
    assert j["urls"] == ["https://update.release.flatcar-linux.net/amd64-usr/3732.0.0/flatcar_production_update.gz"]
    assert j["size"] == 382137917
    assert j["sha256"] == "stLG3U/o4Ar8TMHFwT/RWB0iNkaWOO6QtLrq6+AHBbA="
    assert j["disable_payload_backoff"] is True and j["is_delta"] is False
    assert j["max_failure_count_per_url"] == 10
    assert "package_sha256" not in j or j["package_sha256"] is None

    rc, j = parse(binary, om / "ue-rs/omaha-response-example.xml")
    assert rc == 0 and j["version"] == "3732.0.0" and j["size"] == 382137917
    assert j["package_name"] == "flatcar_production_update.gz"

    rc, j = parse(binary, om / "derived/nebraska-noupdate-response.xml")
    assert rc == 0 and j["status"] == "noupdate"

    for name in ("derived/nebraska-policy-error-response.xml", "derived/nebraska-event-ack-response.xml"):
        rc, j = parse(binary, om / name)
        assert rc != 0 and j["status"] == "error" and j["errorcode"] == 34, name

    rc, j = parse(binary, om / "go-omaha/update-engine_no-update_response.xml")  # malformed upstream
    assert rc != 0 and j["errorcode"] == 31

    rc, j = parse(binary, om / "go-omaha/update-engine_update_response.xml")
    assert rc == 0 and j["version"] == "9999.0.0"
    assert j["urls"] == ["http://kam:8080/static/update.gz"]
    assert j["is_delta"] is False  # IsDelta="True" is a different, ignored attribute
    assert j["disable_payload_backoff"] is False

    rc, j = parse(binary, om / "go-omaha/example-new-response.xml")
    assert rc == 0 and j["urls"] == ["http://localhost/updates/update.gz"]
    assert j["is_delta"] is True and j["disable_payload_backoff"] is True and j["size"] == 67546213

    # update_engine's XPath picks the first manifest of a multi-manifest response.
    rc, j = parse(binary, om / "go-omaha/multi-manifest-response.xml")
    assert rc == 0 and j["version"] == "1.5.0" and j["size"] == 536373876 and j["sha256"] == "sha256_1_5_0"

    rc, j = parse(binary, om / "go-omaha/single-manifest-response.xml")
    assert rc == 0 and j["version"] == "3.0.0" and j["size"] == 542373876


def test_response_empty_and_garbage(program, tmp_path):
    binary = program("omaha-client")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "decl").write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert parse(binary, tmp_path / "empty")[1]["errorcode"] == 30
    assert parse(binary, tmp_path / "decl")[1]["errorcode"] == 31
