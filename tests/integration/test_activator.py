"""The socket-activation helper used by the demo and the end-to-end tests behaves like systemd's
Accept=no activation: one start per idle period, the socket as fd 3 with LISTEN_* set."""
import socket
import sys
import time

from activator import Activator

SERVICE = r'''
import os, socket, sys
assert os.environ["LISTEN_FDS"] == "1" and int(os.environ["LISTEN_PID"]) == os.getpid()
s = socket.socket(fileno=3)
s.settimeout(0.5)
try:
    while True:
        c, _ = s.accept()
        c.sendall(b"hello %d\n" % os.getpid())
        c.close()
except socket.timeout:
    sys.exit(0)  # idle: exit, the activator starts us again on the next client
'''


def talk(path):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(str(path))
    data = c.makefile("rb").readline()
    c.close()
    return data


def test_activation_restarts_after_idle_exit(tmp_path):
    path = tmp_path / "sock"
    with Activator(path, ["/usr/bin/python3", "-c", SERVICE], log_path=tmp_path / "log") as a:
        first = talk(path)
        second = talk(path)
        assert first.startswith(b"hello ") and first == second  # same process while busy
        deadline = time.time() + 10
        while a.proc is not None and time.time() < deadline:
            time.sleep(0.05)
        assert a.exit_codes == [0]
        third = talk(path)
        assert third.startswith(b"hello ") and third != first
        assert a.starts == 2
