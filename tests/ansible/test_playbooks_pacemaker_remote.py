"""The roles with the pacemaker profile on real Pacemaker 2.1.5: two cluster nodes and a
remote node (pacemaker-remoted, no corosync) in one ``corokey_cluster`` (issue 18 item 5).

One module-scoped set-up, used in order (each rotation costs Pacemaker's 60 s key cache
window): Debian's stock state (a different random key on every node, so the remote node
cannot connect) made to agree by the authkey role; the rotate role's online rotation with
the remote node connected throughout; a rotation whose commit fails on the remote node,
rolled back everywhere.
"""

import base64
import grp
import os
import pwd
import re
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from tests import pacemakerhosts
from tests.ansible.fleet import Fleet
from tests.ansible.helpers import VENV_BIN
from tests.ansible.test_playbooks import assert_no_key_material, recap
from tests.testhosts import Host, Network, unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
KEY = pacemakerhosts.PACEMAKER_KEY_PATH
HANDSHAKE_FAILED = "Disconnecting after TLS handshake"
#: What Pacemaker 2.1.5 logs when it decides to fence a node (the scheduler's "will be
#: fenced", the controller's "Requesting fencing"). The test hosts have stonith off (no
#: fence device), so this shows that a lost connection would have led to fencing.
FENCING = ("will be fenced", "Requesting fencing", "for fencing")


def hacluster_ids() -> "tuple[int, int]":
    return pwd.getpwnam("hacluster").pw_uid, grp.getgrnam("haclient").gr_gid


def wanted_owner(fleet: "RemoteFleet", host: Host) -> "tuple[int, int]":
    """hacluster:haclient on the cluster nodes, root:root on the remote node without them."""
    return (0, 0) if host is fleet.remote else hacluster_ids()


class RemoteFleet(Fleet):
    """Cluster delta: node1 and node2 (corosync + pacemakerd), node3 a remote node."""

    def __init__(self, net: Network, workdir: Path) -> None:
        self.net = net
        self.workdir = workdir
        self.bin_dir = VENV_BIN
        self.cluster_hosts = net.add_hosts(2, pacemaker=True, pacemaker_key="per-node")
        net.wait_for_pacemaker(self.cluster_hosts)
        # A remote node built without Pacemaker's packages: no user hacluster, no group
        # haclient; pacemaker-remoted (root) reads its key as root:root 0400.
        self.remote_hosts = net.add_remote_hosts(
            1, key=os.urandom(4096), wait=False, pacemaker_accounts=False
        )
        self.hosts = [*self.cluster_hosts, *self.remote_hosts]
        self.set_up_controller({"delta": [h.name for h in self.hosts]})

    @property
    def remote(self) -> Host:
        return self.remote_hosts[0]

    def pacemaker_keys(self) -> Dict[str, bytes]:
        return {h.name: h.read_key(KEY) for h in self.hosts}

    def controller_pacemaker_key(self) -> bytes:
        return (self.keys / "delta" / "pacemaker.key").read_bytes()

    def log_marks(self) -> Dict[str, int]:
        return {h.name: len(h.pacemaker_log()) for h in self.cluster_hosts}

    def failed_handshakes(self, marks: Dict[str, int]) -> List[str]:
        return [
            h.name
            for h in self.cluster_hosts
            if HANDSHAKE_FAILED in h.pacemaker_log()[marks[h.name] :]
        ]

    def fencing_decided(self, marks: Dict[str, int]) -> List[str]:
        return [
            line
            for h in self.cluster_hosts
            for line in h.pacemaker_log()[marks[h.name] :].splitlines()
            if any(words in line for words in FENCING)
        ]

    def maintenance_mode(self) -> bool:
        argv = [
            "crm_attribute",
            "--type",
            "crm_config",
            "--name",
            "maintenance-mode",
            "--query",
            "--quiet",
        ]
        return self.cluster_hosts[0].run(argv, check=False).stdout.strip() == "true"

    def staged_leftovers(self) -> List[str]:
        return [
            h.name
            for h in self.hosts
            if any(".corokey-staged" in p.name for p in h.path("/etc/pacemaker").iterdir())
        ]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteFleet]:
    reason = unavailable_reason() or pacemakerhosts.remoted_unavailable_reason()
    if reason:
        pytest.skip(reason)
    net = Network()
    try:
        yield RemoteFleet(net, tmp_path_factory.mktemp("fleet"))
    finally:
        net.close()


