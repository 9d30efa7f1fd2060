"""Fixtures for the payload-writer tests."""
import pytest

import payload as pl


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """Two RSA-2048 key pairs made with openssl: .trusted and .untrusted, each (private, public)."""
    d = tmp_path_factory.mktemp("keys")
    class K:
        trusted = pl.make_rsa_key(str(d), "trusted")
        untrusted = pl.make_rsa_key(str(d), "untrusted")
    return K


@pytest.fixture(scope="session")
def pw_session(build_dir):
    p = build_dir / "src/payload-writer/payload-writer"
    if not p.exists():
        pytest.fail(f"payload-writer was not built at {p}")
    return p


@pytest.fixture
def pw(program):
    return program("payload-writer")
