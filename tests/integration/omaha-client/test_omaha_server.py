"""The local Omaha server itself: Nebraska framing, noupdate for equal or newer clients, ranges, the CLI."""
import re
import subprocess
import urllib.error
import urllib.request

from omaha_server import OmahaServer

FIXTURE_REQUEST = "request-updatecheck-scheduled.xml"


def post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def test_framing_and_ranges(fixtures_dir):
    body = (fixtures_dir / "omaha/derived" / FIXTURE_REQUEST).read_bytes()
    data = bytes(range(256)) * 40
    with OmahaServer(payload_bytes=data, version="4460.0.0") as s:
        out = post(s.url, body)
        assert out.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<response protocol="3.0" server="nebraska">'
                              b'<daystart elapsed_seconds="0"></daystart><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"'
                              b' status="ok"><ping status="ok"></ping><updatecheck status="ok"><urls>')
        assert out.endswith(b'</manifest></updatecheck><event status="ok"></event></app></response>')
        assert b"\n" not in out.split(b"\n", 1)[1]
        assert s.requests[0].events == [(3, 2, None, "")]
        # the element sequence of the derived Nebraska fixture (which has two more packages)
        ref = (fixtures_dir / "omaha/derived/nebraska-update-response.xml").read_bytes()
        ref = re.sub(rb'<package name="oem-[^>]*></package>', b"", ref)
        assert re.findall(rb"<(/?[a-z]+)", out) == re.findall(rb"<(/?[a-z]+)", ref)

        r = urllib.request.urlopen(urllib.request.Request(s.base_url + "/payloads/flatcar_production_update.gz",
                                                          headers={"Range": "bytes=100-199"}), timeout=10)
        assert r.status == 206 and r.read() == data[100:200]
        try:
            urllib.request.urlopen(urllib.request.Request(s.base_url + "/payloads/flatcar_production_update.gz",
                                                          headers={"Range": f"bytes={len(data)}-"}), timeout=10)
            raise AssertionError("416 expected")
        except urllib.error.HTTPError as e:
            assert e.code == 416

        s.version = "4459.0.0"  # not newer than the client: noupdate, as Nebraska
        assert b'<updatecheck status="noupdate"></updatecheck>' in post(s.url, body)


def test_cli(fixtures_dir, tmp_path, source_dir):
    payload = tmp_path / "p.gz"
    payload.write_bytes(b"payload")
    p = subprocess.Popen([str(source_dir / "tools/omaha-server"), "--payload", str(payload), "--version", "9999.0.0"],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        url = line.split(": ", 1)[1].strip()
        out = post(url, (fixtures_dir / "omaha/derived" / FIXTURE_REQUEST).read_bytes())
        assert b'<manifest version="9999.0.0">' in out and b'size="7"' in out
    finally:
        p.terminate()
        p.wait(timeout=10)
