"""Fixtures for the varlink layer's tests."""
import pytest
from varlink_testservice import start_service


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
