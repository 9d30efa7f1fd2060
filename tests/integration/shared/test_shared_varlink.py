"""The varlink layer end to end over real sockets, against the test service (src/shared/test-varlink-server)
and with the independent Python client (tests/lib/varlink.py)."""
import json
import os
import select
import socket
import time

import pytest
import varlink
from varlink_testservice import activated_service, default_service, service, start_service  # noqa: F401 (fixtures)

T = "io.switchyard.Test"


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def stats(service):
    with service.client() as c:
        return c.call(f"{T}.Stats")


def assert_closed_by_server(sock, timeout=10.0):
    """Reads until EOF; fails if the server keeps the connection open."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass


# ---- introspection ----

def test_get_info(service):
    with service.client() as c:
        info = c.call("org.varlink.service.GetInfo")
    assert info["vendor"] == "switchyard"
    assert info["product"] == "test-varlink-server"
    assert info["version"]
    assert info["url"]
    assert info["interfaces"] == ["org.varlink.service", T]


def test_interface_descriptions(service):
    with service.client() as c:
        own = c.call("org.varlink.service.GetInterfaceDescription", {"interface": "org.varlink.service"})
        assert own["description"].splitlines()[2] == "interface org.varlink.service"
        for m in ("GetInfo", "GetInterfaceDescription"):
            assert f"method {m}(" in own["description"]
        for e in ("InterfaceNotFound", "MethodNotFound", "MethodNotImplemented", "InvalidParameter",
                  "ExpectedMore"):
            assert f"error {e} " in own["description"]
        test = c.call("org.varlink.service.GetInterfaceDescription", {"interface": T})["description"]
        assert f"interface {T}\n" in test
        assert "method Stream(count: int" in test
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("org.varlink.service.GetInterfaceDescription", {"interface": "io.switchyard.Nope"})
        assert e.value.name == "org.varlink.service.InterfaceNotFound"
        assert e.value.parameters == {"interface": "io.switchyard.Nope"}
        with pytest.raises(varlink.VarlinkError) as e:
            c.call("org.varlink.service.GetInterfaceDescription", {})
        assert e.value.name == "org.varlink.service.InvalidParameter"
        assert e.value.parameters == {"parameter": "interface"}


# ---- errors ----

@pytest.mark.parametrize("method,params,error,error_params", [
    ("io.switchyard.Nope.Echo", {}, "org.varlink.service.InterfaceNotFound", {"interface": "io.switchyard.Nope"}),
    (f"{T}.Nope", {}, "org.varlink.service.MethodNotFound", {"method": f"{T}.Nope"}),
    ("NoInterface", {}, "org.varlink.service.MethodNotFound", {"method": "NoInterface"}),
    (f"{T}.lowercase", {}, "org.varlink.service.MethodNotFound", {"method": f"{T}.lowercase"}),
    ("org.varlink.service.Nope", {}, "org.varlink.service.MethodNotFound", {"method": "org.varlink.service.Nope"}),
    (f"{T}.NotImplemented", {}, "org.varlink.service.MethodNotImplemented", {"method": f"{T}.NotImplemented"}),
    (f"{T}.Sleep", {"ms": "soon"}, "org.varlink.service.InvalidParameter", {"parameter": "ms"}),
    (f"{T}.Sleep", {}, "org.varlink.service.InvalidParameter", {"parameter": "ms"}),
    (f"{T}.ReadFd", {"fd": 3}, "org.varlink.service.InvalidParameter", {"parameter": "fd"}),
    (f"{T}.Stream", {"count": 2}, "org.varlink.service.ExpectedMore", {}),
    (f"{T}.Fail", {"reason": "because"}, f"{T}.Failure", {"reason": "because"}),
    (f"{T}.Errno", {"errno": 2}, "io.switchyard.InternalError", {"errno": 2, "message": "No such file or directory"}),
])
def test_errors(service, method, params, error, error_params):
    with service.client() as c:
        with pytest.raises(varlink.VarlinkError) as e:
            c.call(method, params)
        assert e.value.name == error
        assert e.value.parameters == error_params
        # An error ends the call, not the connection.
        assert c.call(f"{T}.Echo", {"text": "after"}) == {"text": "after"}


def test_absent_parameters_mean_empty_object(service):
    with service.client() as c:
        c.send_message({"method": "org.varlink.service.GetInfo"})
        reply, fds = c.receive_message()
        assert T in reply["parameters"]["interfaces"] and not fds
        c.send_message({"method": f"{T}.Echo", "parameters": None})
        assert c.receive_message()[0] == {"parameters": {}}


# ---- streaming, oneway, ordering ----

def test_streaming(service):
    with service.client() as c:
        c.send_message({"method": f"{T}.Stream", "parameters": {"count": 5}, "more": True})
        replies = [c.receive_message()[0] for _ in range(5)]
        assert [r["parameters"]["index"] for r in replies] == [0, 1, 2, 3, 4]
        assert [r.get("continues", False) for r in replies] == [True, True, True, True, False]
        assert list(c.call_more(f"{T}.Stream", {"count": 1})) == [{"index": 0, "count": 1}]
        # "more" on a method that answers once: one final reply
        assert list(c.call_more(f"{T}.Echo", {"text": "x"})) == [{"text": "x"}]


def test_oneway(service):
    with service.client() as c:
        assert c.call(f"{T}.Record", {"text": "one"}, oneway=True) is None
        c.call(f"{T}.Fail", {}, oneway=True)  # errors are not sent either
        c.call(f"{T}.Nope", {}, oneway=True)
        # The next message on the wire is the reply to this call: nothing was sent for the oneway calls.
        c.send_message({"method": f"{T}.Echo", "parameters": {"text": "next"}})
        assert c.receive_message()[0] == {"parameters": {"text": "next"}}
        assert c.call(f"{T}.Stats")["recorded"] == ["one"]


def test_pipelined_calls_answered_in_order(service):
    with service.client() as c:
        batch = []
        for i in range(200):
            if i == 50:
                batch.append({"method": f"{T}.Sleep", "parameters": {"ms": 200}})
            elif i == 100:
                batch.append({"method": f"{T}.Stream", "parameters": {"count": 3}, "more": True})
            else:
                batch.append({"method": f"{T}.Echo", "parameters": {"text": str(i)}})
        c.send_raw(b"".join(json.dumps(m).encode() + b"\0" for m in batch))
        for i in range(200):
            reply = c.receive_message()[0]
            if i == 50:
                assert reply == {"parameters": {"slept": 200}}
            elif i == 100:
                assert reply["parameters"]["index"] == 0
                assert c.receive_message()[0]["parameters"]["index"] == 1
                assert c.receive_message()[0] == {"parameters": {"index": 2, "count": 3}}
            else:
                assert reply == {"parameters": {"text": str(i)}}


def test_message_split_across_writes(service):
    with service.client() as c:
        raw = json.dumps({"method": f"{T}.Echo", "parameters": {"text": "slow"}}).encode() + b"\0"
        for b in raw:
            c.send_raw(bytes([b]))
        assert c.receive_message()[0] == {"parameters": {"text": "slow"}}


# ---- file descriptors ----

def test_fd_to_server(service):
    with service.client() as c:
        r, w = os.pipe()
        os.write(w, b"through the pipe")
        os.close(w)
        try:
            assert c.call(f"{T}.ReadFd", {"fd": 0}, fds=[r]) == {"content": "through the pipe"}
        finally:
            os.close(r)

        pipes = []
        for text in (b"zero", b"one", b"two"):
            r, w = os.pipe()
            os.write(w, text)
            os.close(w)
            pipes.append(r)
        try:
            reply = c.call(f"{T}.ReadFds", {"fds": [2, 0, 1]}, fds=pipes)
            assert reply == {"contents": ["two", "zero", "one"]}
        finally:
            for fd in pipes:
                os.close(fd)


def test_fd_from_server(service):
    with service.client() as c:
        reply = c.call(f"{T}.MakeFd", {"text": "made by the server", "count": 3})
        assert reply["fd"] == 0 and reply["fds"] == [0, 1, 2]
        assert len(c.received_fds) == 3
        for fd in c.received_fds:
            assert os.pread(fd, 100, 0) == b"made by the server"
        c.close_received_fds()
        # fds are per reply: the next reply has none
        c.call(f"{T}.Echo", {})
        assert c.received_fds == []


def test_fds_belong_to_their_message(service):
    """Pipelined messages, only the second carries an fd: it must reach the second call."""
    with service.client() as c:
        r, w = os.pipe()
        os.write(w, b"second")
        os.close(w)
        c.send_message({"method": f"{T}.Echo", "parameters": {"text": "first"}})
        c.send_message({"method": f"{T}.ReadFd", "parameters": {"fd": 0}}, fds=[r])
        os.close(r)
        assert c.receive_message()[0] == {"parameters": {"text": "first"}}
        assert c.receive_message()[0] == {"parameters": {"content": "second"}}


def test_unclaimed_fds_are_closed(service):
    """An fd nobody asked for is closed by the server: the pipe's reader then sees EOF."""
    with service.client() as c:
        r, w = os.pipe()
        c.call(f"{T}.Echo", {"text": "fd ignored"}, fds=[w])
        os.close(w)
        ready, _, _ = select.select([r], [], [], 10)
        assert ready and os.read(r, 10) == b""
        os.close(r)


