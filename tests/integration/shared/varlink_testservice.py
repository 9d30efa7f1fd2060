"""Runs the varlink test service (src/shared/test-varlink-server) under --listen or systemd-socket-activate."""
import os
import signal
import subprocess
import time

import pytest
import varlink

TEST_SERVER = "src/shared/test-varlink-server"


class Service:
    def __init__(self, proc, path, stderr_path):
        self.proc = proc
        self.path = str(path)
        self.stderr_path = stderr_path

    def client(self, timeout=30.0):
        return varlink.Client(self.path, timeout=timeout)

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def assert_healthy(self):
        """The service still runs and answers a fresh client."""
        assert self.proc.poll() is None, f"service died: {self.stderr()}"
        with self.client(timeout=10) as c:
            assert c.call("io.switchyard.Test.Echo", {"text": "still here"}) == {"text": "still here"}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("service did not stop on SIGTERM")
        err = self.stderr()
        # Sanitizer reports (memory errors, leaks, undefined behaviour) fail the test that used the service.
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert marker not in err, err
        return self.proc.returncode


def start_service(program, tmp_path, *args, activate=False, name="io.switchyard.Test"):
    path = tmp_path / name
    stderr_path = tmp_path / f"{name}.stderr"
    exe = str(program(TEST_SERVER))
    env = dict(os.environ, SWITCHYARD_LOG_LEVEL="debug")
    if activate:
        tool = "/usr/bin/systemd-socket-activate"
        if not os.path.exists(tool):
            pytest.skip("systemd-socket-activate is not installed (Debian package systemd)")
        cmd = [tool, "-l", str(path), exe, *args]
    else:
        cmd = [exe, f"--listen={path}", *args]
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
    if activate:
        # Connecting would start the service: wait for the tool to say that it listens.
        deadline = time.monotonic() + 10
        while "Listening on" not in open(stderr_path).read():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"systemd-socket-activate did not create {path}: {open(stderr_path).read()}")
            time.sleep(0.01)
    else:
        try:
            varlink.wait_for_socket(path, timeout=10, process=proc)
        except (RuntimeError, TimeoutError) as e:
            proc.kill()
            pytest.fail(f"{e}: {open(stderr_path).read()}")
    return Service(proc, path, stderr_path)


# Fixtures (imported by the test modules: a conftest.py here would shadow tests/integration/conftest.py).

@pytest.fixture
def service(program, tmp_path):
    """The test service on --listen with a 64 KiB message limit (so that limits are quick to hit)."""
    s = start_service(program, tmp_path, "--message-max=65536")
    yield s
    assert s.stop() == 0


@pytest.fixture
def default_service(program, tmp_path):
    """The test service with the default (16 MiB) limit."""
    s = start_service(program, tmp_path)
    yield s
    assert s.stop() == 0


@pytest.fixture
def activated_service(program, tmp_path):
    """The test service started by systemd-socket-activate on its first connection."""
    s = start_service(program, tmp_path, "--message-max=65536", activate=True)
    yield s
    assert s.stop() == 0
