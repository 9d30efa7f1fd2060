"""Local HTTP and HTTPS servers for tests, with generated certificates and full Range support.

Everything listens on 127.0.0.1 on an ephemeral port, serves each connection in its own thread
(HTTP/1.1, keep-alive), and records every request so a test can assert what a client sent.

Quick start::

    from httpserver import HTTPServer, Response, redirect

    with HTTPServer() as srv:                          # plain HTTP; HTTPServer(tls=True) for HTTPS
        srv.add("/payload", b"...bytes...")            # static bytes, Range/HEAD/ETag handled
        srv.add("/big", pathlib.Path("/tmp/file"))     # a file, streamed, read at request time
        srv.add("/flaky", data, cut_after=1000)        # full Content-Length, connection cut after 1000 bytes
        srv.add_handler("/omaha", lambda req: Response(200, b"<xml/>", content_type="text/xml"))
        srv.add_handler("/old", lambda req: redirect(srv.url("/payload")))
        url = srv.url("/payload")                      # "http://127.0.0.1:PORT/payload"
        ...
        req = srv.requests_for("/omaha")[-1]           # Request(method, path, query, headers, body, ...)
        assert req.headers["Content-Type"] == "text/xml"

HTTPS::

    with HTTPServer(tls=True) as srv:                  # CA + server certificate generated in a temp dir
        srv.ca_file                                    # PEM of the CA to give clients (--ca=...)
    certs = make_certs(tmp_path, names=["example.invalid"])   # e.g. a certificate for the wrong name
    HTTPServer(tls=True, certs=certs)

API
---
make_certs(directory, names=("localhost", "127.0.0.1"), ca=None) -> Certs
    Writes a fresh CA (ca.pem, ca.key, unless an existing Certs is passed as ca) and a server certificate
    (server.pem, server.key) for the given DNS names / IP addresses, signed by that CA (EC P-256 keys,
    python3-cryptography). Certs has .ca_file, .cert_file, .key_file, .directory (pathlib.Path).

HTTPServer(tls=False, certs=None, host="127.0.0.1", port=0)
    Context manager (or .start()/.stop()). Attributes: .port, .base_url, .scheme, .ca_file (TLS),
    .certs, .requests (list of Request, in arrival order), .max_in_flight (most requests served at the
    same moment, for concurrency tests).
    .url(path="/")                       full URL of path on this server
    .add(path, body, **options)          static route: body is bytes or a pathlib.Path (read at request
                                         time). Serves GET and HEAD (405 otherwise) with Range support
                                         (see serve()); options are those of serve() and Response.
    .add_handler(path, fn, prefix=False) fn(request) -> Response (or bytes for a plain 200). With
                                         prefix=True every path starting with path goes to fn.
    .remove(path)
    .requests_for(path) -> [Request]     recorded requests for one path (query string ignored)
    .clear_requests()
    .wait_for_requests(n, timeout=5)     waits until n requests were recorded, returns them
    Unknown paths get 404. A handler that raises gets a 500 (and the exception in .errors).

Request (recorded for every request): method, target (as sent), path (no query), query (str),
    headers (http.client.HTTPMessage: case-insensitive .get(), [name]), body (bytes, chunked bodies
    decoded), client_address, tls (bool), time (time.monotonic() at arrival).

Response(status=200, body=b"", headers=None, content_type=None, *, delay=0, chunk_size=65536,
         chunk_delay=0, stall_after=None, stall_seconds=None, cut_after=None, close=False,
         content_length=True)
    body: bytes, a str (UTF-8), a FileSlice, or a list of those (sent one after the other).
    delay: seconds to wait before sending anything (status line included).
    chunk_size/chunk_delay: send the body in pieces with a pause between them (a slow body).
    stall_after=N: send N body bytes, then send nothing for stall_seconds (default: until the server
        stops), then close the connection.
    cut_after=N: announce the full Content-Length but close the connection after N body bytes.
    close: send "Connection: close" and close after the response.
    content_length: True = send Content-Length, False = no length (body ends when the connection
        closes), or an int to announce a wrong length.

serve(request, body, *, content_type="application/octet-stream", ranges=True, etag=True,
      ignore_range=False, range_start_offset=0, headers=None, **response_options) -> Response
    What static routes use, callable from handlers too: 200 with the whole body, or for a Range
    header ("bytes=A-B", "A-", "-N", several ranges as multipart/byteranges) 206 with Content-Range,
    or 416 with "Content-Range: bytes */SIZE" when unsatisfiable. If-Range (ETag) is honoured.
    ignore_range=True answers 200 with the whole body as a server without range support would;
    range_start_offset=K announces a Content-Range start K bytes off (a misbehaving server).

redirect(location, status=302) -> Response

FileSlice(path, offset=0, length=None): a part of a file, streamed without reading it into memory.

ProxyServer()  (context manager; .port, .url, .requests, .connects)
    A small forward proxy as curl uses it from http_proxy/https_proxy: absolute-form requests
    ("GET http://host:port/path HTTP/1.1") are forwarded, CONNECT host:port opens a tunnel. .requests
    records Request objects with the absolute target; .connects records the "host:port" of tunnels.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import http.server
import ipaddress
import os
import pathlib
import re
import select
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

__all__ = [
    "Certs", "make_certs", "HTTPServer", "ProxyServer", "Request", "Response", "FileSlice", "serve",
    "redirect",
]


# ---------------------------------------------------------------------------------------------------
# Certificates


@dataclass
class Certs:
    directory: pathlib.Path
    ca_file: pathlib.Path
    ca_key_file: pathlib.Path
    cert_file: pathlib.Path
    key_file: pathlib.Path


def _write_key(key, path: pathlib.Path) -> None:
    from cryptography.hazmat.primitives import serialization
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def make_certs(directory, names=("localhost", "127.0.0.1"), ca: Optional[Certs] = None) -> Certs:
    """A CA and a server certificate for names (DNS names or IP addresses), as PEM files in directory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=2)

    if ca is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"switchyard test CA {os.getpid()}")])
        ca_cert = (x509.CertificateBuilder()
                   .subject_name(ca_name).issuer_name(ca_name)
                   .public_key(ca_key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
                   .sign(ca_key, hashes.SHA256()))
        ca_file, ca_key_file = directory / "ca.pem", directory / "ca.key"
        ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_key(ca_key, ca_key_file)
    else:
        ca_file, ca_key_file = ca.ca_file, ca.ca_key_file
        ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)

    alt_names = []
    for n in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt_names.append(x509.DNSName(n))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(names[0]))]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_file)
    return Certs(directory, ca_file, ca_key_file, cert_file, key_file)