def test_too_many_fds_disconnects(service):
    with service.client() as other, service.client() as c:
        pipes = [os.pipe() for _ in range(20)]
        try:
            c.send_raw(json.dumps({"method": f"{T}.Echo"}).encode() + b"\0", fds=[p[0] for p in pipes])
            assert_closed_by_server(c.sock)
        finally:
            for p in pipes:
                os.close(p[0])
                os.close(p[1])
        assert other.call(f"{T}.Echo", {"text": "ok"}) == {"text": "ok"}
    service.assert_healthy()


# ---- malformed input: the offender is dropped, everyone else is served ----

MALFORMED = {
    "invalid-json": b'{"method": "io.switchyard.Test.Echo", \0',
    "invalid-json-trailing": b'{"method": "io.switchyard.Test.Echo"} x\0',
    "invalid-utf8": b'{"method": "io.switchyard.Test.\xff"}\0',
    "nul-inside": b'{"method": "io.switch\0yard.Test.Echo"}\0',
    "escaped-nul-method": b'{"method": "io.switchyard.Test.Echo\\u0000"}\0',
    "empty": b"\0",
    "array": b"[1, 2, 3]\0",
    "string": b'"io.switchyard.Test.Echo"\0',
    "number": b"42\0",
    "null": b"null\0",
    "no-method": b'{"parameters": {}}\0',
    "method-number": b'{"method": 5}\0',
    "method-null": b'{"method": null}\0',
    "parameters-array": b'{"method": "io.switchyard.Test.Echo", "parameters": [1]}\0',
    "parameters-string": b'{"method": "io.switchyard.Test.Echo", "parameters": "x"}\0',
    "more-string": b'{"method": "io.switchyard.Test.Echo", "more": "yes"}\0',
    "oneway-number": b'{"method": "io.switchyard.Test.Echo", "oneway": 1}\0',
    "more-and-oneway": b'{"method": "io.switchyard.Test.Echo", "more": true, "oneway": true}\0',
    "upgrade": b'{"method": "io.switchyard.Test.Echo", "upgrade": true}\0',
    "deep-nesting": b'{"method": "io.switchyard.Test.Echo", "parameters": {"data": ' + b"[" * 60000 + b"]" * 60000 + b"}}\0",
    "huge-number": b'{"method": "io.switchyard.Test.Echo", "parameters": {"data": 1e999999}}\0',
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_message(service, name):
    with service.client() as other, service.client() as bad:
        # A call in flight on another connection is answered despite the offender.
        other.send_message({"method": f"{T}.Sleep", "parameters": {"ms": 300}})
        bad.send_raw(MALFORMED[name])
        assert_closed_by_server(bad.sock)
        assert other.receive_message()[0] == {"parameters": {"slept": 300}}
        assert other.call(f"{T}.Echo", {"text": name}) == {"text": name}
    service.assert_healthy()


def test_valid_calls_before_malformed_are_answered(service):
    with service.client() as c:
        c.send_raw(b'{"method": "io.switchyard.Test.Echo", "parameters": {"text": "a"}}\0[]\0')
        assert c.receive_message()[0] == {"parameters": {"text": "a"}}
        assert_closed_by_server(c.sock)
    service.assert_healthy()


def test_missing_nul_over_limit(service):
    """65 KiB without a NUL on a 64 KiB limit: dropped before the NUL ever comes."""
    with service.client() as other, service.client() as bad:
        bad.send_raw(b'{"method": "io.switchyard.Test.Echo", "parameters": {"text": "' + b"a" * (65 * 1024))
        assert_closed_by_server(bad.sock)
        assert other.call(f"{T}.Echo", {"text": "ok"}) == {"text": "ok"}
    service.assert_healthy()


def test_missing_nul_then_close(service):
    """A partial message followed by EOF is discarded without a reply."""
    with service.client() as c:
        c.send_raw(b'{"method": "io.switchyard.Test.Record", "parameters": {"text": "partial"}}')
        c.sock.shutdown(socket.SHUT_WR)
        assert_closed_by_server(c.sock)
    assert stats(service)["recorded"] == []
    service.assert_healthy()


def test_message_at_limit_and_over(service):
    overhead = len(json.dumps({"method": f"{T}.Echo", "parameters": {"text": ""}}))
    with service.client() as c:
        text = "b" * (65536 - overhead)
        assert c.call(f"{T}.Echo", {"text": text}) == {"text": text}
    with service.client() as other, service.client() as bad:
        bad.send_message({"method": f"{T}.Echo", "parameters": {"text": "b" * (65536 - overhead + 1)}})
        assert_closed_by_server(bad.sock)
        assert other.call(f"{T}.Echo", {"text": "ok"}) == {"text": "ok"}
    service.assert_healthy()


def test_default_limit_16mib(default_service):
    with default_service.client() as c:
        text = "c" * (4 * 1024 * 1024)
        assert c.call(f"{T}.Echo", {"text": text}) == {"text": text}
    with default_service.client() as other, default_service.client() as bad:
        try:
            bad.send_message({"method": f"{T}.Echo", "parameters": {"text": "d" * (17 * 1024 * 1024)}})
        except (BrokenPipeError, ConnectionResetError):
            pass  # dropped while still sending: fine
        assert_closed_by_server(bad.sock)
        assert other.call(f"{T}.Echo", {"text": "ok"}) == {"text": "ok"}
    default_service.assert_healthy()


def test_stops_reading_over_limit_while_call_pending(service):
    """While a call is in progress more input waits; a client that piles up more than the limit behind it
    is cut off without the pending data growing without bound."""
    with service.client() as other:
        bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bad.connect(service.path)
        bad.sendall(json.dumps({"method": f"{T}.Sleep", "parameters": {"ms": 300}}).encode() + b"\0")
        bad.settimeout(0.5)
        sent = 0
        try:
            while sent < 8 * 1024 * 1024:
                sent += bad.send(b'{"method": "io.switchyard.Test.Echo"}\0' * 1000)
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass
        assert other.call(f"{T}.Echo", {"text": "ok"}) == {"text": "ok"}
        # The backlog is worked off after the Sleep (or the client is dropped): either way no stall.
        bad.close()
    service.assert_healthy()


# ---- clients that do not read, or leave ----

def test_client_that_never_reads(service):
    """Pipelined calls whose replies are never read: the output buffer passes the limit and the client is
    dropped, while others are answered all along."""
    with service.client() as other:
        bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bad.connect(service.path)
        bad.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        bad.settimeout(10)
        call = json.dumps({"method": f"{T}.Echo", "parameters": {"text": "e" * 60000}}).encode() + b"\0"
        dropped = False
        try:
            for _ in range(400):  # 24 MB of replies if nothing stopped it
                bad.sendall(call)
                assert other.call(f"{T}.Echo", {"text": "served"}) == {"text": "served"}
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
        assert dropped, "the server kept a client that reads nothing"
        assert other.call(f"{T}.Echo", {"text": "ok"}) == {"text": "ok"}
        bad.close()
    service.assert_healthy()


def test_stream_to_client_that_never_reads(service):
    with service.client() as other:
        bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bad.connect(service.path)
        bad.sendall(json.dumps({"method": f"{T}.Stream", "parameters": {"count": 200, "size": 50000},
                                "more": True}).encode() + b"\0")
        assert other.call(f"{T}.Echo", {"text": "ok"}) == {"text": "ok"}
        # Without reading a byte: the server drops it (other + the Stats caller remain).
        wait_until(lambda: stats(service)["connections"] == 2, what="the non-reading client to be dropped")
        assert_closed_by_server(bad)
        bad.close()
        assert other.call(f"{T}.Echo", {"text": "ok"}) == {"text": "ok"}
    service.assert_healthy()


def test_client_vanishes_mid_call(service):
    before = stats(service)["cancelled"]
    c = service.client()
    c.send_message({"method": f"{T}.Sleep", "parameters": {"ms": 30000}})
    time.sleep(0.2)
    c.close()
    # The call's disconnect handler ran (it cancels the timer and counts).
    wait_until(lambda: stats(service)["cancelled"] == before + 1, what="the disconnect handler")
    service.assert_healthy()


def test_reply_after_disconnect_is_refused(service):
    c = service.client()
    c.send_message({"method": f"{T}.Sleep", "parameters": {"ms": 300, "ignore_disconnect": True}})
    time.sleep(0.1)
    c.close()
    # The handler replies later anyway and gets ENOTCONN (counted by the service), nothing breaks.
    wait_until(lambda: stats(service)["late_replies"] == 1, what="the late reply")
    service.assert_healthy()


def test_client_vanishes_mid_stream(service):
    for _ in range(5):
        c = service.client()
        c.send_message({"method": f"{T}.Stream", "parameters": {"count": 1000, "size": 1000}, "more": True})
        c.receive_message()
        c.close()
    service.assert_healthy()


def test_half_closed_client_gets_its_reply(service):
    with service.client() as c:
        c.send_message({"method": f"{T}.Sleep", "parameters": {"ms": 100}})
        c.sock.shutdown(socket.SHUT_WR)
        assert c.receive_message()[0] == {"parameters": {"slept": 100}}
        assert_closed_by_server(c.sock)


# ---- many clients ----

def test_500_concurrent_clients(service):
    """500 connections open at once, each with a call in flight (half of them answered from timers):
    every one gets its own answer, and the timers run concurrently."""
    clients = [service.client(timeout=60) for _ in range(500)]
    try:
        start = time.monotonic()
        for i, c in enumerate(clients):
            if i % 2:
                c.send_message({"method": f"{T}.Sleep", "parameters": {"ms": 500}})
            else:
                c.send_message({"method": f"{T}.Echo", "parameters": {"text": f"client {i}"}})
        assert stats(service)["connections"] == 501
        for i, c in enumerate(clients):
            reply = c.receive_message()[0]
            if i % 2:
                assert reply == {"parameters": {"slept": 500}}
            else:
                assert reply == {"parameters": {"text": f"client {i}"}}
        elapsed = time.monotonic() - start
        assert elapsed < 15, f"500 clients took {elapsed:.1f}s: calls were not served concurrently"
        # and every connection is still usable
        for i, c in enumerate(clients):
            assert c.call(f"{T}.Echo", {"text": str(i)}) == {"text": str(i)}
    finally:
        for c in clients:
            c.close()
    wait_until(lambda: stats(service)["connections"] == 1, what="connections to close")


# ---- activation and lifetime ----

def test_socket_activation(activated_service):
    with activated_service.client() as c:
        info = c.call("org.varlink.service.GetInfo")
        assert T in info["interfaces"]
        r, w = os.pipe()
        os.write(w, b"activated")
        os.close(w)
        assert c.call(f"{T}.ReadFd", {"fd": 0}, fds=[r]) == {"content": "activated"}
        os.close(r)
        assert [p["index"] for p in c.call_more(f"{T}.Stream", {"count": 3})] == [0, 1, 2]
        c.send_raw(b"not json\0")
        assert_closed_by_server(c.sock)
    activated_service.assert_healthy()


def test_socket_activation_exit_on_idle(program, tmp_path):
    s = start_service(program, tmp_path, "--exit-on-idle=300", activate=True)
    try:
        with s.client() as c:
            c.call(f"{T}.Sleep", {"ms": 600})  # longer than the idle time: a busy service stays
            assert s.proc.poll() is None
        assert s.proc.wait(timeout=10) == 0
        assert "Exiting." in s.stderr()
    finally:
        s.stop()


def test_exit_on_idle(program, tmp_path):
    s = start_service(program, tmp_path, "--exit-on-idle=400")
    try:
        with s.client() as c:
            time.sleep(0.8)  # an open idle connection keeps the service alive
            assert s.proc.poll() is None
            assert c.call(f"{T}.Echo", {"text": "alive"}) == {"text": "alive"}
        start = time.monotonic()
        assert s.proc.wait(timeout=10) == 0
        assert time.monotonic() - start < 5
    finally:
        assert s.stop() == 0


def test_no_exit_on_idle_by_default(service):
    time.sleep(0.5)
    assert service.proc.poll() is None


def test_no_socket_is_an_error(program):
    import subprocess
    r = subprocess.run([str(program("src/shared/test-varlink-server"))], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")})
    assert r.returncode != 0
    assert "No socket to serve" in r.stderr


def test_listen_path_replaces_stale_socket_only(program, tmp_path):
    import subprocess
    exe = str(program("src/shared/test-varlink-server"))
    # a regular file is not replaced
    path = tmp_path / "not-a-socket"
    path.write_text("keep me")
    r = subprocess.run([exe, f"--listen={path}"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "exists and is not a socket" in r.stderr
    assert path.read_text() == "keep me"
    # a socket left behind by a dead service is replaced
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "io.switchyard.Test"))
    stale.close()
    s = start_service(program, tmp_path)
    try:
        s.assert_healthy()
    finally:
        assert s.stop() == 0


def test_500_clients_connecting_at_once(service):
    """500 threads connect in the same instant (a burst on the listen backlog), call, and check their answer."""
    import threading
    n = 500
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        try:
            barrier.wait(timeout=60)
            with service.client(timeout=60) as c:
                results[i] = c.call(f"{T}.Echo", {"text": f"thread {i}"}) == {"text": f"thread {i}"}
        except Exception as e:  # recorded and reported below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    failures = [(i, r) for i, r in enumerate(results) if r is not True]
    assert not failures, failures[:5]
    service.assert_healthy()
