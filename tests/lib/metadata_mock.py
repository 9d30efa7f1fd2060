"""Local mock metadata servers for metadata-agent tests.

A MockServer is an httpserver.HTTPServer on 127.0.0.1 that answers from a route table keyed by method and
request target (query included) and records every request. provider_mock(name, fixtures_dir) builds one that replays ../shared/fixtures/metadata/<name> the
way the real metadata service would, and returns it with the attributes the spec expects (names without
the AFTERBURN_ prefix).

Routes can be made to fail: status codes, a number of failures before success, delays, oversized or
malformed bodies, so error handling can be tested against the real program.
"""
import base64
import json
import pathlib
import subprocess
import tempfile
import threading

from httpserver import HTTPServer, Response


class Route:
    def __init__(self, body=b"", status=200, headers=None, required_headers=None, delay=0.0,
                 fail_first=0, fail_status=500, content_type="text/plain"):
        self.body = body.encode() if isinstance(body, str) else body  # or a callable(headers) -> bytes
        self.status = status
        self.headers = headers or {}
        self.required_headers = {k.lower(): v for k, v in (required_headers or {}).items()}
        self.delay = delay
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.content_type = content_type
        self.hits = 0


class MockServer:
    """A metadata service on httpserver.HTTPServer. Routes are keyed by (method, request target), query
    string included, since metadata services tell documents apart by it (Azure's ?comp=...)."""

    def __init__(self):
        self.routes = {}
        self.requests = []  # dicts: method, path (the request target), headers (lower-case names), body
        self.lock = threading.Lock()
        self.http = HTTPServer().start()
        self.http.add_handler("/", self._handle, prefix=True)
        self.port = self.http.port
        self.url = self.http.base_url.rstrip("/")

    def _handle(self, req):
        headers = {k.lower(): v for k, v in req.headers.items()}
        with self.lock:
            self.requests.append({"method": req.method, "path": req.target, "headers": headers, "body": req.body})
            route = self.routes.get((req.method, req.target))
            if route:
                route.hits += 1
                hit = route.hits
        if route is None:
            return Response(404, b"not found", content_type="text/plain")
        for k, v in route.required_headers.items():
            if headers.get(k) != v:
                return Response(403, f"missing header {k}".encode(), content_type="text/plain", delay=route.delay)
        if hit <= route.fail_first:
            return Response(route.fail_status, b"temporary failure", content_type="text/plain", delay=route.delay)
        body = route.body(headers) if callable(route.body) else route.body
        return Response(route.status, body, dict(route.headers), route.content_type, delay=route.delay)

    @property
    def max_in_flight(self):
        return self.http.max_in_flight

    def add(self, path, body=b"", method="GET", **kw):
        route = Route(body, **kw)
        self.routes[(method, path)] = route
        return route

    def remove(self, path, method="GET"):
        self.routes.pop((method, path), None)

    def requests_to(self, path, method=None):
        return [r for r in self.requests if r["path"] == path and (method is None or r["method"] == method)]

    def close(self):
        self.http.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _load_json(path):
    return json.loads(pathlib.Path(path).read_text())


def _add_map(mock, get_map, required_headers=None):
    for path, body in get_map.items():
        mock.add(path, body, required_headers=required_headers)