def test_a_debian_stock_cluster_and_its_remote_node_get_one_key(fleet: RemoteFleet) -> None:
    before = fleet.pacemaker_keys()
    assert len(set(before.values())) == 3  # Debian's stock state: a key per node
    # Without the remote node in the play the key would not reach it: refused, nothing changed.
    partial = fleet.write_inventory(
        "cluster-only.ini", {"delta": [h.name for h in fleet.cluster_hosts]}
    )
    status, output = fleet.playbook("distribute_pacemaker.yml", inventory=partial)
    assert status != 0, output
    assert f"the CIB's {fleet.remote.name} (remote) is not in the play" in output, output
    assert fleet.pacemaker_keys() == before
    # Cluster and remote nodes: one key everywhere (the nodelist check for the cluster nodes
    # only), and the remote node connects.
    status, output = fleet.playbook("distribute_pacemaker.yml", "--diff", "-v")
    assert status == 0, output
    key = fleet.controller_pacemaker_key()
    assert_no_key_material(output, key)
    assert set(fleet.pacemaker_keys().values()) == {key}
    for host in fleet.hosts:
        info = os.stat(host.path(KEY))
        assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (
            0o400,
            *wanted_owner(fleet, host),
        )
    fleet.net.wait_for_pacemaker()
    status, output = fleet.playbook("distribute_pacemaker.yml")
    assert status == 0, output
    assert all(c["changed"] == 0 for c in recap(output).values()), output
    # Now Pacemaker runs on one key: another is a rotation, refused without apply=reload.
    other = base64.b64encode(os.urandom(256)).decode()
    status, output = fleet.playbook("distribute_pacemaker.yml", "-e", f"corokey_key_b64={other}")
    assert status != 0 and "Pacemaker runs, and every node holds the key" in output, output
    assert "corokey_apply=reload" in output
    assert set(fleet.pacemaker_keys().values()) == {key}


def test_the_rotate_role_rotates_online_and_the_remote_node_stays_connected(
    fleet: RemoteFleet,
) -> None:
    fleet.net.wait_for_pacemaker()
    old = fleet.controller_pacemaker_key()
    marks = fleet.log_marks()
    status, output = fleet.playbook("rotate_pacemaker.yml", "--check")
    assert status == 0 and "would change Pacemaker Remote's key" in output, output
    assert set(fleet.pacemaker_keys().values()) == {old} and not fleet.maintenance_mode()
    assert fleet.staged_leftovers() == []
    status, output = fleet.playbook("rotate_pacemaker.yml", "-v")
    assert status == 0, output
    new = fleet.controller_pacemaker_key()
    assert new != old and set(fleet.pacemaker_keys().values()) == {new}
    assert_no_key_material(output, new)
    # Never offline while the window was watched, no handshake with a stale key, no fencing.
    assert re.search(rf'"offline_seconds": \{{\s*"{fleet.remote.name}": 0\.0\s*\}}', output), output
    assert fleet.failed_handshakes(marks) == []
    assert not fleet.maintenance_mode()
    status_now = fleet.net.cluster_status()
    assert status_now is not None and status_now.connected(fleet.remote.name)
    assert fleet.fencing_decided(marks) == []
    assert fleet.staged_leftovers() == []
    for host in fleet.hosts:
        info = os.stat(host.path(KEY))
        assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (
            0o400,
            *wanted_owner(fleet, host),
        )
    # A new handshake uses the new key.
    fleet.net.restart_pacemaker_remote(fleet.remote)


def test_a_commit_failing_on_the_remote_node_is_rolled_back_everywhere(fleet: RemoteFleet) -> None:
    fleet.net.wait_for_pacemaker()
    before = fleet.pacemaker_keys()
    stored = fleet.controller_pacemaker_key()
    marks = fleet.log_marks()
    # The remote node's key file is a mount point: the rename over it fails (EBUSY), while
    # the cluster nodes commit.
    fleet.remote.run(["mount", "--bind", KEY, KEY])
    try:
        status, output = fleet.playbook("rotate_pacemaker.yml")
    finally:
        fleet.remote.run(["umount", KEY])
    assert status != 0, output
    assert (
        "the old key SHA256:" in output and "is back in every node's key file (read back)" in output
    ), output
    assert "maintenance-mode off again, one key cache window later" in output, output
    assert fleet.pacemaker_keys() == before
    assert fleet.controller_pacemaker_key() == stored
    for host in fleet.hosts:  # readable by Pacemaker again (not .old's 0600)
        info = os.stat(host.path(KEY))
        assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (
            0o400,
            *wanted_owner(fleet, host),
        )
    assert not fleet.maintenance_mode()
    assert fleet.failed_handshakes(marks) == []
    assert fleet.fencing_decided(marks) == []
    status_now = fleet.net.cluster_status()
    assert status_now is not None and status_now.connected(fleet.remote.name)
    assert fleet.staged_leftovers() == []
