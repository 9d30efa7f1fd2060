"""metadata-agent against local mock metadata services replaying ../shared/fixtures/metadata."""
import json
import os
import pathlib
import stat
import subprocess

import pytest

import metadata_mock

FAST = {"SWITCHYARD_METADATA_RETRIES": "2", "SWITCHYARD_METADATA_BACKOFF_MS": "20",
        "SWITCHYARD_METADATA_TIMEOUT": "5"}
HTTP_PROVIDERS = ["aws", "gcp", "azure", "packet", "scaleway", "akamai", "oraclecloud", "hetzner",
                  "openstack-metadata", "aliyun", "exoscale", "vultr", "upcloud", "cloudstack-metadata",
                  "azurestack"]


@pytest.fixture
def agent(program):
    return program("metadata-agent")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Two freshly generated public keys (ed25519 and RSA)."""
    if not os.path.exists("/usr/bin/ssh-keygen"):
        pytest.skip("ssh-keygen is not installed")
    d = tmp_path_factory.mktemp("keys")
    out = []
    for t in ("ed25519", "rsa"):
        subprocess.run(["ssh-keygen", "-q", "-t", t, "-N", "", "-C", f"test-{t}", "-f", str(d / t)], check=True)
        out.append((d / f"{t}.pub").read_text().strip())
    return out


def run(agent, args, env=None, check=True):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("SWITCHYARD_METADATA_") or k.lower().endswith("_proxy"):
            del e[k]
    e.update(FAST)
    e.update(env or {})
    p = subprocess.run([str(agent)] + args, env=e, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"metadata-agent failed ({p.returncode}): {p.stderr}")
    return p


def read_env_file(path):
    out = {}
    for line in pathlib.Path(path).read_text().splitlines():
        k, v = line.split("=", 1)
        assert k not in out
        out[k] = v
    return out


def make_root(tmp_root, user="core"):
    home = tmp_root / "home" / user
    home.mkdir(parents=True)
    (tmp_root / "etc" / "passwd").write_text(
        f"root:x:0:0:root:/root:/bin/sh\n{user}:x:{os.getuid()}:{os.getgid()}:Core:/home/{user}:/bin/bash\n")
    return home


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
def test_attributes_match_spec(agent, fixtures_dir, tmp_path, provider, keys):
    mock, exp = metadata_mock.provider_mock(provider, fixtures_dir, ssh_keys=keys)
    with mock:
        out = tmp_path / "run" / "metadata" / "afterburn"
        run(agent, ["--provider", provider, "--attributes", str(out), "--hostname", str(tmp_path / "hostname")],
            env=exp["env"])
        got = read_env_file(out)
        assert got == {f"AFTERBURN_{k}": v for k, v in exp["attributes"].items()}
        # Sorted, one line each, mode 0644, no temporary files left behind.
        lines = out.read_text().splitlines()
        assert lines == sorted(lines)
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        assert sorted(p.name for p in out.parent.iterdir()) == ["afterburn"]
        if exp["hostname"]:
            assert (tmp_path / "hostname").read_text() == exp["hostname"] + "\n"
        else:
            assert not (tmp_path / "hostname").exists()


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
def test_ssh_keys_written(agent, fixtures_dir, tmp_root, provider, keys):
    home = make_root(tmp_root)
    mock, exp = metadata_mock.provider_mock(provider, fixtures_dir, ssh_keys=keys)
    with mock:
        run(agent, ["--provider", provider, "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"])
    f = home / ".ssh" / "authorized_keys.d" / "afterburn"
    if not exp["ssh_keys"]:
        assert not f.exists()
        return
    assert f.read_text().splitlines() == exp["ssh_keys"]
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / ".ssh").stat().st_mode) == 0o700
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700
    assert f.stat().st_uid == os.getuid()
    assert [p.name for p in f.parent.iterdir()] == ["afterburn"]


def test_flatcar_names_and_legacy_cli(agent, fixtures_dir, tmp_path):
    """Flatcar's unit: coreos-metadata -cmdline -attributes=/run/metadata/flatcar, renamed natively."""
    link = tmp_path / "coreos-metadata"
    link.symlink_to(agent)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("BOOT_IMAGE=/vmlinuz flatcar.oem.id=ec2 root=LABEL=ROOT\n")
    mock, exp = metadata_mock.provider_mock("aws", fixtures_dir)
    with mock:
        out = tmp_path / "flatcar"
        run(link, ["-cmdline", f"-attributes={out}", f"-cmdline-file={cmdline}"], env=exp["env"])
    got = read_env_file(out)
    assert got["COREOS_EC2_INSTANCE_ID"] == "test-instance-id"
    assert got["COREOS_EC2_AVAILABILITY_ZONE_ID"] == "test-availability-zone-id"
    assert got["COREOS_EC2_REGION"] == "test-region"
    assert len(got) == len(exp["attributes"]) and all(k.startswith("COREOS_EC2_") for k in got)


