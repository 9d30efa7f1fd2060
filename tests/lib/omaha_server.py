"""A local Omaha v3 server for tests and demos, answering in Nebraska's exact framing (spec 1.5).

It serves the update check (POST /v1/update and /v1/update/), the payload (GET /payloads/NAME, with
HEAD, single Range requests and 206/416 answers), over HTTP or HTTPS (a self-signed certificate is
generated with openssl; ``server.ca_file`` is what clients must trust). Every Omaha request is recorded
with its parsed events, every payload request with its Range header.

    from omaha_server import OmahaServer
    with OmahaServer(payload=path, version="4500.0.0") as srv:
        srv.url                          # http://127.0.0.1:PORT/v1/update/
        ...
        srv.requests[-1].events          # [(type, result, errorcode, previousversion), ...]

Knobs (attributes, may be changed while running): version, payload (path) or payload_bytes, noupdate,
app_status / updatecheck_status (policy errors), omaha_http_status (e.g. 500/503), omaha_body (raw body
to send instead), announced_size / announced_sha256 (lie about the payload), poll_interval,
disable_payload_backoff, offer_always (also offer a version that is not newer), cut_after (close the payload connection after N bytes, for the next
``cut_times`` downloads), codebase (override the URL base).
"""
import base64
import hashlib
import http.server
import os
import pathlib
import re
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

FLATCAR_APPID = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"


def version_tuple(v: str):
    out = []
    for part in re.split(r"[.+-]", v or ""):
        out.append((0, int(part)) if part.isdigit() else (1, part))
    return out


@dataclass
class OmahaRequest:
    body: bytes
    version: str = ""
    track: str = ""
    machineid: str = ""
    appid: str = ""
    installsource: str = ""
    ping: bool = False
    updatecheck: bool = False
    events: List[Tuple[int, int, Optional[int], Optional[str]]] = field(default_factory=list)
    time: float = 0.0


@dataclass
class PayloadRequest:
    method: str
    path: str
    range: Optional[str]
    status: int
    sent: int
    time: float = 0.0


