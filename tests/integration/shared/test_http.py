"""src/shared/http.c end to end: test-http-get (a thin CLI over http.h) against tests/lib/httpserver.py."""
import hashlib
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from httpserver import HTTPServer, ProxyServer, Response, make_certs, redirect

DATA = bytes((i * 7 + i // 256) & 0xFF for i in range(200_000))


@pytest.fixture
def get(program):
    exe = program("src/shared/test-http-get")

    def run(*args, env_extra=None, timeout=60, expect_rc=None):
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(env_extra or {})
        p = subprocess.run([str(exe), "--json", *map(str, args)], capture_output=True, env=env, timeout=timeout)
        results = [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]
        if expect_rc is not None:
            assert p.returncode == expect_rc, p.stderr.decode()
        # Every failure comes with one clear line on stderr; success says nothing.
        if any(not r["ok"] for r in results):
            assert p.returncode == 1
            assert p.stderr.decode().strip(), "failure without a message"
        else:
            assert p.returncode == 0, p.stderr.decode()
        return results[0] if len(results) == 1 else results, p.stderr.decode()
    return run


@pytest.fixture
def srv():
    with HTTPServer() as s:
        yield s


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_srv(certs):
    with HTTPServer(tls=True, certs=certs) as s:
        yield s


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawServer:
    """Accepts connections, reads the request head, answers with fixed bytes and closes."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with c:
                c.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                c.sendall(self.answer)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sock.close()


def test_plain_get(get, srv, tmp_path):
    srv.add("/data", DATA)
    out = tmp_path / "body"
    r, _ = get("-o", out, srv.url("/data"))
    assert r["ok"] and r["status"] == 200
    assert out.read_bytes() == DATA
    assert r["received"] == r["size"] == r["content_length"] == r["total_size"] == len(DATA)
    assert r["sha256"] == sha256(DATA)
    assert r["content_type"] == "application/octet-stream"
    assert r["resumed"] is False
    (req,) = srv.requests
    assert req.method == "GET" and req.path == "/data" and req.body == b""
    assert req.headers["User-Agent"].startswith("switchyard/")
    assert req.headers.get("Range") is None


def test_file_route_head_and_no_length(get, srv, tmp_path):
    f = tmp_path / "file"
    f.write_bytes(DATA[:5000])
    srv.add("/file", f)
    srv.add("/nolen", DATA, content_length=False)
    r, _ = get("-X", "HEAD", srv.url("/file"))
    assert r["ok"] and r["status"] == 200 and r["received"] == 0 and r["content_length"] == 5000
    assert srv.requests[-1].method == "HEAD"
    r, _ = get("-X", "HEAD", "--max-size", 10, srv.url("/file"))  # a HEAD's Content-Length is no body
    assert r["ok"] and r["status"] == 200
    r, _ = get(srv.url("/nolen"))
    assert r["ok"] and r["content_length"] is None and r["total_size"] is None
    assert r["sha256"] == sha256(DATA)


def test_https_with_ca(get, tls_srv):
    tls_srv.add("/data", DATA)
    r, _ = get("--ca", tls_srv.ca_file, tls_srv.url("/data"))
    assert r["ok"] and r["status"] == 200 and r["sha256"] == sha256(DATA)
    assert tls_srv.requests[0].tls


def test_https_without_ca_is_refused(get, tls_srv):
    tls_srv.add("/data", DATA)
    r, err = get(tls_srv.url("/data"))
    assert not r["ok"] and r["error_name"] == "EPROTO" and r["status"] == 0
    assert "certificate" in r["message"].lower()
    assert "certificate" in err.lower()
    assert tls_srv.requests == []  # nothing was sent over the unverified connection


def test_https_other_ca_is_refused(get, tls_srv, tmp_path):
    tls_srv.add("/data", DATA)
    other = make_certs(tmp_path / "other")
    r, _ = get("--ca", other.ca_file, tls_srv.url("/data"))
    assert r["error_name"] == "EPROTO" and r["received"] == 0
    assert tls_srv.requests == []


def test_https_wrong_host_name_is_refused(get, certs, tmp_path):
    wrong = make_certs(tmp_path / "wrong", names=["example.invalid"], ca=certs)
    with HTTPServer(tls=True, certs=wrong) as s:
        s.add("/data", DATA)
        r, _ = get("--ca", certs.ca_file, s.url("/data"))
        assert r["error_name"] == "EPROTO"
        assert "127.0.0.1" in r["message"] or "name" in r["message"].lower()
        assert s.requests == []


def test_missing_ca_file(get, tls_srv, tmp_path):
    r, _ = get("--ca", tmp_path / "nope.pem", tls_srv.url("/"))
    assert r["error_name"] == "ENOENT" and "nope.pem" in r["message"]


def test_post_with_content_type(get, srv):
    srv.add_handler("/post", lambda req: Response(200, b"<ok/>", content_type="text/xml"))
    body = '<?xml version="1.0"?><request protocol="3.0"/>'
    r, _ = get("--fetch", "--max-size", "1K", "-d", body, "--content-type", "text/xml", "-H", "X-Test: yes",
               srv.url("/post"))
    assert r["ok"] and r["status"] == 200 and r["body"] == "<ok/>" and r["content_type"] == "text/xml"
    (req,) = srv.requests
    assert req.method == "POST" and req.body == body.encode()
    assert req.headers["Content-Type"] == "text/xml"
    assert req.headers["X-Test"] == "yes"
    assert req.headers.get("Expect") is None


def test_put_without_content_type(get, srv):
    srv.add_handler("/put", lambda req: Response(204))
    r, _ = get("-X", "PUT", "-d", "abc", srv.url("/put"))
    assert r["ok"] and r["status"] == 204
    (req,) = srv.requests
    assert req.method == "PUT" and req.body == b"abc"
    assert req.headers.get("Content-Type") is None  # not curl's form-urlencoded default


@pytest.mark.parametrize("status", [404, 500, 503])
def test_error_status_reported_body_dropped(get, srv, tmp_path, status):
    srv.add_handler("/x", lambda req: Response(status, b"an error page that must not reach the stream"))
    out = tmp_path / "body"
    r, _ = get("-o", out, srv.url("/x"))
    assert r["ok"] and r["errno"] == 0 and r["status"] == status
    assert r["received"] == 0 and out.read_bytes() == b""


def test_large_error_body_is_cut_short(get, srv):
    srv.add_handler("/big404", lambda req: Response(404, b"x" * 10_000_000))
    start = time.monotonic()
    r, _ = get(srv.url("/big404"))
    assert r["ok"] and r["status"] == 404 and r["received"] == 0
    assert time.monotonic() - start < 10


def test_redirects(get, srv):
    srv.add("/data", DATA)
    srv.add_handler("/a", lambda req: redirect("/b", 301))
    srv.add_handler("/b", lambda req: redirect(srv.url("/data"), 307))
    r, _ = get(srv.url("/a"))
    assert r["ok"] and r["status"] == 200 and r["sha256"] == sha256(DATA)
    assert r["effective_url"] == srv.url("/data")
    assert [q.path for q in srv.requests] == ["/a", "/b", "/data"]


def test_redirect_loop(get, srv):
    srv.add_handler("/loop", lambda req: redirect("/loop"))
    r, _ = get("--max-redirects", "3", srv.url("/loop"))
    assert r["error_name"] == "ELOOP"
    assert len(srv.requests) == 4


def test_https_only_refuses_redirect_to_http(get, srv, tls_srv):
    srv.add("/data", DATA)
    tls_srv.add_handler("/go", lambda req: redirect(srv.url("/data")))
    r, _ = get("--https-only", "--ca", tls_srv.ca_file, tls_srv.url("/go"))
    assert r["error_name"] == "EPROTONOSUPPORT" and r["received"] == 0 and r["status"] == 302
    assert srv.requests == []
    # Without --https-only the same redirect is followed.
    r, _ = get("--ca", tls_srv.ca_file, tls_srv.url("/go"))
    assert r["ok"] and r["sha256"] == sha256(DATA)


def test_https_only_refuses_http_url(get, srv):
    srv.add("/data", DATA)
    r, _ = get("--https-only", srv.url("/data"))
    assert r["error_name"] == "EPROTONOSUPPORT" and "https" in r["message"]
    assert srv.requests == []


def test_resume(get, srv, tmp_path):
    srv.add("/data", DATA)
    out = tmp_path / "rest"
    r, _ = get("--resume-from", 150_000, "-o", out, srv.url("/data"))
    assert r["ok"] and r["status"] == 206 and r["resumed"] is True
    assert out.read_bytes() == DATA[150_000:]
    assert r["content_length"] == len(DATA) - 150_000 and r["total_size"] == len(DATA)
    assert srv.requests[0].headers["Range"] == "bytes=150000-"


def test_resume_over_https_through_redirect(get, tls_srv):
    tls_srv.add("/data", DATA)
    tls_srv.add_handler("/r", lambda req: redirect("/data"))
    r, _ = get("--ca", tls_srv.ca_file, "--resume-from", 1, tls_srv.url("/r"))
    assert r["ok"] and r["resumed"] and r["sha256"] == sha256(DATA[1:])


def test_resume_range_ignored(get, srv, tmp_path):
    srv.add("/data", DATA, ignore_range=True)
    out = tmp_path / "rest"
    r, _ = get("--resume-from", 1000, "-o", out, srv.url("/data"))
    assert r["error_name"] == "ERANGE" and r["status"] == 200
    assert r["received"] == 0 and out.read_bytes() == b""  # not one byte of the wrong data got through
    assert "ignored the range" in r["message"]


def test_resume_wrong_start(get, srv):
    srv.add("/data", DATA, range_start_offset=1)
    r, _ = get("--resume-from", 1000, srv.url("/data"))
    assert r["error_name"] == "ERANGE" and r["received"] == 0 and "1001" in r["message"]


def test_resume_206_without_content_range(get, srv):
    srv.add_handler("/bad", lambda req: Response(206, DATA[10:]))
    r, _ = get("--resume-from", 10, srv.url("/bad"))
    assert r["error_name"] == "ERANGE" and r["received"] == 0


def test_resume_past_end(get, srv):
    srv.add("/data", DATA)
    r, _ = get("--resume-from", len(DATA), srv.url("/data"))
    assert r["ok"] and r["status"] == 416 and r["received"] == 0


def test_stall_timeout(get, srv):
    srv.add("/data", DATA, stall_after=500, stall_seconds=30)
    start = time.monotonic()
    r, _ = get("--low-speed", "1000:2", srv.url("/data"))
    elapsed = time.monotonic() - start
    assert r["error_name"] == "ETIMEDOUT" and r["received"] == 500
    assert "slow" in r["message"].lower()
    assert 1.5 < elapsed < 10


def test_slow_but_steady_body_completes(get, srv):
    srv.add("/data", DATA[:40_000], chunk_size=8000, chunk_delay=0.3)
    r, _ = get("--low-speed", "1000:2", srv.url("/data"))
    assert r["ok"] and r["sha256"] == sha256(DATA[:40_000])


def test_total_timeout(get, srv):
    srv.add("/slow", DATA, delay=10)
    start = time.monotonic()
    r, _ = get("--timeout", "1", srv.url("/slow"))
    assert r["error_name"] == "ETIMEDOUT" and time.monotonic() - start < 6


def test_truncated_body(get, srv):
    srv.add("/data", DATA, cut_after=5000)
    r, _ = get(srv.url("/data"))
    assert r["error_name"] == "ECONNRESET" and r["received"] == 5000 and r["status"] == 200


def test_connect_refused(get):
    r, err = get(f"http://127.0.0.1:{free_port()}/")
    assert r["error_name"] == "ECONNREFUSED" and r["status"] == 0
    assert "Connection refused" in err


def test_connect_timeout(get):
    # A listener whose accept queue is full: the kernel drops further SYNs, so connect() hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
                fillers.append(c)
            time.sleep(0.2)
            start = time.monotonic()
            r, _ = get("--connect-timeout", 2, f"http://127.0.0.1:{port}/")
            assert r["error_name"] == "ETIMEDOUT" and "connect" in r["message"].lower()
            assert 1.5 < time.monotonic() - start < 8
        finally:
            for c in fillers:
                c.close()


def test_tls_handshake_timeout(get):
    # TCP connects but the peer never speaks TLS: the connect timeout covers the handshake.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        start = time.monotonic()
        r, _ = get("--connect-timeout", 2, f"https://127.0.0.1:{listener.getsockname()[1]}/")
        assert r["error_name"] == "ETIMEDOUT"
        assert 1.5 < time.monotonic() - start < 8


def test_empty_reply(get):
    with RawServer(b"") as raw:
        r, _ = get(f"http://127.0.0.1:{raw.port}/")
        assert r["error_name"] == "ECONNRESET" and r["status"] == 0


def test_malformed_reply(get):
    with RawServer(b"this is not HTTP at all\r\n\r\n") as raw:
        r, _ = get(f"http://127.0.0.1:{raw.port}/")
        assert r["error_name"] == "EPROTO"
    with RawServer(b"HTTP/1.1 2x0 Odd\r\nContent-Length: 0\r\n\r\n") as raw:
        r, _ = get(f"http://127.0.0.1:{raw.port}/")
        assert r["error_name"] == "EPROTO"


def test_bad_content_range_on_resume(get):
    body = b"x" * 10
    with RawServer(b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-/20\r\n"
                   b"Content-Length: 10\r\nConnection: close\r\n\r\n" + body) as raw:
        r, _ = get("--resume-from", 5, f"http://127.0.0.1:{raw.port}/")
        assert r["error_name"] == "ERANGE" and r["received"] == 0 and "Content-Range" in r["message"]


def test_custom_headers(get, srv):
    srv.add("/data", b"abc")
    r, _ = get("-H", "User-Agent: custom/1", "-H", "X-Empty:", srv.url("/data"))
    assert r["ok"]
    req = srv.requests[0]
    assert req.headers["User-Agent"] == "custom/1"
    assert req.headers["X-Empty"] == ""


def test_unresolvable_host(get):
    r, _ = get("http://does-not-exist.invalid/")
    assert r["error_name"] == "EHOSTUNREACH" and "does-not-exist.invalid" in r["message"]


def test_max_body_size(get, srv):
    srv.add("/data", DATA)
    srv.add("/nolen", DATA, content_length=False)
    r, _ = get("--max-size", len(DATA) - 1, srv.url("/data"))
    assert r["error_name"] == "EFBIG" and r["received"] == 0  # refused on Content-Length, before the body
    r, _ = get("--max-size", 100_000, srv.url("/nolen"))
    assert r["error_name"] == "EFBIG" and r["received"] <= 100_000
    r, _ = get("--max-size", len(DATA), srv.url("/data"))
    assert r["ok"] and r["received"] == len(DATA)
    r, _ = get("--fetch", "--max-size", 10, srv.url("/data"))
    assert r["error_name"] == "EFBIG"


def test_handler_error_aborts(get, srv):
    srv.add("/data", DATA)
    r, _ = get("--abort-after", 100_000, srv.url("/data"))
    assert r["error_name"] == "ECANCELED" and r["received"] <= 100_000
    assert "handler" in r["message"].lower()


def test_auth(get, srv, tls_srv):
    def protected(req):
        if req.headers.get("Authorization") == "Basic dTpw":  # u:p
            return Response(200, b"secret")
        return Response(401, b"no", {"WWW-Authenticate": 'Basic realm="t"'})
    srv.add_handler("/p", protected)
    tls_srv.add_handler("/p", protected)

    r, _ = get("--user", "u:p", srv.url("/p"))
    assert r["error_name"] == "EPERM" and srv.requests == []

    r, _ = get("--fetch", "--max-size", "1K", "--user", "u:p", "--ca", tls_srv.ca_file, tls_srv.url("/p"))
    assert r["ok"] and r["status"] == 200 and r["body"] == "secret"

    r, _ = get("--fetch", "--max-size", "1K", "--user", "u:p", "--allow-insecure-auth", srv.url("/p"))
    assert r["ok"] and r["body"] == "secret"

    # Credentials given for https:// never follow a redirect to plain http://.
    srv.clear_requests()
    tls_srv.add_handler("/down", lambda req: redirect(srv.url("/p")))
    r, _ = get("--user", "u:p", "--ca", tls_srv.ca_file, tls_srv.url("/down"))
    assert r["error_name"] == "EPROTONOSUPPORT" and srv.requests == []


def test_proxy_from_environment(get, srv):
    srv.add("/data", DATA)
    with ProxyServer() as proxy:
        r, _ = get(srv.url("/data"), env_extra={"http_proxy": proxy.url})
        assert r["ok"] and r["sha256"] == sha256(DATA)
        assert [q.target for q in proxy.requests] == [srv.url("/data")]
        assert srv.requests[0].headers["Via"] == "1.1 switchyard-test-proxy"

        # no_proxy is honoured too.
        r, _ = get(srv.url("/data"), env_extra={"http_proxy": proxy.url, "no_proxy": "127.0.0.1"})
        assert r["ok"] and len(proxy.requests) == 1 and len(srv.requests) == 2


def test_https_proxy_from_environment(get, tls_srv):
    tls_srv.add("/data", DATA)
    with ProxyServer() as proxy:
        r, _ = get("--ca", tls_srv.ca_file, tls_srv.url("/data"), env_extra={"https_proxy": proxy.url})
        assert r["ok"] and r["sha256"] == sha256(DATA)
        assert proxy.connects == [f"127.0.0.1:{tls_srv.port}"]


def test_https_proxy_refuses_tunnel(get):
    with ProxyServer() as proxy:  # answers CONNECT to a closed port with 502
        r, _ = get(f"https://127.0.0.1:{free_port()}/", env_extra={"https_proxy": proxy.url})
        assert r["error_name"] == "ECONNREFUSED" and "CONNECT" in r["message"] and r["status"] == 0
        assert len(proxy.connects) == 1


def test_unreachable_proxy(get, srv):
    srv.add("/data", DATA)
    r, _ = get(srv.url("/data"), env_extra={"http_proxy": f"http://127.0.0.1:{free_port()}"})
    assert r["error_name"] == "ECONNREFUSED" and srv.requests == []


def test_many_concurrent(get, srv, tmp_path):
    n = 6
    for i in range(n):
        srv.add(f"/d{i}", DATA[i * 1000:], delay=1.0)
    results, _ = get("--many", "-o", tmp_path / "out", *[srv.url(f"/d{i}") for i in range(n)])
    assert [r["url"] for r in results] == [srv.url(f"/d{i}") for i in range(n)]
    for i, r in enumerate(results):
        assert r["ok"] and r["status"] == 200
        assert (tmp_path / f"out.{i}").read_bytes() == DATA[i * 1000:]
    assert srv.max_in_flight == n  # all were being served at the same moment


def test_many_mixed_results(get, srv, tls_srv):
    srv.add("/data", DATA)
    tls_srv.add("/data", DATA)
    srv.add("/norange", DATA, ignore_range=True)
    urls = [srv.url("/data"), srv.url("/missing"), f"http://127.0.0.1:{free_port()}/", tls_srv.url("/data"),
            "ftp://127.0.0.1/x"]
    results, _ = get("--many", *urls)
    assert [r["url"] for r in results] == urls
    assert results[0]["ok"] and results[0]["sha256"] == sha256(DATA)
    assert results[1]["ok"] and results[1]["status"] == 404
    assert results[2]["error_name"] == "ECONNREFUSED"
    assert results[3]["error_name"] == "EPROTO"  # no CA given: verification is on in multi mode too
    assert results[4]["error_name"] == "EPROTONOSUPPORT"


def test_many_with_resume(get, srv):
    srv.add("/data", DATA)
    srv.add("/norange", DATA, ignore_range=True)
    results, _ = get("--many", "--resume-from", 7, srv.url("/data"), srv.url("/norange"))
    assert results[0]["ok"] and results[0]["resumed"] and results[0]["sha256"] == sha256(DATA[7:])
    assert results[1]["error_name"] == "ERANGE" and results[1]["received"] == 0


def test_cli_usage(program):
    exe = program("src/shared/test-http-get")
    p = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--resume-from" in p.stdout
    p = subprocess.run([str(exe)], capture_output=True, text=True)
    assert p.returncode == 1 and "No URL" in p.stderr
