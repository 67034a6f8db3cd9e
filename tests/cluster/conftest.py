"""Fixtures: networks of real corosync + sshd test hosts (see tests/README.md)."""

from __future__ import annotations

import shutil
import tempfile
from typing import Iterator, List

import pytest

from tests.testhosts import Host, Network, unavailable_reason


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def testhosts_available() -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def network(testhosts_available: None) -> Iterator[Network]:
    """An empty network of this test's own; add hosts with network.add_hosts(n)."""
    net = Network()
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def cluster3(network: Network) -> List[Host]:
    """Three corosync hosts sharing one key, fully joined. The test may break them."""
    hosts = network.add_hosts(3)
    network.wait_for_membership()
    return hosts


@pytest.fixture(scope="module")
def shared_cluster3(testhosts_available: None) -> Iterator[Network]:
    """A three-host cluster shared by a module's tests, which must leave it healthy."""
    net = Network()
    try:
        net.add_hosts(3)
        net.wait_for_membership()
        yield net
    finally:
        net.close()


@pytest.fixture
def own_ssh_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test opens its own multiplexed ssh connections (corokey keeps them a minute)."""
    directory = tempfile.mkdtemp(prefix="ck")  # short: ControlPath must fit a socket name
    monkeypatch.setenv("XDG_RUNTIME_DIR", directory)
    yield
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pacemaker_available(testhosts_available: None) -> None:
    """Pacemaker's cluster daemons and pacemaker-remoted can run on the test hosts."""
    from tests import pacemakerhosts

    reason = pacemakerhosts.remoted_unavailable_reason()
    if reason:
        pytest.skip(reason)