def make_self_signed(directory: pathlib.Path) -> Tuple[str, str]:
    cert, key = directory / "server.pem", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return str(cert), str(key)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "omaha-test-server"

    def log_message(self, fmt, *args):  # quiet
        if self.server.owner.verbose:
            super().log_message(fmt, *args)

    # ---- Omaha ----
    def do_POST(self):
        owner = self.server.owner
        if self.path.split("?")[0] not in ("/v1/update", "/v1/update/"):
            return self._send(404, b"not found\n", "text/plain")
        length = int(self.headers.get("Content-Length") or 0)
        if length > 64 * 1024:
            return self._send(400, b"request too large\n", "text/plain")
        body = self.rfile.read(length)
        req = owner._record(body)
        if owner.omaha_delay:
            time.sleep(owner.omaha_delay)
        if owner.omaha_http_status != 200:
            return self._send(owner.omaha_http_status, b"server error\n", "text/plain")
        if owner.omaha_body is not None:
            return self._send(200, owner.omaha_body, "text/xml")
        self._send(200, owner.response_for(req).encode(), "text/xml")

    # ---- payloads ----
    def do_HEAD(self):
        self._payload(head=True)

    def do_GET(self):
        self._payload(head=False)

    def _payload(self, head):
        owner = self.server.owner
        name = self.path.split("?")[0]
        data = owner._payload_data() if name == "/payloads/" + owner.package_name else None
        rng = self.headers.get("Range")
        if data is None:
            owner._record_payload(PayloadRequest(self.command, self.path, rng, 404, 0, time.time()))
            return self._send(404, b"not found\n", "text/plain")
        total = len(data)
        start, end, status = 0, total - 1, 200
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{total}"})
            if m.group(1) == "":
                start, end = max(0, total - int(m.group(2))), total - 1
            else:
                start = int(m.group(1))
                end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
            if start >= total or start > end:
                owner._record_payload(PayloadRequest(self.command, self.path, rng, 416, 0, time.time()))
                return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{total}"})
            status = 206
        chunk = data[start:end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        cut = None
        with owner.lock:
            if owner.cut_after is not None and owner.cut_times > 0 and not head:
                owner.cut_times -= 1
                cut = owner.cut_after
        if cut is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        if not head:
            body = chunk if cut is None else chunk[:cut]
            try:
                for off in range(0, len(body), 65536):
                    self.wfile.write(body[off:off + 65536])
                    sent += len(body[off:off + 65536])
                    if owner.throttle:
                        time.sleep(owner.throttle)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            if cut is not None:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
        owner._record_payload(PayloadRequest(self.command, self.path, rng, status, sent, time.time()))

    def _send(self, status, body, ctype, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class OmahaServer:
    def __init__(self, payload=None, payload_bytes=None, version="9999.0.0", tls=False, host="127.0.0.1",
                 port=0, package_name="flatcar_production_update.gz", verbose=False):
        self.payload = pathlib.Path(payload) if payload else None
        self.payload_bytes = payload_bytes
        self.version = version
        self.package_name = package_name
        self.noupdate = False
        self.offer_always = False  # offer even when the client runs the same or a newer version
        self.app_status = "ok"
        self.updatecheck_status = "ok"
        self.omaha_http_status = 200
        self.omaha_body = None
        self.omaha_delay = 0.0
        self.announced_size = None
        self.announced_sha256 = None
        self.poll_interval = None
        self.disable_payload_backoff = True
        self.cut_after = None
        self.cut_times = 0
        self.throttle = 0.0
        self.codebase = None
        self.verbose = verbose
        self.requests: List[OmahaRequest] = []
        self.payload_requests: List[PayloadRequest] = []
        self.lock = threading.Lock()
        self.tls = tls
        self._tmp = None
        self.ca_file = None
        self._httpd = _ThreadingServer((host, port), _Handler)
        self._httpd.owner = self
        if tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="omaha-server-")
            cert, key = make_self_signed(pathlib.Path(self._tmp.name))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
            self.ca_file = cert
        self.port = self._httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.base_url = f"{self.scheme}://{host}:{self.port}"
        self.url = self.base_url + "/v1/update/"
        self._thread = None

    # ---- lifecycle ----
    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- payload facts ----
    def _payload_data(self) -> Optional[bytes]:
        if self.payload_bytes is not None:
            return self.payload_bytes
        if self.payload is not None:
            return self.payload.read_bytes()
        return None

    def payload_facts(self):
        data = self._payload_data() or b""
        return (len(data), base64.b64encode(hashlib.sha256(data).digest()).decode(),
                base64.b64encode(hashlib.sha1(data).digest()).decode())

    # ---- recording ----
    def _record(self, body: bytes) -> OmahaRequest:
        req = OmahaRequest(body=body, time=time.time())
        try:
            root = ET.fromstring(body)
            req.installsource = root.get("installsource", "")
            app = root.find("app")
            if app is not None:
                req.version = app.get("version", "")
                req.track = app.get("track", "")
                req.machineid = app.get("machineid", "")
                req.appid = app.get("appid", "")
                req.ping = app.find("ping") is not None
                req.updatecheck = app.find("updatecheck") is not None
                for ev in app.findall("event"):
                    code = ev.get("errorcode")
                    req.events.append((int(ev.get("eventtype", "0")), int(ev.get("eventresult", "0")),
                                       int(code) if code is not None else None, ev.get("previousversion")))
        except ET.ParseError:
            pass
        with self.lock:
            self.requests.append(req)
        return req

    def _record_payload(self, r: PayloadRequest):
        with self.lock:
            self.payload_requests.append(r)

    def events(self):
        """All events received so far, in order."""
        with self.lock:
            return [e for r in self.requests for e in r.events]

    def wait_for(self, predicate, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    # ---- responses ----
    def response_for(self, req: OmahaRequest) -> str:
        appid = _attr(req.appid or FLATCAR_APPID)
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
               '<response protocol="3.0" server="nebraska"><daystart elapsed_seconds="0"></daystart>',
               f'<app appid="{appid}" status="{_attr(self.app_status)}">']
        if req.ping:
            out.append('<ping status="ok"></ping>')
        if req.updatecheck:
            out.append(self._updatecheck(req))
        for _ in req.events:
            out.append('<event status="ok"></event>')
        out.append("</app></response>")
        return "".join(out)

    def _updatecheck(self, req: OmahaRequest) -> str:
        poll = f' PollInterval="{int(self.poll_interval)}"' if self.poll_interval else ""
        if self.updatecheck_status != "ok":
            return f'<updatecheck status="{_attr(self.updatecheck_status)}"{poll}></updatecheck>'
        if self.noupdate or self._payload_data() is None or \
                (not self.offer_always and version_tuple(req.version) >= version_tuple(self.version)):
            return f'<updatecheck status="noupdate"{poll}></updatecheck>'
        size, sha256, sha1 = self.payload_facts()
        if self.announced_size is not None:
            size = self.announced_size
        if self.announced_sha256 is not None:
            sha256 = self.announced_sha256
        codebase = self.codebase or (self.base_url + "/payloads/")
        backoff = ' DisablePayloadBackoff="true"' if self.disable_payload_backoff else ""
        return (f'<updatecheck status="ok"{poll}><urls><url codebase="{_attr(codebase)}"></url></urls>'
                f'<manifest version="{_attr(self.version)}"><packages>'
                f'<package name="{_attr(self.package_name)}" hash="{sha1}" size="{size}" required="true"></package>'
                f'</packages><actions><action event="postinstall" sha256="{_attr(sha256)}"{backoff}></action>'
                f'</actions></manifest></updatecheck>')


def _attr(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))
