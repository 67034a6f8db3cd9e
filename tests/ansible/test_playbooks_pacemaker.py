"""The authkey role on Pacemaker cluster nodes whose Pacemaker reads corosync's key.

Issue 16 part 5: on a node where Pacemaker 2.x is installed and cannot read a key of
its own (/etc/pacemaker/authkey), corosync's key, readable by group haclient (root:haclient
0440), is Pacemaker Remote's key too, and counts as sound.  Issue 17 part 2: a controller
with an empty key store adopts the key every node holds when it is sound, "Pacemaker's 0440
case included".  Three cluster nodes running corosync and pacemakerd, no
/etc/pacemaker/authkey (tests/pacemakerhosts.py, ``pacemaker_key="corosync"``).
"""

import grp
import os
from pathlib import Path
from typing import Iterator

import pytest

from tests import pacemakerhosts
from tests.ansible.fleet import Fleet
from tests.ansible.helpers import VENV_BIN
from tests.ansible.test_playbooks import assert_no_key_material, recap
from tests.testhosts import KEY_PATH, Network, unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


class PacemakerFleet(Fleet):
    """One cluster, gamma, of three Pacemaker nodes sharing corosync's key with Pacemaker."""

    def __init__(self, net: Network, workdir: Path) -> None:
        self.net = net
        self.workdir = workdir
        self.bin_dir = VENV_BIN
        self.hosts = net.add_hosts(3, pacemaker=True, pacemaker_key="corosync")
        net.wait_for_membership()
        net.wait_for_pacemaker()
        self.set_up_controller({"gamma": [h.name for h in self.hosts]})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    reason = unavailable_reason() or pacemakerhosts.unavailable_reason()
    if reason:
        pytest.skip(reason)
    net = Network()
    try:
        yield PacemakerFleet(net, tmp_path_factory.mktemp("fleet"))
    finally:
        net.close()


def test_an_empty_store_adopts_the_corosync_key_pacemaker_shares(fleet: Fleet) -> None:
    haclient = grp.getgrnam("haclient").gr_gid
    before = fleet.node_keys()
    assert len(set(before.values())) == 1
    for host in fleet.hosts:
        assert not host.path(pacemakerhosts.PACEMAKER_KEY_PATH).exists()
    status, output = fleet.playbook("distribute.yml", "--diff", "-vvv")
    assert status == 0, output
    key = before[fleet.hosts[0].name]
    assert fleet.controller_key("gamma") == key
    assert_no_key_material(output, key)
    assert fleet.node_keys() == before
    for host in fleet.hosts:  # still Pacemaker Remote's key: readable by pacemaker-controld
        info = os.stat(host.path(KEY_PATH))
        assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o440, 0, haclient)

    status, output = fleet.playbook("distribute.yml")
    assert status == 0, output
    assert all(c["changed"] == 0 for c in recap(output).values()), output
    assert fleet.node_keys() == before