# ---------------------------------------------------------------------------------------------------
# Requests and responses


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: str
    headers: http.client.HTTPMessage
    body: bytes
    client_address: tuple
    tls: bool
    time: float = field(default_factory=time.monotonic)


@dataclass
class FileSlice:
    path: Union[str, os.PathLike]
    offset: int = 0
    length: Optional[int] = None

    def size(self) -> int:
        if self.length is not None:
            return self.length
        return os.path.getsize(self.path) - self.offset


BodyPart = Union[bytes, str, FileSlice]


class Response:
    def __init__(self, status: int = 200, body: Union[BodyPart, list] = b"", headers: Optional[dict] = None,
                 content_type: Optional[str] = None, *, delay: float = 0, chunk_size: int = 65536,
                 chunk_delay: float = 0, stall_after: Optional[int] = None,
                 stall_seconds: Optional[float] = None, cut_after: Optional[int] = None, close: bool = False,
                 content_length: Union[bool, int] = True):
        self.status = status
        parts = body if isinstance(body, list) else [body]
        self.parts = [p.encode() if isinstance(p, str) else p for p in parts]
        self.headers = dict(headers or {})
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self.delay = delay
        self.chunk_size = max(1, chunk_size)
        self.chunk_delay = chunk_delay
        self.stall_after = stall_after
        self.stall_seconds = stall_seconds
        self.cut_after = cut_after
        self.close = close
        self.content_length = content_length

    def body_size(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p.size() for p in self.parts)

    def iter_body(self, chunk_size: int):
        for p in self.parts:
            if isinstance(p, bytes):
                for i in range(0, len(p), chunk_size):
                    yield p[i:i + chunk_size]
            else:
                with open(p.path, "rb") as f:
                    f.seek(p.offset)
                    left = p.size()
                    while left > 0:
                        b = f.read(min(chunk_size, left))
                        if not b:
                            raise IOError(f"{p.path} ended early")
                        left -= len(b)
                        yield b


def redirect(location: str, status: int = 302) -> Response:
    return Response(status, f"redirecting to {location}\n", {"Location": location}, "text/plain")


_RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def _parse_ranges(header: str, size: int):
    """[(first, last)] satisfiable ranges, [] if none is satisfiable, None if the header is malformed
    (then the whole body is served, as RFC 9110 says)."""
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        return None
    ranges = []
    for spec in specs.split(","):
        m = _RANGE_SPEC.match(spec)
        if not m or (not m.group(1) and not m.group(2)):
            return None
        if m.group(1):
            first = int(m.group(1))
            last = int(m.group(2)) if m.group(2) else size - 1
            if m.group(2) and last < first:
                return None
            if first >= size:
                continue
            ranges.append((first, min(last, size - 1)))
        else:
            n = int(m.group(2))
            if n == 0 or size == 0:
                continue
            ranges.append((max(0, size - n), size - 1))
    return ranges