def test_flatcar_style_gce_and_values_untouched(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("gcp", fixtures_dir)
    mock.add("/computeMetadata/v1/instance/hostname", "AWS-and-GCP-host", required_headers={"Metadata-Flavor": "Google"})
    with mock:
        out = tmp_path / "flatcar"
        run(agent, ["-provider", "gce", "-attributes", str(out), "-attributes-style", "flatcar"], env=exp["env"])
    got = read_env_file(out)
    assert got["COREOS_GCE_HOSTNAME"] == "AWS-and-GCP-host"  # sed would have rewritten the value too
    assert got["COREOS_GCE_IP_LOCAL_0"] == "test-ip-local"


@pytest.mark.parametrize("line,provider", [
    ("flatcar.oem.id=azure coreos.oem.id=ec2", "azure"),
    ("coreos.oem.id=gce", "gcp"),
    ("flatcar.oem.id= coreos.oem.id=ec2", "aws"),
])
def test_provider_from_cmdline(agent, tmp_path, line, provider):
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(line + "\n")
    # No action: only the provider lookup runs; an unreachable base address is never contacted.
    p = run(agent, ["--cmdline", "--cmdline-file", str(cmdline), "--json"], check=False,
            env={f"SWITCHYARD_METADATA_URL_{provider.upper()}": "http://127.0.0.1:9",
                 "SWITCHYARD_METADATA_URL_AZURE_WIRESERVER": "http://127.0.0.1:9",
                 "SWITCHYARD_METADATA_RETRIES": "0"})
    assert f"127.0.0.1:9" in p.stderr and p.returncode != 0


def test_unknown_and_missing_provider(agent, tmp_path):
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("flatcar.oem.id=qemu\n")
    p = run(agent, ["--cmdline", "--cmdline-file", str(cmdline), "--attributes", str(tmp_path / "a")], check=False)
    assert p.returncode != 0 and 'Unknown provider "qemu"' in p.stderr
    cmdline.write_text("root=/dev/sda\n")
    p = run(agent, ["--cmdline", "--cmdline-file", str(cmdline), "--attributes", str(tmp_path / "a")], check=False)
    assert p.returncode != 0 and "flatcar.oem.id" in p.stderr
    p = run(agent, ["--attributes", str(tmp_path / "a")], check=False)
    assert p.returncode != 0 and "Exactly one of --provider and --cmdline" in p.stderr
    assert not (tmp_path / "a").exists()


def test_aws_imdsv2_token_sent(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("aws", fixtures_dir)
    with mock:
        run(agent, ["--provider", "aws", "--attributes", str(tmp_path / "a")], env=exp["env"])
        gets = [r for r in mock.requests if r["method"] == "GET"]
        assert gets and all(r["headers"].get("x-aws-ec2-metadata-token") == "test-api-token" for r in gets)
        assert len(mock.requests_to("/latest/api/token", "PUT")) == 1


def test_aws_missing_token_endpoint_falls_back_to_imdsv1(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("aws", fixtures_dir)
    with mock:
        mock.remove("/latest/api/token", "PUT")
        for path, body in json.loads((fixtures_dir / "metadata/aws/imds-endpoints.json").read_text())["get"].items():
            mock.add(path, body)  # no token required
        p = run(agent, ["--provider", "aws", "--attributes", str(tmp_path / "a")], env=exp["env"])
        assert "falling back to IMDSv1" in p.stderr
        assert read_env_file(tmp_path / "a") == {f"AFTERBURN_{k}": v for k, v in exp["attributes"].items()}
        assert all("x-aws-ec2-metadata-token" not in r["headers"] for r in mock.requests if r["method"] == "GET")
        assert len(mock.requests_to("/latest/api/token", "PUT")) == 3  # 1 + 2 retries


def test_aws_ssh_keys_listing(agent, fixtures_dir, tmp_root, keys):
    home = make_root(tmp_root)
    mock, exp = metadata_mock.provider_mock("aws", fixtures_dir)
    h = {"X-aws-ec2-metadata-token": "test-api-token"}
    with mock:
        mock.add("/2021-01-03/meta-data/public-keys", "0=first\n1=second", required_headers=h)
        mock.add("/2021-01-03/meta-data/public-keys/0/openssh-key", keys[0] + "\n", required_headers=h)
        mock.add("/2021-01-03/meta-data/public-keys/1/openssh-key", keys[1], required_headers=h)
        run(agent, ["--provider", "ec2", "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"])
        f = home / ".ssh/authorized_keys.d/afterburn"
        assert f.read_text() == keys[0] + "\n" + keys[1] + "\n"
        # A 404 on a listed key is an error; the existing file stays as it was.
        mock.remove("/2021-01-03/meta-data/public-keys/1/openssh-key")
        p = run(agent, ["--provider", "ec2", "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"], check=False)
        assert p.returncode != 0 and "HTTP status 404" in p.stderr
        assert f.read_text() == keys[0] + "\n" + keys[1] + "\n"
        # A 404 on the listing means no keys: the file is removed.
        mock.remove("/2021-01-03/meta-data/public-keys")
        run(agent, ["--provider", "ec2", "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"])
        assert not f.exists()


def test_gcp_ssh_key_order(agent, fixtures_dir, tmp_root, keys):
    home = make_root(tmp_root)
    mock, exp = metadata_mock.provider_mock("gcp", fixtures_dir)
    h = {"Metadata-Flavor": "Google"}
    with mock:
        mock.add("/computeMetadata/v1/instance/attributes/ssh-keys", f"core:{keys[0]}\n\n", required_headers=h)
        mock.add("/computeMetadata/v1/project/attributes/ssh-keys", f"other:{keys[1]}", required_headers=h)
        run(agent, ["--provider", "gcp", "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"])
        f = home / ".ssh/authorized_keys.d/afterburn"
        assert f.read_text().splitlines() == keys
        mock.add("/computeMetadata/v1/instance/attributes/block-project-ssh-keys", "true", required_headers=h)
        run(agent, ["--provider", "gcp", "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"])
        assert f.read_text().splitlines() == keys[:1]
        mock.add("/computeMetadata/v1/instance/attributes/ssh-keys", "no-colon-here", required_headers=h)
        p = run(agent, ["--provider", "gcp", "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"], check=False)
        assert p.returncode != 0 and "user:" in p.stderr
        assert f.read_text().splitlines() == keys[:1]


def test_ssh_keys_unknown_user(agent, fixtures_dir, tmp_root):
    make_root(tmp_root)
    mock, exp = metadata_mock.provider_mock("vultr", fixtures_dir)
    with mock:
        p = run(agent, ["--provider", "vultr", "--ssh-keys", "nobody-here", "--root", str(tmp_root)], env=exp["env"],
                check=False)
    assert p.returncode != 0 and "User nobody-here does not exist" in p.stderr


def test_ssh_keys_refuse_symlinked_dir(agent, fixtures_dir, tmp_root, tmp_path):
    home = make_root(tmp_root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / ".ssh").symlink_to(elsewhere)
    mock, exp = metadata_mock.provider_mock("vultr", fixtures_dir)
    with mock:
        p = run(agent, ["--provider", "vultr", "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"], check=False)
    assert p.returncode != 0
    assert list(elsewhere.iterdir()) == []


def test_digitalocean_placeholder_key_fails_without_output(agent, fixtures_dir, tmp_root):
    """The fixture's key is truncated; DigitalOcean fails the run on a bad key (only Aliyun, Vultr and
    UpCloud skip them)."""
    home = make_root(tmp_root)
    mock, exp = metadata_mock.provider_mock("digitalocean", fixtures_dir)
    with mock:
        p = run(agent, ["--provider", "digitalocean", "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"],
                check=False)
        assert p.returncode != 0 and "Invalid SSH public key" in p.stderr
        assert not (home / ".ssh").exists()
        out = tmp_root / "attrs"
        run(agent, ["--provider", "digitalocean", "--attributes", str(out)], env=exp["env"])
        assert read_env_file(out) == {f"AFTERBURN_{k}": v for k, v in exp["attributes"].items()}


def test_vultr_skips_bad_key(agent, fixtures_dir, tmp_root, keys):
    home = make_root(tmp_root)
    mock, exp = metadata_mock.provider_mock("vultr", fixtures_dir)
    with mock:
        mock.add("/v1/public-keys", f"garbage line\n{keys[0]}\n")
        run(agent, ["--provider", "vultr", "--ssh-keys", "core", "--root", str(tmp_root)], env=exp["env"])
    assert (home / ".ssh/authorized_keys.d/afterburn").read_text() == keys[0] + "\n"


# ---- error cases: each gives a clear message and leaves no (partial) file ----

def _attr_fails(agent, provider, exp, tmp_path, env=None):
    out = tmp_path / "out" / "attrs"
    out.parent.mkdir(exist_ok=True)
    out.write_text("OLD=1\n")
    e = dict(exp["env"])
    e.update(env or {})
    p = run(agent, ["--provider", provider, "--attributes", str(out), "--hostname", str(tmp_path / "out" / "hn")],
            env=e, check=False)
    assert p.returncode != 0
    assert out.read_text() == "OLD=1\n"
    assert sorted(x.name for x in out.parent.iterdir()) == ["attrs"]
    return p


@pytest.mark.parametrize("missing", ["instance-id", "vm-id"])  # first and last of one concurrent batch
def test_error_404_is_fatal_for_exoscale(agent, fixtures_dir, tmp_path, missing):
    mock, exp = metadata_mock.provider_mock("exoscale", fixtures_dir)
    with mock:
        mock.remove(f"/1.0/meta-data/{missing}")
        p = _attr_fails(agent, "exoscale", exp, tmp_path)
    assert f"/1.0/meta-data/{missing} failed after 3 attempts: HTTP status 404" in p.stderr
    assert "LeakSanitizer" not in p.stderr


def test_error_500_then_recovery(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("digitalocean", fixtures_dir)
    with mock:
        route = mock.routes[("GET", "/metadata/v1.json")]
        route.fail_first = 2
        out = tmp_path / "attrs"
        p = run(agent, ["--provider", "digitalocean", "--attributes", str(out)], env=exp["env"])
        assert route.hits == 3
        assert "HTTP status 500" in p.stderr and "retrying" in p.stderr
        assert read_env_file(out)["AFTERBURN_DIGITALOCEAN_REGION"] == "nyc3"
        route.hits = 0
        route.fail_first = 10
        p = _attr_fails(agent, "digitalocean", exp, tmp_path)
        assert "failed after 3 attempts: HTTP status 500" in p.stderr


def test_error_slow_response_times_out(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("scaleway", fixtures_dir)
    with mock:
        mock.routes[("GET", "/conf?format=json")].delay = 3
        p = _attr_fails(agent, "scaleway", exp, tmp_path,
                        env={"SWITCHYARD_METADATA_TIMEOUT": "1", "SWITCHYARD_METADATA_RETRIES": "1"})
    assert "failed after 2 attempts" in p.stderr and "timed out" in p.stderr


def test_error_malformed_json(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("oraclecloud", fixtures_dir)
    with mock:
        mock.add("/opc/v2/instance", '{"id": "x", ', required_headers={"Authorization": "Bearer Oracle"})
        p = _attr_fails(agent, "oraclecloud", exp, tmp_path)
    assert "malformed JSON" in p.stderr


def test_error_json_wrong_shape(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("oraclecloud", fixtures_dir)
    doc = json.loads((fixtures_dir / "metadata/oraclecloud/opc-v2-instance.json").read_text())
    doc["metadata"] = {"nested": {"a": 1}}  # 5.10.0 requires string values
    with mock:
        mock.add("/opc/v2/instance", json.dumps(doc), required_headers={"Authorization": "Bearer Oracle"})
        p = _attr_fails(agent, "oraclecloud", exp, tmp_path)
    assert 'metadata value "nested" is not a string' in p.stderr


def test_error_malformed_xml(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("azure", fixtures_dir)
    with mock:
        mock.add("/machine/?comp=goalstate", "<GoalState><Incarnation>1</Incarnation>")
        p = _attr_fails(agent, "azure", exp, tmp_path)
    assert "malformed XML" in p.stderr


def test_error_xml_entities_refused(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("azure", fixtures_dir)
    with mock:
        mock.add("/?comp=versions", '<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaa">]><Versions>&a;</Versions>')
        p = _attr_fails(agent, "azure", exp, tmp_path)
    assert "malformed XML" in p.stderr


def test_error_azure_unsupported_version(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("azure", fixtures_dir)
    with mock:
        mock.add("/?comp=versions", "<Versions><Supported><Version>2015-04-05</Version></Supported></Versions>")
        p = _attr_fails(agent, "azure", exp, tmp_path)
    assert "2012-11-30" in p.stderr


def test_error_oversized_body(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("hetzner", fixtures_dir)
    with mock:
        route = mock.routes[("GET", "/hetzner/v1/metadata")]
        route.body = b"a: " + b"x" * (3 * 1024 * 1024) + b"\n"
        p = _attr_fails(agent, "hetzner", exp, tmp_path)
        assert "larger than" in p.stderr
        assert route.hits == 1  # not retried


def test_error_newline_in_value(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("vultr", fixtures_dir)
    with mock:
        mock.add("/v1/hostname", "evil\nINJECTED=1")
        p = _attr_fails(agent, "vultr", exp, tmp_path)
    assert "line break" in p.stderr


def test_error_unreachable(agent, tmp_path):
    p = _attr_fails(agent, "upcloud", {"env": {"SWITCHYARD_METADATA_URL_UPCLOUD": "http://127.0.0.1:9"}}, tmp_path)
    assert "metadata/v1/hostname failed after 3 attempts" in p.stderr


def test_requests_are_concurrent(agent, fixtures_dir, tmp_path):
    """Ten independent AWS values, each answered after 0.5 s, are in flight at the same time."""
    mock, exp = metadata_mock.provider_mock("aws", fixtures_dir)
    with mock:
        for (method, path), route in mock.routes.items():
            if path.startswith("/2021-01-03/meta-data/"):
                route.delay = 0.5
        run(agent, ["--provider", "aws", "--attributes", str(tmp_path / "a")], env=exp["env"])
        assert mock.max_in_flight >= 9


def test_proxy_honoured(agent, fixtures_dir, tmp_path):
    """http_proxy from the environment is used (libcurl's proxy variables)."""
    from httpserver import ProxyServer
    mock, exp = metadata_mock.provider_mock("vultr", fixtures_dir)
    with mock, ProxyServer() as proxy:
        run(agent, ["--provider", "vultr", "--attributes", str(tmp_path / "a")],
            env=dict(exp["env"], http_proxy=proxy.url))
        assert read_env_file(tmp_path / "a")["AFTERBURN_VULTR_INSTANCE_ID"] == "test-instance-id"
        forwarded = sorted(r.target for r in proxy.requests)
        assert f"{mock.url}/v1/instanceid" in forwarded and f"{mock.url}/v1/region/regioncode" in forwarded


# ---- check-in ----

def test_azure_ready_report(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("azure", fixtures_dir)
    with mock:
        run(agent, ["--provider", "azure", "--check-in"], env=exp["env"])
        posts = mock.requests_to("/machine/?comp=health", "POST")
    assert len(posts) == 1
    tmpl = (fixtures_dir / "metadata/azure/wireserver/health-ready.xml.template").read_text()
    want = tmpl.replace("{GoalStateIncarnation}", "42").replace(
        "{ContainerId}", "a511aa6d-29e7-4f53-8788-55655dfe848f").replace(
        "{InstanceId}", "f6cd1d7ef1644557b9059345e5ba890c.lars-test-1")
    assert posts[0]["body"].decode().strip() == want.strip()
    assert posts[0]["headers"]["content-type"] == "text/xml; charset=utf-8"
    assert posts[0]["headers"]["x-ms-version"] == "2012-11-30"
    assert posts[0]["headers"]["x-ms-agent-name"] == "com.coreos.afterburn"


def test_packet_phone_home(agent, fixtures_dir):
    mock, exp = metadata_mock.provider_mock("packet", fixtures_dir)
    with mock:
        run(agent, ["--provider", "packet", "--check-in"], env=exp["env"])
        posts = mock.requests_to("/phone-home", "POST")
    assert len(posts) == 1 and posts[0]["body"] == b""
    assert posts[0]["headers"]["content-type"] == "application/json"


def test_scaleway_boot_checkin(agent, fixtures_dir):
    mock, exp = metadata_mock.provider_mock("scaleway", fixtures_dir)
    with mock:
        run(agent, ["--provider", "scaleway", "--check-in"], env=exp["env"])
        patches = mock.requests_to("/state", "PATCH")
    assert len(patches) == 1
    assert patches[0]["body"] == (fixtures_dir / "metadata/scaleway/state-patch-body.json").read_bytes().strip()
    assert patches[0]["headers"]["content-type"] == "application/json"


def test_checkin_without_support_is_a_noop(agent, fixtures_dir):
    mock, exp = metadata_mock.provider_mock("vultr", fixtures_dir)
    with mock:
        p = run(agent, ["--provider", "vultr", "--check-in"], env=exp["env"])
        assert mock.requests == []
    assert "has none" in p.stderr


# ---- config drives ----

def test_openstack_config_drive(agent, fixtures_dir, tmp_path):
    drive = fixtures_dir / "metadata/openstack/config-drive"
    out = tmp_path / "attrs"
    p = run(agent, ["--provider", "openstack", "--config-drive", str(drive), "--attributes", str(out), "--json"])
    meta = json.loads((drive / "openstack/latest/meta_data.json").read_text())
    ec2 = json.loads((drive / "ec2/latest/meta-data.json").read_text())
    want = {"AFTERBURN_OPENSTACK_HOSTNAME": meta["hostname"], "AFTERBURN_OPENSTACK_INSTANCE_UUID": meta["uuid"],
            "AFTERBURN_OPENSTACK_INSTANCE_ID": ec2["instance-id"], "AFTERBURN_OPENSTACK_INSTANCE_TYPE": ec2["instance-type"],
            "AFTERBURN_OPENSTACK_IPV4_LOCAL": ec2["local-ipv4"], "AFTERBURN_OPENSTACK_IPV4_PUBLIC": ec2["public-ipv4"]}
    assert read_env_file(out) == {k: v for k, v in want.items() if v is not None}
    j = json.loads(p.stdout)
    assert j["hostname"] == meta["hostname"]
    assert len(j["ssh_keys"]) == len(meta.get("public_keys", {}))


def test_openstack_falls_back_to_metadata_service(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("openstack-metadata", fixtures_dir)
    with mock:
        p = run(agent, ["--provider", "openstack", "--config-drive", str(tmp_path / "missing"),
                        "--attributes", str(tmp_path / "a")], env=exp["env"])
    assert "metadata service" in p.stderr
    assert read_env_file(tmp_path / "a") == {f"AFTERBURN_{k}": v for k, v in exp["attributes"].items()}


@pytest.mark.parametrize("provider,prefix,keys", [("powervs", "POWERVS", 1), ("ibmcloud-classic", "IBMCLOUD_CLASSIC", 0)])
def test_configdrive_providers(agent, fixtures_dir, tmp_path, provider, prefix, keys):
    drive = fixtures_dir / "metadata" / provider / "config-drive"
    meta = json.loads((drive / "openstack/latest/meta_data.json").read_text())
    p = run(agent, ["--provider", provider, "--config-drive", str(drive), "--json"])
    j = json.loads(p.stdout)
    assert j["attributes"] == {f"AFTERBURN_{prefix}_INSTANCE_ID": meta["uuid"],
                               f"AFTERBURN_{prefix}_LOCAL_HOSTNAME": meta["name"]}
    assert j["hostname"] == meta["name"]
    assert len(j["ssh_keys"]) == keys


# ---- initrd network kargs ----

def test_rd_network_kargs(agent, tmp_path):
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("flatcar.oem.id=openstack root=LABEL=ROOT\n")
    root = tmp_path / "root"
    run(agent, ["exp", "rd-network-kargs", "--cmdline", "--cmdline-file", str(cmdline), "--root", str(root),
                "--default-value", "ip=dhcp rd.neednet=1"])
    assert (root / "etc/cmdline.d/50-afterburn-network-kargs.conf").read_text() == "ip=dhcp rd.neednet=1\n"
    cmdline.write_text("flatcar.oem.id=openstack ip=eth0:dhcp\n")
    root2 = tmp_path / "root2"
    run(agent, ["exp", "rd-network-kargs", "--cmdline", "--cmdline-file", str(cmdline), "--root", str(root2),
                "--default-value", "ip=dhcp"])
    assert not (root2 / "etc").exists()
    cmdline.write_text("flatcar.oem.id=vmware\n")
    p = run(agent, ["exp", "rd-network-kargs", "--cmdline", "--cmdline-file", str(cmdline), "--root", str(root2),
                    "--default-value", ""], check=False)
    assert p.returncode != 0 and "not supported" in p.stderr


def test_help_and_version(agent, fixtures_dir, tmp_path):
    p = run(agent, ["--help"])
    assert "--ssh-keys" in p.stdout and "aws" in p.stdout
    p = run(agent, ["--version"])
    assert p.stdout.startswith("metadata-agent ")
    p = run(agent, ["--provider", "aws", "--bogus"], check=False)
    assert p.returncode != 0 and "unrecognized option '--bogus'" in p.stderr
    p = run(agent, ["exp", "something"], check=False)
    assert p.returncode != 0 and "rd-network-kargs" in p.stderr
    # The explicit "multi" subcommand takes the same options as the legacy form.
    mock, exp = metadata_mock.provider_mock("upcloud", fixtures_dir)
    with mock:
        run(agent, ["multi", "--provider=upcloud", f"--attributes={tmp_path / 'a'}"], env=exp["env"])
    assert read_env_file(tmp_path / "a")["AFTERBURN_UPCLOUD_REGION"] == "test-region"


# ---- network units ----

def test_digitalocean_network_units(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("digitalocean", fixtures_dir)
    units = tmp_path / "run/systemd/network"
    with mock:
        run(agent, ["--provider", "digitalocean", "--network-units", str(units)], env=exp["env"])
    files = sorted(p.name for p in units.iterdir())
    assert files == ["10-04:01:57:d1:9e:01.network", "10-04:01:57:d1:9e:02.network"]
    dns = "DNS=2001:4860:4860::8844\nDNS=2001:4860:4860::8888\nDNS=8.8.8.8\n"
    assert (units / files[0]).read_text() == (
        "[Match]\nMACAddress=04:01:57:d1:9e:01\n\n[Network]\n" + dns +
        "\n[Address]\nAddress=192.0.0.20/24\n"
        "\n[Address]\nAddress=2604:a880:800:0:1000::/64\n"
        "\n[Address]\nAddress=10.0.0.5/16\n"
        "\n[Route]\nDestination=192.0.0.20/24\nGateway=104.236.0.1\n"
        "\n[Route]\nDestination=0.0.0.0/0\nGateway=104.236.0.1\n"
        "\n[Route]\nDestination=2604:a880:800:0:1000::/64\nGateway=2604:a880:800::1\n"
        "\n[Route]\nDestination=::/0\nGateway=2604:a880:800::1\n"
        "\n[Route]\nDestination=10.0.0.5/16\nGateway=10.0.0.1\n")
    assert (units / files[1]).read_text() == (
        "[Match]\nMACAddress=04:01:57:d1:9e:02\n\n[Network]\n" + dns +
        "\n[Address]\nAddress=10.132.6.205/16\n"
        "\n[Route]\nDestination=10.132.6.205/16\nGateway=10.132.0.1\n")


def test_digitalocean_duplicate_mac_merged(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("digitalocean", fixtures_dir)
    doc = json.loads((fixtures_dir / "metadata/digitalocean/metadata-v1.json").read_text())
    extra = {"ipv4": {"ip_address": "10.133.0.2", "netmask": "255.255.255.0", "gateway": "10.133.0.1"},
             "mac": "04:01:57:D1:9E:02", "type": "private"}
    doc["interfaces"]["private"].append(extra)
    units = tmp_path / "units"
    with mock:
        mock.add("/metadata/v1.json", json.dumps(doc))
        run(agent, ["--provider", "digitalocean", "--network-units", str(units)], env=exp["env"])
    text = (units / "10-04:01:57:d1:9e:02.network").read_text()
    assert text.index("Address=10.133.0.2/24") < text.index("Address=10.132.6.205/16")
    assert len(list(units.iterdir())) == 2


def test_network_units_other_providers(agent, fixtures_dir, tmp_path):
    mock, exp = metadata_mock.provider_mock("vultr", fixtures_dir)
    with mock:
        run(agent, ["--provider", "vultr", "--network-units", str(tmp_path / "u")], env=exp["env"])
        assert (tmp_path / "u").is_dir() and list((tmp_path / "u").iterdir()) == []
    p = run(agent, ["--provider", "digitalocean", "--netplan-config", str(tmp_path / "n")], check=False)
    assert p.returncode != 0 and "not supported" in p.stderr
    assert not (tmp_path / "n").exists()


# ---- Proxmox VE (cidata drive) ----

PVE_KEY_PREFIX = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDd1hElre4j44sbmULXyO5j6dRnkRFCMjEGtRSy2SuvFD8WyB5uectcEMvz7ORhQIVbPlz94w"


def test_proxmoxve_static(agent, fixtures_dir, tmp_root):
    home = make_root(tmp_root)
    drive = fixtures_dir / "metadata/proxmoxve/static"
    run(agent, ["--provider", "proxmoxve", "--config-drive", str(drive), "--root", str(tmp_root),
                "--attributes", "/run/metadata/flatcar", "--attributes-style", "flatcar", "--hostname", "/etc/hostname",
                "--ssh-keys", "core", "--network-units", "/etc/systemd/network"])
    assert read_env_file(tmp_root / "run/metadata/flatcar") == {
        "COREOS_PROXMOXVE_INSTANCE_ID": "15a9919cb91024fbd1d70fa07f0efa749cbba03b",
        "COREOS_PROXMOXVE_HOSTNAME": "dummy",
        "COREOS_PROXMOXVE_IPV4": "192.168.1.1",
        "COREOS_PROXMOXVE_IPV6": "2001:db8:85a3::8a2e:370:0"}
    assert (tmp_root / "etc/hostname").read_text() == "dummy\n"
    keys = (home / ".ssh/authorized_keys.d/afterburn").read_text().splitlines()
    assert len(keys) == 1 and keys[0].startswith(PVE_KEY_PREFIX) and keys[0].endswith(" dummy@dummy.local")
    units = tmp_root / "etc/systemd/network"
    assert sorted(p.name for p in units.iterdir()) == ["20-eth0.network", "20-eth1.network"]
    assert (units / "20-eth0.network").read_text() == (
        "[Match]\nName=eth0\nMACAddress=01:23:45:67:89:00\n\n[Network]\nDNS=1.1.1.1\nDNS=8.8.8.8\n"
        "\n[Address]\nAddress=192.168.1.1/24\n\n[Address]\nAddress=2001:db8:85a3::8a2e:370:0/24\n"
        "\n[Route]\nDestination=0.0.0.0/0\nGateway=192.168.1.254\n"
        "\n[Route]\nDestination=::/0\nGateway=2001:db8:85a3::8a2e:370:9999\n")


@pytest.mark.parametrize("case,kargs", [
    ("static", "ip=192.168.1.1::192.168.1.254:255.255.255.0:::off "
               "ip=[2001:db8:85a3::8a2e:370:0]::[2001:db8:85a3::8a2e:370:9999]:24:::off "
               "nameserver=1.1.1.1,8.8.8.8 "
               "ip=192.168.42.1::192.168.42.254:255.255.255.0:::off "
               "ip=[2001:db8:85a3::8a2e:4242:0]::[2001:db8:85a3::8a2e:4242:9999]:24:::off"),
    ("dhcp", "ip=dhcp nameserver=1.1.1.1,8.8.8.8"),
    ("static-no-gateway", "ip=192.168.1.1:::255.255.255.0:::off nameserver=1.1.1.1,8.8.8.8"),
])
def test_proxmoxve_network_kargs(agent, fixtures_dir, tmp_path, case, kargs):
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("flatcar.oem.id=proxmoxve\n")
    root = tmp_path / "root"
    run(agent, ["exp", "rd-network-kargs", "--cmdline", "--cmdline-file", str(cmdline), "--root", str(root),
                "--config-drive", str(fixtures_dir / "metadata/proxmoxve" / case), "--default-value", "ip=dhcp"])
    assert (root / "etc/cmdline.d/50-afterburn-network-kargs.conf").read_text() == kargs + "\n"


def test_proxmoxve_user_data_without_header(agent, fixtures_dir, tmp_path):
    p = run(agent, ["--provider", "proxmoxve", "--config-drive", str(fixtures_dir / "metadata/proxmoxve/invalid-user-data"),
                    "--json"])
    j = json.loads(p.stdout)
    assert j["hostname"] is None and j["ssh_keys"] == []
    assert j["attributes"]["AFTERBURN_PROXMOXVE_INSTANCE_ID"] == "15a9919cb91024fbd1d70fa07f0efa749cbba03b"
    assert "AFTERBURN_PROXMOXVE_HOSTNAME" not in j["attributes"]
    assert "#cloud-config" in p.stderr


def test_proxmoxve_broken_drive(agent, fixtures_dir, tmp_path):
    import shutil
    drive = tmp_path / "drive"
    shutil.copytree(fixtures_dir / "metadata/proxmoxve/static", drive)
    (drive / "network-config").write_text("version: 1\nconfig:\n  - type: nameserver\n  - type: nameserver\n")
    out = tmp_path / "attrs"
    p = run(agent, ["--provider", "proxmoxve", "--config-drive", str(drive), "--attributes", str(out)], check=False)
    assert p.returncode != 0 and "too many nameserver" in p.stderr and not out.exists()
    (drive / "network-config").unlink()
    p = run(agent, ["--provider", "proxmoxve", "--config-drive", str(drive), "--attributes", str(out)], check=False)
    assert p.returncode != 0 and "network-config" in p.stderr and not out.exists()


def test_proxmoxve_without_drive_is_a_noop(agent, tmp_path):
    out = tmp_path / "attrs"
    p = run(agent, ["--provider", "proxmoxve", "--attributes", str(out)],
            env={"SWITCHYARD_METADATA_CONFIG_DRIVE_DIR": str(tmp_path / "config-drive")})
    assert f"No proxmoxve config drive (label cidata, iso9660) is mounted at {tmp_path / 'config-drive'}/LABEL" in p.stderr
    assert out.read_text() == ""


# ---- KubeVirt ----

@pytest.mark.parametrize("case,instance_id,hostname,itype,nkeys", [
    ("config_drive", "5d307ca9-b3ef-428c-8861-06e72d69f223", "test_instance-kubevirt.foo.cloud", "some_type", 1),
    ("full_metadata", "5d307ca9-b3ef-428c-8861-06e72d69f223", "test_instance-kubevirt.foo.cloud", "some_type", 1),
    ("nocloud_v1", "5d307ca9-b3ef-428c-8861-06e72d69f223", "test-nocloud-v1.foo.cloud", None, 0),
    ("nocloud_v2", "5d307ca9-b3ef-428c-8861-06e72d69f224", "test-nocloud-v2.foo.cloud", None, 0),
    ("nocloud_v1_json", "5d307ca9-b3ef-428c-8861-06e72d69f225", "test-nocloud-v1-json.foo.cloud", None, 0),
])
def test_kubevirt(agent, fixtures_dir, tmp_path, case, instance_id, hostname, itype, nkeys):
    p = run(agent, ["--provider", "kubevirt", "--config-drive", str(fixtures_dir / "metadata/kubevirt" / case), "--json"])
    j = json.loads(p.stdout)
    want = {"AFTERBURN_KUBEVIRT_INSTANCE_ID": instance_id, "AFTERBURN_KUBEVIRT_HOSTNAME": hostname}
    if itype:
        want["AFTERBURN_KUBEVIRT_INSTANCE_TYPE"] = itype
    assert j["attributes"] == want  # no KUBEVIRT_IPV4/IPV6: those are main-only, not 5.10.0
    assert j["hostname"] == hostname
    assert len(j["ssh_keys"]) == nkeys


def test_kubevirt_missing_hostname(agent, tmp_path):
    (tmp_path / "openstack/latest").mkdir(parents=True)
    (tmp_path / "openstack/latest/meta_data.json").write_text('{"uuid": "x"}')
    p = run(agent, ["--provider", "kubevirt", "--config-drive", str(tmp_path), "--attributes", str(tmp_path / "a")],
            check=False)
    assert p.returncode != 0 and "hostname" in p.stderr and not (tmp_path / "a").exists()


# ---- DHCP lease lookups (CloudStack metadata server, Azure WireServer) ----

def test_cloudstack_server_from_dhcp_lease(agent, tmp_path):
    leases = tmp_path / "leases"
    leases.mkdir()
    (leases / "2").write_text("# This is private data. Do not parse.\nADDRESS=10.1.1.5\nSERVER_ADDRESS=127.0.0.1\n")
    p = run(agent, ["--provider", "cloudstack-metadata", "--attributes", str(tmp_path / "a")], check=False,
            env={"SWITCHYARD_METADATA_LEASES_DIR": str(leases), "SWITCHYARD_METADATA_RETRIES": "0"})
    assert p.returncode != 0 and "http://127.0.0.1/latest/meta-data/" in p.stderr
    (leases / "2").write_text("ADDRESS=10.1.1.5\n")
    p = run(agent, ["--provider", "cloudstack-metadata", "--attributes", str(tmp_path / "a")], check=False,
            env={"SWITCHYARD_METADATA_LEASES_DIR": str(leases), "SWITCHYARD_METADATA_DHCP_RETRIES": "2"})
    assert p.returncode != 0 and "No DHCP server address" in p.stderr
    assert not (tmp_path / "a").exists()


def test_azure_wireserver_from_dhcp_option_245(agent, tmp_path):
    leases = tmp_path / "leases"
    leases.mkdir()
    (leases / "2").write_text("SERVER_ADDRESS=10.0.0.1\nOPTION_245=7f000001\n")
    p = run(agent, ["--provider", "azure", "--attributes", str(tmp_path / "a")], check=False,
            env={"SWITCHYARD_METADATA_LEASES_DIR": str(leases), "SWITCHYARD_METADATA_RETRIES": "0"})
    assert p.returncode != 0 and "GET http://127.0.0.1/?comp=versions failed" in p.stderr


def test_cloudstack_configdrive(agent, tmp_path, keys):
    meta = tmp_path / "drive/cloudstack/metadata"
    meta.mkdir(parents=True)
    values = {"availability_zone": "zone1", "cloud_identifier": "CloudStack-{abc}", "instance_id": "i-2-3-VM",
              "local_hostname": "vm-1", "service_offering": "small", "vm_id": "1234"}
    for k, v in values.items():
        (meta / f"{k}.txt").write_text(v + "\n")
    (meta / "public_keys.txt").write_text(keys[0] + "\n")
    p = run(agent, ["--provider", "cloudstack-configdrive", "--config-drive", str(tmp_path / "drive"), "--json"])
    j = json.loads(p.stdout)
    assert j["attributes"] == {f"AFTERBURN_CLOUDSTACK_{k.upper()}": v for k, v in values.items()}
    assert j["ssh_keys"] == [keys[0]] and j["hostname"] is None


# ---- IBM Cloud VPC (cidata drive, MIME vendor-data) ----

def test_ibmcloud(agent, fixtures_dir, tmp_path, keys):
    drive = tmp_path / "cidata"
    drive.mkdir()
    (drive / "meta-data").write_text("instance-id: 0717_abc\nlocal-hostname: vsi-1\nfoo: ba:r\n")
    b = "XyZ"
    (drive / "vendor-data").write_text(
        f"Content-Type: multipart/mixed; boundary=\"{b}\"\nMIME-Version: 1.0\n\n"
        f"--{b}\nContent-Type: text/cloud-config\n\n#cloud-config\nssh_authorized_keys:\n- {keys[1]}\n\n"
        f"--{b}\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho ssh_authorized_keys\n\n"
        f"--{b}\nContent-Type: text/cloud-config\n\n#cloud-config\nssh_authorized_keys:\n- {keys[0]}\n\n"
        f"--{b}\nContent-Type: text/cloud-config\n\n#cloud-config\nruncmd: []\n\n--{b}--\n")
    p = run(agent, ["--provider", "ibmcloud", "--config-drive", str(drive), "--json"])
    j = json.loads(p.stdout)
    assert j["attributes"] == {"AFTERBURN_IBMCLOUD_INSTANCE_ID": "0717_abc", "AFTERBURN_IBMCLOUD_LOCAL_HOSTNAME": "vsi-1"}
    assert j["hostname"] == "vsi-1"
    assert j["ssh_keys"] == [keys[0]]  # the last matching cloud-config part wins, as upstream
    # The shared fixture's keys are shortened ("<<snip>>") and fail validation: no keys file.
    (drive / "vendor-data").write_bytes((fixtures_dir / "metadata/ibmcloud/cidata/vendor-data").read_bytes())
    p = run(agent, ["--provider", "ibmcloud", "--config-drive", str(drive), "--ssh-keys", "core",
                    "--root", str(tmp_path / "root")], check=False)
    assert p.returncode != 0 and "Invalid SSH public key" in p.stderr


def test_packet_network_units(agent, fixtures_dir, tmp_path):
    doc = json.loads((fixtures_dir / "metadata/packet/metadata.json").read_text())
    doc["network"]["interfaces"] = [
        {"name": "eth0", "mac": "0C:C4:7A:00:00:01", "bond": "bond0"},
        {"name": "eth1", "mac": "0c:c4:7a:00:00:02", "bond": "bond0"},
        {"name": "eth2", "mac": "0c:c4:7a:00:00:03"},
    ]
    doc["network"]["bonding"]["mode"] = 4
    state = tmp_path / "netif-state"
    state.write_text("OPER_STATE=routable\nDNS=147.75.207.207 147.75.207.208\n")
    mock, exp = metadata_mock.provider_mock("packet", fixtures_dir)
    units = tmp_path / "units"
    with mock:
        mock.add("/metadata", json.dumps(doc))
        run(agent, ["--provider", "packet", "--network-units", str(units)],
            env=dict(exp["env"], SWITCHYARD_METADATA_NETIF_STATE=str(state)))
    files = {p.name: p.read_text() for p in units.iterdir()}
    assert sorted(files) == ["10-0c:c4:7a:00:00:01.network", "10-0c:c4:7a:00:00:02.network",
                             "10-0c:c4:7a:00:00:03.network", "10-bond0.netdev", "10-bond0.network",
                             "80-pci-*.network"]
    assert files["10-bond0.netdev"] == (
        "[NetDev]\nName=bond0\nKind=bond\nMACAddress=0c:c4:7a:00:00:01\n\n[Bond]\nTransmitHashPolicy=layer3+4\n"
        "MIIMonitorSec=.1\nUpDelaySec=.2\nDownDelaySec=.2\nMode=802.3ad\nLACPTransmitRate=fast\n")
    assert files["10-0c:c4:7a:00:00:02.network"] == (
        "[Match]\nMACAddress=0c:c4:7a:00:00:02\n\n[Network]\nBond=bond0\n\n[Link]\nRequiredForOnline=no\n")
    assert files["10-0c:c4:7a:00:00:03.network"] == (
        "[Match]\nMACAddress=0c:c4:7a:00:00:03\n\n[Network]\n\n[Link]\nUnmanaged=yes\n")
    assert files["10-bond0.network"] == (
        "[Match]\nName=bond0\n\n[Network]\nDNS=147.75.207.207\nDNS=147.75.207.208\n\n[Link]\nRequiredForOnline=degraded-carrier\n"
        "\n[Address]\nAddress=147.0.0.1/31\n\n[Address]\nAddress=2604:1380::1/127\n"
        "\n[Address]\nAddress=10.0.0.1/31\n\n[Address]\nAddress=fd00::1/127\n"
        "\n[Route]\nDestination=0.0.0.0/0\nGateway=147.0.0.0\n\n[Route]\nDestination=::/0\nGateway=2604:1380::\n"
        "\n[Route]\nDestination=10.0.0.0/8\nGateway=10.0.0.0\n\n[Route]\nDestination=::/0\nGateway=fd00::\n")
    assert files["80-pci-*.network"] == "[Match]\nPath=pci-*\n\n[Network]\n\n[Link]\nUnmanaged=yes\n"
    # Without DNS servers in networkd's state there is nothing correct to write.
    state.write_text("OPER_STATE=routable\n")
    mock, exp = metadata_mock.provider_mock("packet", fixtures_dir)
    with mock:
        mock.add("/metadata", json.dumps(doc))
        p = run(agent, ["--provider", "packet", "--network-units", str(tmp_path / "u2")], check=False,
                env=dict(exp["env"], SWITCHYARD_METADATA_NETIF_STATE=str(state)))
    assert p.returncode != 0 and "No DNS servers" in p.stderr and not (tmp_path / "u2").exists()


def test_azurestack_certificates_request_and_ready_report(agent, fixtures_dir, tmp_root):
    home = make_root(tmp_root)
    mock, exp = metadata_mock.provider_mock("azurestack", fixtures_dir)
    with mock:
        run(agent, ["--provider", "azurestack", "--ssh-keys", "core", "--root", str(tmp_root), "--check-in"],
            env=exp["env"])
        assert (home / ".ssh/authorized_keys.d/afterburn").read_text() == exp["ssh_keys"][0] + "\n"
        certs = [r for r in mock.requests if "comp=certificates" in r["path"]]
        assert len(certs) == 1
        h = certs[0]["headers"]
        assert h["x-ms-cipher-name"] == "DES_EDE3_CBC" and h["x-ms-version"] == "2012-11-30"
        # A bare base64 DER certificate: no PEM armour, no line breaks.
        assert "-----" not in h["x-ms-guest-agent-public-x509-cert"] and "\n" not in h["x-ms-guest-agent-public-x509-cert"]
        assert len(mock.requests_to("/machine/?comp=health", "POST")) == 1
        # Without a Certificates URL in the goal state there are no keys (and no error).
        goal = (fixtures_dir / "metadata/azure/wireserver/goalstate-no-certs.xml").read_text()
        mock.add("/machine/?comp=goalstate", goal)
        p = run(agent, ["--provider", "azurestack", "--json"], env=exp["env"])
        assert json.loads(p.stdout)["ssh_keys"] == []


def test_proxy_bypassed_for_link_local(agent, tmp_path):
    """No proxy can reach the instance's link-local metadata service: those addresses skip the proxy."""
    from httpserver import ProxyServer
    with ProxyServer() as proxy:
        p = run(agent, ["--provider", "vultr", "--attributes", str(tmp_path / "a")], check=False,
                env={"SWITCHYARD_METADATA_URL_VULTR": "http://169.254.169.254:9", "http_proxy": proxy.url,
                     "no_proxy": "example.invalid", "SWITCHYARD_METADATA_RETRIES": "0",
                     "SWITCHYARD_METADATA_TIMEOUT": "1"})
        assert p.returncode != 0 and "http://169.254.169.254:9/v1/" in p.stderr
        assert proxy.requests == [] and proxy.connects == []
    assert not (tmp_path / "a").exists()


def test_akamai_missing_token_endpoint_is_fatal(agent, fixtures_dir, tmp_path):
    """Unlike AWS, Akamai has no token-less fallback."""
    mock, exp = metadata_mock.provider_mock("akamai", fixtures_dir)
    with mock:
        mock.remove("/v1/token", "PUT")
        p = _attr_fails(agent, "akamai", exp, tmp_path)
        assert "Could not get an Akamai metadata token" in p.stderr
        assert all(r["method"] == "PUT" for r in mock.requests)
