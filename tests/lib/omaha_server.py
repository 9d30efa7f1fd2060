"""A local Omaha v3 server for tests and demos, answering in Nebraska's exact framing (spec 1.5).

It serves the update check (POST /v1/update and /v1/update/), the payload (GET /payloads/NAME, with
HEAD, Range requests and 206/416 answers), over HTTP or HTTPS, on top of tests/lib/httpserver.py (which
generates the certificates; ``server.ca_file`` is what clients must trust). Every Omaha request is recorded
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
``cut_times`` downloads), codebase (override the URL base), extra_codebases_first,
max_failure_count_per_url (URL failover).
"""
import base64
import hashlib
import pathlib
import re
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from httpserver import HTTPServer, Request, Response, serve

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


class OmahaServer:
    def __init__(self, payload=None, payload_bytes=None, version="9999.0.0", tls=False, host="127.0.0.1",
                 port=0, package_name="flatcar_production_update.gz"):
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
        self.extra_codebases_first = []  # codebases listed before the real one (URL failover tests)
        self.max_failure_count_per_url = None
        self.requests: List[OmahaRequest] = []
        self.payload_requests: List[PayloadRequest] = []
        self.lock = threading.Lock()
        self.tls = tls
        self._http = HTTPServer(tls=tls, host=host, port=port)
        self._http.add_handler("/v1/update", self._omaha)
        self._http.add_handler("/v1/update/", self._omaha)
        self._http.add_handler("/payloads/", self._payload, prefix=True)
        self._started = False

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def scheme(self) -> str:
        return self._http.scheme

    @property
    def base_url(self) -> str:
        return self._http.base_url.rstrip("/")

    @property
    def url(self) -> str:
        return self.base_url + "/v1/update/"

    @property
    def ca_file(self) -> Optional[str]:
        return self._http.ca_file

    # ---- lifecycle ----
    def start(self):
        self._http.start()
        return self

    def stop(self):
        self._http.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- HTTP handlers ----
    def _omaha(self, req: Request) -> Response:
        if req.method != "POST":
            return Response(405, b"POST only\n", content_type="text/plain")
        if len(req.body) > 64 * 1024:  # Nebraska's limit
            return Response(400, b"request too large\n", content_type="text/plain")
        oreq = self._record(req.body)
        if self.omaha_http_status != 200:
            return Response(self.omaha_http_status, b"server error\n", content_type="text/plain",
                            delay=self.omaha_delay)
        body = self.omaha_body if self.omaha_body is not None else self.response_for(oreq).encode()
        return Response(200, body, content_type="text/xml", delay=self.omaha_delay)

    def _payload(self, req: Request) -> Response:
        data = self._payload_data() if req.path == "/payloads/" + self.package_name else None
        rng = req.headers.get("Range")
        if data is None:
            self._record_payload(PayloadRequest(req.method, req.path, rng, 404, 0, time.time()))
            return Response(404, b"not found\n", content_type="text/plain")
        options = {}
        with self.lock:
            if self.cut_after is not None and self.cut_times > 0 and req.method == "GET":
                self.cut_times -= 1
                options["cut_after"] = self.cut_after
        if self.throttle:
            options.update(chunk_size=65536, chunk_delay=self.throttle)
        resp = serve(req, data, **options)
        self._record_payload(PayloadRequest(req.method, req.path, rng, resp.status,
                                            options.get("cut_after", resp.body_size()), time.time()))
        return resp

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
        codebases = [*self.extra_codebases_first, self.codebase or (self.base_url + "/payloads/")]
        urls = "".join(f'<url codebase="{_attr(c)}"></url>' for c in codebases)
        backoff = ' DisablePayloadBackoff="true"' if self.disable_payload_backoff else ""
        if self.max_failure_count_per_url is not None:
            backoff += f' MaxFailureCountPerUrl="{int(self.max_failure_count_per_url)}"'
        return (f'<updatecheck status="ok"{poll}><urls>{urls}</urls>'
                f'<manifest version="{_attr(self.version)}"><packages>'
                f'<package name="{_attr(self.package_name)}" hash="{sha1}" size="{size}" required="true"></package>'
                f'</packages><actions><action event="postinstall" sha256="{_attr(sha256)}"{backoff}></action>'
                f'</actions></manifest></updatecheck>')


def _attr(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))
