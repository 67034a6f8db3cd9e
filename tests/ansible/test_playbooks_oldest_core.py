"""The roles on the oldest supported ansible-core (2.14, Debian 12's own).

Sanity (tests/ansible/test_sanity.py) checks the collection's code and documentation
for every release; this runs the roles' Jinja, filters and include_role paths under the
oldest one against real clusters: adopt, nothing changed on the second run, rotate
planned in --check, rotated online.
"""

import re
from pathlib import Path
from typing import Iterator

import pytest

from tests.ansible.fleet import Fleet
from tests.ansible.helpers import SUPPORTED_CORE, core_bin
from tests.ansible.test_playbooks import assert_same_ring_unless_repaired
from tests.testhosts import Network, unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    bin_dir = core_bin(SUPPORTED_CORE[0])
    net = Network()
    try:
        yield Fleet(net, tmp_path_factory.mktemp("fleet"), bin_dir)
    finally:
        net.close()


def changed(output: str) -> "dict[str, int]":
    return {m[0]: int(m[1]) for m in re.findall(r"^(node\d+)\s+:.*changed=(\d+)", output, re.M)}


def test_the_roles_run_on_the_oldest_supported_ansible_core(fleet: Fleet, tmp_path: Path) -> None:
    before = fleet.node_keys()
    status, output = fleet.playbook("distribute.yml")
    assert status == 0, output
    assert fleet.node_keys() == before  # adopted, nothing changed on the nodes
    status, output = fleet.playbook("distribute.yml")
    assert status == 0 and set(changed(output).values()) == {0}, output
    status, output = fleet.playbook("rotate.yml", "--check")
    assert status == 0 and fleet.node_keys() == before, output
    rings = fleet.net.ring_ids()
    status, output = fleet.playbook("rotate.yml")
    assert status == 0, output
    after = fleet.node_keys()
    for cluster in ("alpha", "beta"):
        for host in fleet.cluster(cluster):
            assert after[host.name] == fleet.controller_key(cluster) != before[host.name]
    assert_same_ring_unless_repaired(fleet, output, rings)