def provider_mock(name, fixtures_dir, ssh_keys=None):
    """Returns (mock, expected) for a provider; expected has "attributes", "hostname", "ssh_keys" (the key
    lines the agent must write, or None if the fixture has none) and "env" (the base URL overrides)."""
    d = pathlib.Path(fixtures_dir) / "metadata" / name
    mock = MockServer()
    env_name = name.upper().replace("-", "_")
    exp = {"attributes": {}, "hostname": None, "ssh_keys": [], "env": {f"SWITCHYARD_METADATA_URL_{env_name}": mock.url}}

    if name in ("aws", "gcp", "aliyun", "exoscale", "vultr", "upcloud"):
        f = {"aws": "imds-endpoints.json", "gcp": "computeMetadata-endpoints.json",
             "aliyun": "meta-data-endpoints.json", "exoscale": "meta-data-endpoints.json",
             "vultr": "v1-endpoints.json", "upcloud": "metadata-v1-endpoints.json"}[name]
        m = _load_json(d / f)
        headers = dict(m.get("request_headers", {}))
        if name == "aws":
            tok = m["token_request"]
            mock.add(tok["path"], tok["response_body"], method="PUT", required_headers=tok["request_headers"])
            headers[tok["then_send_header"]] = tok["response_body"]
        _add_map(mock, m["get"], headers)
        exp["attributes"] = m["expected_attributes"]
        host_path = {"aws": "/2021-01-03/meta-data/hostname", "gcp": "/computeMetadata/v1/instance/hostname",
                     "aliyun": "/latest/meta-data/hostname", "exoscale": "/1.0/meta-data/local-hostname",
                     "vultr": "/v1/hostname", "upcloud": "/metadata/v1/hostname"}[name]
        exp["hostname"] = m["get"][host_path]
        keys_path = {"aliyun": "/latest/meta-data/public-keys/0/openssh-key", "exoscale": "/1.0/meta-data/public-keys",
                     "vultr": "/v1/public-keys", "upcloud": "/metadata/v1/public_keys"}.get(name)
        if keys_path:
            exp["ssh_keys"] = [k for k in m["get"][keys_path].split("\n") if k.strip()]
        if name == "exoscale" and ssh_keys is None:
            pass
    elif name == "azure":
        ws = d / "wireserver"
        mock.add("/?comp=versions", (ws / "versions.xml").read_bytes(), content_type="text/xml")
        goal = (ws / "goalstate.xml").read_text().replace("http://100.115.176.3:80", mock.url)
        mock.add("/machine/?comp=goalstate", goal, content_type="text/xml")
        shared_path = "/machine/a511aa6d-29e7-4f53-8788-55655dfe848f/f6cd1d7ef1644557b9059345e5ba890c.lars%2Dtest%2D1?comp=config&type=sharedConfig&incarnation=1"
        mock.add(shared_path, (ws / "sharedconfig.xml").read_bytes(), content_type="text/xml")
        imds = {"metadata": "true"}
        mock.add("/metadata/instance/compute/vmSize?api-version=2017-08-01&format=text", "Standard_B1s", required_headers=imds)
        mock.add("/metadata/instance/compute/name?api-version=2017-08-01&format=text", "lars-test-1", required_headers=imds)
        mock.add("/metadata/instance/compute/publicKeys?api-version=2021-02-01", (d / "imds" / "publicKeys.json").read_bytes(),
                 required_headers=imds, content_type="application/json")
        mock.add("/machine/?comp=health", b"", method="POST")
        exp["attributes"] = {"AZURE_IPV4_DYNAMIC": "100.115.176.3", "AZURE_VMSIZE": "Standard_B1s"}
        exp["hostname"] = "lars-test-1"
        exp["ssh_keys"] = [k["keyData"] for k in _load_json(d / "imds" / "publicKeys.json")]
        exp["env"]["SWITCHYARD_METADATA_URL_AZURE_WIRESERVER"] = mock.url
    elif name == "azurestack":
        ws = d.parent / "azure" / "wireserver"
        work = pathlib.Path(tempfile.mkdtemp(prefix="azurestack-"))
        mock.add("/?comp=versions", (ws / "versions.xml").read_bytes(), content_type="text/xml")
        goal = (ws / "goalstate.xml").read_text().replace("http://100.115.176.3:80", mock.url)
        mock.add("/machine/?comp=goalstate", goal, content_type="text/xml")
        mock.add("/Microsoft.Compute/identity?api-version=2019-03-11", json.dumps({"vmName": "stack-vm-1"}),
                 required_headers={"Metadata": "true"}, content_type="application/json")
        mock.add("/machine/?comp=health", b"", method="POST")
        # The tenant's key pair, delivered as a PFX encrypted to the agent's throw-away certificate.
        run = lambda *a: subprocess.run(list(a), check=True, capture_output=True, cwd=work)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=tenant", "-days", "2",
            "-keyout", "user.key", "-out", "user.crt")
        run("openssl", "pkcs12", "-export", "-inkey", "user.key", "-in", "user.crt", "-passout", "pass:", "-out", "user.p12")
        pub = run("openssl", "x509", "-in", "user.crt", "-pubkey", "-noout").stdout
        (work / "user.pub").write_bytes(pub)
        exp["ssh_keys"] = [run("ssh-keygen", "-i", "-m", "PKCS8", "-f", "user.pub").stdout.decode().strip()]
        exp["hostname"] = "stack-vm-1"
        exp["env"]["SWITCHYARD_METADATA_URL_AZURE_WIRESERVER"] = mock.url

        def certificates(headers):
            if headers.get("x-ms-cipher-name") != "DES_EDE3_CBC":
                return b"<Error>missing cipher</Error>"
            b64 = headers["x-ms-guest-agent-public-x509-cert"]
            pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + \
                  "\n-----END CERTIFICATE-----\n"
            (work / "agent.pem").write_text(pem)
            enc = run("openssl", "smime", "-encrypt", "-binary", "-des3", "-outform", "DER", "-in", "user.p12",
                      "agent.pem").stdout
            return ("<?xml version=\"1.0\" encoding=\"utf-8\"?><CertificateFile><Version>2012-11-30</Version>"
                    "<Incarnation>1</Incarnation><Format>Pkcs7BlobWithPfxContents</Format><Data>"
                    + base64.b64encode(enc).decode() + "</Data></CertificateFile>").encode()

        path = "/machine/a511aa6d-29e7-4f53-8788-55655dfe848f/f6cd1d7ef1644557b9059345e5ba890c.lars%2Dtest%2D1?comp=certificates&incarnation=1"
        mock.add(path, certificates, content_type="text/xml")
    elif name == "digitalocean":
        mock.add("/metadata/v1.json", (d / "metadata-v1.json").read_bytes(), content_type="application/json")
        exp["attributes"] = {
            "DIGITALOCEAN_HOSTNAME": "utl-96268", "DIGITALOCEAN_REGION": "nyc3",
            "DIGITALOCEAN_IPV4_PUBLIC_0": "192.0.0.20",
            "DIGITALOCEAN_IPV6_PUBLIC_0": "2604:a880:800:0:1000::",
            "DIGITALOCEAN_IPV4_ANCHOR_0": "10.0.0.5", "DIGITALOCEAN_IPV4_PRIVATE_0": "10.132.6.205"}
        exp["hostname"] = "utl-96268"
        exp["ssh_keys"] = None  # the fixture's key is a truncated placeholder
    elif name == "packet":
        doc = _load_json(d / "metadata.json")
        doc["phone_home_url"] = mock.url + "/phone-home"
        mock.add("/metadata", json.dumps(doc), content_type="application/json")
        mock.add("/phone-home", b"", method="POST")
        exp["attributes"] = {
            "PACKET_IPV4_PUBLIC_0": "147.0.0.1", "PACKET_IPV4_PUBLIC_GATEWAY_0": "147.0.0.0",
            "PACKET_IPV6_PUBLIC_0": "2604:1380::1", "PACKET_IPV6_PUBLIC_GATEWAY_0": "2604:1380::",
            "PACKET_IPV4_PRIVATE_0": "10.0.0.1", "PACKET_IPV4_PRIVATE_GATEWAY_0": "10.0.0.0",
            "PACKET_IPV6_PRIVATE_0": "fd00::1", "PACKET_IPV6_PRIVATE_GATEWAY_0": "fd00::",
            "PACKET_HOSTNAME": "test-hostname", "PACKET_PHONE_HOME_URL": mock.url + "/phone-home",
            "PACKET_PLAN": "test-plan"}
        exp["hostname"] = "test-hostname"
    elif name == "scaleway":
        mock.add("/conf?format=json", (d / "conf.json").read_bytes(), content_type="application/json")
        mock.add("/state", b"", method="PATCH")
        exp["attributes"] = {
            "SCALEWAY_HOSTNAME": "frontend-0", "SCALEWAY_INSTANCE_ID": "11111111-1111-1111-1111-111111111111",
            "SCALEWAY_INSTANCE_TYPE": "GP1-M", "SCALEWAY_ZONE_ID": "par1", "SCALEWAY_IPV4_PRIVATE": "10.0.0.2",
            "SCALEWAY_IPV4_PUBLIC": "93.184.216.34", "SCALEWAY_IPV6_PUBLIC": "2001:db8::1"}
        exp["hostname"] = "frontend-0"
    elif name == "akamai":
        token = (d / "v1-token.txt").read_text().strip()
        mock.add("/v1/token", token, method="PUT", required_headers={"Metadata-Token-Expiry-Seconds": "300"})
        h = {"Metadata-Token": token, "Accept": "application/json"}
        mock.add("/v1/instance", (d / "v1-instance.json").read_bytes(), required_headers=h, content_type="application/json")
        mock.add("/v1/network", (d / "v1-network.json").read_bytes(), required_headers=h, content_type="application/json")
        keys = ssh_keys or []
        mock.add("/v1/ssh-keys", json.dumps({"users": {"root": keys}}), required_headers=h, content_type="application/json")
        exp["ssh_keys"] = keys
        exp["attributes"] = {
            "AKAMAI_INSTANCE_ID": "12345678", "AKAMAI_INSTANCE_HOST_UUID": "a631b16d14534d84e2830da16d1b28e1d08d24df",
            "AKAMAI_INSTANCE_LABEL": "my-linode", "AKAMAI_INSTANCE_REGION": "us-ord",
            "AKAMAI_INSTANCE_TYPE": "g6-nanode-1", "AKAMAI_INSTANCE_TAGS": "foo:bar:baz",
            "AKAMAI_PUBLIC_IPV4_0": "1.2.3.4/32", "AKAMAI_PRIVATE_IPV4_0": "192.168.1.1/32",
            "AKAMAI_IPV6_SLAAC": "2600:3c06::f03c:94ff:fecb:c10b/128",
            "AKAMAI_IPV6_LINK_LOCAL": "fe80::f03c:94ff:fecb:c10b/128"}
    elif name == "oraclecloud":
        doc = _load_json(d / "opc-v2-instance-with-ssh-keys.json")
        mock.add("/opc/v2/instance", json.dumps(doc), required_headers={"Authorization": "Bearer Oracle"},
                 content_type="application/json")
        exp["attributes"] = {k: "" for k in (
            "ORACLECLOUD_AVAILABILITY_DOMAIN", "ORACLECLOUD_COMPARTMENT_ID", "ORACLECLOUD_FAULT_DOMAIN",
            "ORACLECLOUD_HOSTNAME", "ORACLECLOUD_INSTANCE_ID", "ORACLECLOUD_INSTANCE_SHAPE", "ORACLECLOUD_REGION_ID")}
        exp["ssh_keys"] = doc["metadata"]["ssh_authorized_keys"].split("\n")
    elif name == "hetzner":
        base = "/hetzner/v1/metadata"
        mock.add(base, (d / "metadata.yaml").read_bytes())
        mock.add(base + "/private-networks", (d / "private-networks.yaml").read_bytes())
        mock.add(base + "/hostname", "my-server")
        mock.add(base + "/public-keys", json.dumps(ssh_keys or []), content_type="application/json")
        exp["attributes"] = {
            "HETZNER_AVAILABILITY_ZONE": "hel1-dc2", "HETZNER_HOSTNAME": "my-server", "HETZNER_INSTANCE_ID": "42",
            "HETZNER_PUBLIC_IPV4": "1.2.3.4", "HETZNER_REGION": "eu-central",
            "HETZNER_PRIVATE_IPV4_0": "10.0.0.2", "HETZNER_PRIVATE_IPV4_1": "10.128.0.2"}
        exp["hostname"] = "my-server"
        exp["ssh_keys"] = ssh_keys or []
    elif name == "cloudstack-metadata":
        m = _load_json(d.parent / "cloudstack" / "metadata-endpoints.json")
        _add_map(mock, m["get"])
        for key in ("instance-id", "local-hostname", "public-hostname", "availability-zone", "public-ipv4",
                    "local-ipv4", "service-offering", "cloud-identifier", "vm-id"):
            mock.add(f"/latest/meta-data/{key}", f"test-{key}")
        exp["attributes"] = {
            "CLOUDSTACK_INSTANCE_ID": "test-instance-id", "CLOUDSTACK_LOCAL_HOSTNAME": "test-local-hostname",
            "CLOUDSTACK_PUBLIC_HOSTNAME": "test-public-hostname", "CLOUDSTACK_AVAILABILITY_ZONE": "test-availability-zone",
            "CLOUDSTACK_IPV4_PUBLIC": "test-public-ipv4", "CLOUDSTACK_IPV4_LOCAL": "test-local-ipv4",
            "CLOUDSTACK_SERVICE_OFFERING": "test-service-offering", "CLOUDSTACK_CLOUD_IDENTIFIER": "test-cloud-identifier",
            "CLOUDSTACK_VM_ID": "test-vm-id"}
        exp["ssh_keys"] = m["get"]["/latest/meta-data/public-keys"].split("\n")
        exp["env"] = {"SWITCHYARD_METADATA_URL_CLOUDSTACK": mock.url}
    elif name == "openstack-metadata":
        d = pathlib.Path(fixtures_dir) / "metadata" / "openstack" / "metadata-service"
        m = _load_json(d / "ec2-endpoints.json")
        _add_map(mock, m["get"])
        mock.add("/openstack/2012-08-10/meta_data.json", (d / "openstack" / "2012-08-10" / "meta_data.json").read_bytes(),
                 content_type="application/json")
        exp["attributes"] = {"OPENSTACK_INSTANCE_UUID": "99dcf33b-6eb5-4acf-9abb-d81723e0c949"}
        exp["ssh_keys"] = [m["get"]["/latest/meta-data/public-keys/0/openssh-key"],
                           m["get"]["/latest/meta-data/public-keys/1/openssh-key"]]
        exp["env"] = {"SWITCHYARD_METADATA_URL_OPENSTACK": mock.url}
    else:
        mock.close()
        raise ValueError(f"no mock for provider {name}")
    return mock, exp