def _slice(body: Union[bytes, pathlib.Path], first: int, last: int) -> BodyPart:
    if isinstance(body, bytes):
        return body[first:last + 1]
    return FileSlice(body, first, last - first + 1)


def _etag(body: Union[bytes, pathlib.Path]) -> str:
    if isinstance(body, bytes):
        return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    st = os.stat(body)
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


def serve(request: Request, body: Union[bytes, str, os.PathLike], *,
          content_type: str = "application/octet-stream", ranges: bool = True, etag: bool = True,
          ignore_range: bool = False, range_start_offset: int = 0, headers: Optional[dict] = None,
          **response_options) -> Response:
    """A 200/206/416 response for body (bytes, or a file path read at request time) honouring Range."""
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        body = pathlib.Path(body)
        if not body.is_file():
            return Response(404, f"{body} does not exist\n", content_type="text/plain")
    size = len(body) if isinstance(body, bytes) else body.stat().st_size
    hdrs = {"Content-Type": content_type}
    if ranges and not ignore_range:
        hdrs["Accept-Ranges"] = "bytes"
    tag = _etag(body) if etag else None
    if tag:
        hdrs["ETag"] = tag
    hdrs.update(headers or {})

    range_header = request.headers.get("Range")
    if range_header and ranges and not ignore_range:
        if_range = request.headers.get("If-Range")
        if if_range is None or (tag is not None and if_range.strip() == tag):
            parsed = _parse_ranges(range_header, size)
            if parsed == []:
                hdrs.pop("Content-Type", None)
                return Response(416, b"", {**hdrs, "Content-Range": f"bytes */{size}"}, **response_options)
            if parsed and len(parsed) == 1:
                first, last = parsed[0]
                hdrs["Content-Range"] = f"bytes {first + range_start_offset}-{last}/{size}"
                return Response(206, _slice(body, first, last), hdrs, **response_options)
            if parsed:
                boundary = "switchyard-" + hashlib.sha256(os.urandom(16)).hexdigest()[:24]
                parts = []
                for first, last in parsed:
                    parts.append((f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                                  f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n").encode())
                    parts.append(_slice(body, first, last))
                    parts.append(b"\r\n")
                parts.append(f"--{boundary}--\r\n".encode())
                hdrs["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
                return Response(206, parts, hdrs, **response_options)
    return Response(200, body if isinstance(body, bytes) else FileSlice(body), hdrs, **response_options)


# ---------------------------------------------------------------------------------------------------
# The server


def _read_body(rfile, headers) -> bytes:
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        out = bytearray()
        while True:
            line = rfile.readline(1024)
            n = int(line.split(b";")[0].strip() or b"0", 16)
            if n == 0:
                while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += rfile.read(n)
            rfile.readline(8)
    length = int(headers.get("Content-Length") or 0)
    return rfile.read(length) if length > 0 else b""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "switchyard-test-httpserver"

    def version_string(self):
        return self.server_version

    def setup(self):
        ctx = self.server.owner._ssl_context
        if ctx is not None:
            self.request.settimeout(10)
            self.request = ctx.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def log_message(self, format, *args):
        pass

    def _dispatch(self):
        owner = self.server.owner
        body = _read_body(self.rfile, self.headers)
        split = urllib.parse.urlsplit(self.path)
        req = Request(self.command, self.path, split.path, split.query, self.headers, body,
                      self.client_address, owner.tls)
        owner._record(req)
        owner._enter()
        try:
            try:
                resp = owner._route(req)
            except Exception as e:  # a broken test handler must show up, not hang the client
                owner.errors.append(e)
                resp = Response(500, f"handler raised {e!r}\n", content_type="text/plain")
            self._send(resp)
        finally:
            owner._leave()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _wait(self, seconds):
        self.server.owner._stopping.wait(seconds)

    def _send(self, resp: Response):
        owner = self.server.owner
        if resp.delay:
            self._wait(resp.delay)
        size = resp.body_size()
        head_only = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, str(v))
        if resp.content_length is True:
            self.send_header("Content-Length", str(size))
        elif resp.content_length is not False:
            self.send_header("Content-Length", str(int(resp.content_length)))
        close = resp.close or resp.content_length is False or resp.cut_after is not None
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head_only:
            self.wfile.flush()
            return
        sent = 0
        limit = resp.cut_after
        for chunk in resp.iter_body(resp.chunk_size):
            if limit is not None and sent + len(chunk) > limit:
                chunk = chunk[:limit - sent]
            if resp.stall_after is not None and sent + len(chunk) > resp.stall_after:
                chunk = chunk[:resp.stall_after - sent]
                self.wfile.write(chunk)
                self.wfile.flush()
                sent += len(chunk)
                self._wait(resp.stall_seconds if resp.stall_seconds is not None else 3600)
                self.close_connection = True
                return
            self.wfile.write(chunk)
            sent += len(chunk)
            if limit is not None and sent >= limit:
                break
            if resp.chunk_delay:
                self.wfile.flush()
                self._wait(resp.chunk_delay)
                if owner._stopping.is_set():
                    break
        self.wfile.flush()
        if limit is not None or close:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True
    block_on_close = False

    def handle_error(self, request, client_address):
        # Clients that reject our certificate or hang up mid-body are expected in these tests.
        pass


class HTTPServer:
    def __init__(self, tls: bool = False, certs: Optional[Certs] = None, host: str = "127.0.0.1", port: int = 0):
        self.tls = tls
        self.certs = certs
        self.host = host
        self._want_port = port
        self._routes: dict[str, Callable] = {}
        self._prefix_routes: list[tuple[str, Callable]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tmpdir = None
        self._ssl_context = None
        self._server = None
        self._thread = None
        self._in_flight = 0
        self.max_in_flight = 0
        self.requests: list[Request] = []
        self.errors: list[Exception] = []
        self._cond = threading.Condition(self._lock)

    # lifecycle
    def start(self) -> "HTTPServer":
        if self.tls:
            if self.certs is None:
                self._tmpdir = tempfile.mkdtemp(prefix="sy-httpserver-")
                self.certs = make_certs(self._tmpdir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.certs.cert_file), str(self.certs.key_file))
            self._ssl_context = ctx
        self._server = _ThreadingServer((self.host, self._want_port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # addresses
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Optional[str]:
        return str(self.certs.ca_file) if self.certs else None

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # routes
    def add(self, path: str, body, **options) -> None:
        def route(req: Request) -> Response:
            if req.method not in ("GET", "HEAD"):
                return Response(405, b"method not allowed\n", {"Allow": "GET, HEAD"}, "text/plain")
            return serve(req, body, **options)
        self._routes[path] = route

    def add_handler(self, path: str, fn: Callable[[Request], Union[Response, bytes]], prefix: bool = False) -> None:
        if prefix:
            self._prefix_routes.append((path, fn))
        else:
            self._routes[path] = fn

    def remove(self, path: str) -> None:
        self._routes.pop(path, None)
        self._prefix_routes = [(p, f) for p, f in self._prefix_routes if p != path]

    def _route(self, req: Request) -> Response:
        fn = self._routes.get(req.path)
        if fn is None:
            for p, f in self._prefix_routes:
                if req.path.startswith(p):
                    fn = f
                    break
        if fn is None:
            return Response(404, f"{req.path} not found\n", content_type="text/plain")
        resp = fn(req)
        if isinstance(resp, (bytes, str)):
            resp = Response(200, resp)
        return resp

    # recording
    def _record(self, req: Request) -> None:
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight = self._in_flight

    def wait_for_requests(self, n: int, timeout: float = 5) -> list[Request]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"expected {n} requests, got {len(self.requests)}")
            return list(self.requests)


# ---------------------------------------------------------------------------------------------------
# Forward proxy


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_CONNECT(self):
        owner = self.server.owner
        owner.connects.append(self.path)
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError) as e:
            self.send_error(502, f"cannot connect to {self.path}: {e}")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        conns = [self.connection, upstream]
        try:
            while not owner._stopping.is_set():
                readable, _, _ = select.select(conns, [], [], 0.2)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is self.connection else self.connection).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def _forward(self):
        owner = self.server.owner
        body = _read_body(self.rfile, self.headers)
        split = urllib.parse.urlsplit(self.path)
        owner.requests.append(Request(self.command, self.path, split.path, split.query, self.headers, body,
                                      self.client_address, False))
        if split.scheme != "http" or not split.hostname:
            self.send_error(400, "proxy needs an absolute http:// URL")
            return
        conn = http.client.HTTPConnection(split.hostname, split.port or 80, timeout=30)
        hop = {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
        headers["Via"] = "1.1 switchyard-test-proxy"
        target = split.path + (("?" + split.query) if split.query else "") or "/"
        try:
            conn.request(self.command, target, body=body if body or self.command in ("POST", "PUT") else None,
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.send_error(502, f"upstream failed: {e}")
            return
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in hop and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Via", "1.1 switchyard-test-proxy")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


class ProxyServer:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.requests: list[Request] = []
        self.connects: list[str] = []
        self._stopping = threading.Event()
        self._server = None

    def start(self) -> "ProxyServer":
        self._server = _ThreadingServer((self.host, 0), _ProxyHandler)
        self._server.owner = self
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
