"""A small varlink client for the tests, written independently of the C implementation.

    with varlink.Client(path) as c:
        reply = c.call("io.switchyard.Slots.GetStatus", {})
        reply = c.call("io.switchyard.Test.ReadFd", {"fd": 0}, fds=[fd])
        for reply in c.call_more("io.switchyard.Test.Stream", {"count": 3}):
            ...
        fds = c.received_fds      # fds that came with the last reply (caller closes them)

A varlink error reply raises VarlinkError(name, parameters). Messages are NUL-terminated JSON on an
AF_UNIX stream socket; file descriptors travel as SCM_RIGHTS with the first byte of the message that
names them.
"""
import array
import json
import os
import socket
import time

MAX_FDS = 64


class VarlinkError(Exception):
    def __init__(self, name, parameters=None):
        super().__init__(f"{name} {json.dumps(parameters or {})}")
        self.name = name
        self.error = name
        self.parameters = parameters or {}


class ProtocolError(Exception):
    """The service sent something that is not a varlink reply, or closed the connection."""


class Client:
    def __init__(self, address, timeout=60.0):
        path = address[len("unix:"):] if address.startswith("unix:") else str(address)
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self._buf = bytearray()
        # fds that arrived, tagged with a stream position inside the message they belong to
        self._pending_fds = []
        self._consumed = 0  # stream offset of _buf[0]
        self.received_fds = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        for _, fd in self._pending_fds:
            os.close(fd)
        self._pending_fds = []

    def close_received_fds(self):
        """Closes the fds of the last reply (they are the caller's: nothing closes them otherwise)."""
        for fd in self.received_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.received_fds = []

    def fileno(self):
        return self.sock.fileno()

    # ---- raw I/O, also used by tests that send malformed input ----

    def send_raw(self, data: bytes, fds=None):
        """Sends bytes as they are; fds go with the first byte."""
        if fds:
            n = socket.send_fds(self.sock, [data[:1]], list(fds))
            assert n == 1
            data = data[1:]
        if data:
            self.sock.sendall(data)

    def send_message(self, message: dict, fds=None):
        self.send_raw(json.dumps(message).encode() + b"\0", fds)

    def _fill(self):
        data, fds, flags, _ = socket.recv_fds(self.sock, 65536, MAX_FDS)
        if flags & socket.MSG_CTRUNC:
            for fd in fds:
                os.close(fd)
            raise ProtocolError("file descriptors were truncated")
        if not data:
            for fd in fds:
                os.close(fd)
            raise ProtocolError("connection closed by the service")
        # Linux ends a read right after the data that came with fds: they belong to the message holding
        # the last byte of this read (earlier messages' bytes may precede it).
        pos = self._consumed + len(self._buf) + len(data) - 1
        for fd in fds:
            self._pending_fds.append((pos, fd))
        self._buf += data

    def receive_message(self):
        """The next message as (dict, fds)."""
        while True:
            i = self._buf.find(b"\0")
            if i >= 0:
                break
            self._fill()
        raw = bytes(self._buf[:i])
        end = self._consumed + i + 1
        del self._buf[: i + 1]
        self._consumed = end
        fds = [fd for pos, fd in self._pending_fds if pos < end]
        self._pending_fds = [(pos, fd) for pos, fd in self._pending_fds if pos >= end]
        try:
            message = json.loads(raw)
        except ValueError as e:
            for fd in fds:
                os.close(fd)
            raise ProtocolError(f"reply is not JSON: {e}") from e
        if not isinstance(message, dict):
            raise ProtocolError("reply is not an object")
        return message, fds

    def _take_reply(self):
        message, fds = self.receive_message()
        self.received_fds = fds
        if "error" in message:
            raise VarlinkError(message["error"], message.get("parameters"))
        return message.get("parameters", {}), bool(message.get("continues", False))

    # ---- calls ----

    def _send_call(self, method, parameters, fds, more=False, oneway=False):
        message = {"method": method}
        if parameters is not None:
            message["parameters"] = parameters
        if more:
            message["more"] = True
        if oneway:
            message["oneway"] = True
        self.send_message(message, fds)

    def call(self, method, parameters=None, fds=None, oneway=False):
        """One call; returns the reply parameters (None for oneway)."""
        self._send_call(method, parameters if parameters is not None else {}, fds, oneway=oneway)
        if oneway:
            return None
        params, continues = self._take_reply()
        if continues:
            raise ProtocolError("\"continues\" in a reply to a call without \"more\"")
        return params

    def call_more(self, method, parameters=None, fds=None):
        """Calls with "more"; yields each reply's parameters until the last."""
        self._send_call(method, parameters if parameters is not None else {}, fds, more=True)
        while True:
            params, continues = self._take_reply()
            yield params
            if not continues:
                return


def wait_for_socket(path, timeout=10.0, process=None):
    """Waits until something listens on path (and process, if given, is still running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {path}")
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(path))
                return
            except OSError:
                pass
            finally:
                s.close()
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {path} after {timeout}s")
