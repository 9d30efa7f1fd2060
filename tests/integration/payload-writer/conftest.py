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


@pytest.fixture
def pw(program):
    return program("payload-writer")
