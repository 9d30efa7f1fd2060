"""Fixtures for the end-to-end tests: one small Flatcar host (16 MiB slots, 256K chunks, incompressible
content) built once per session; each test works on a clone of it. The test modules import these; a
conftest.py here would shadow tests/integration/conftest.py, which other modules import by name."""

import pytest

from e2e_checks import BUILD_DIR, need_tool
from flatcar_host import OLD, NEW, FlatcarHost  # noqa: F401


@pytest.fixture(scope="session")
def e2e_template(tmp_path_factory):
    for tool in ("cgpt", "sfdisk", "mkfs.ext4", "openssl"):
        need_tool(tool)
    for prog in ("slot-manager", "payload-writer", "verity-check", "omaha-client"):
        if not (BUILD_DIR / "src" / prog / prog).exists():
            pytest.fail(f"{prog} was not built in {BUILD_DIR}")
    work = tmp_path_factory.mktemp("e2e-template")
    host = FlatcarHost(work, BUILD_DIR, slot_mib=16, fs_mib=12, rich=False, chunk_size=256 * 1024,
                       small_disk=True)
    host.make_root(OLD)
    host.build_host(OLD)
    host.build_update(NEW)
    return host


@pytest.fixture
def host(e2e_template, tmp_path):
    h = e2e_template.clone(tmp_path / "host")
    yield h
    h.stop_services()
    h.detach_loop()
