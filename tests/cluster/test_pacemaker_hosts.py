"""The Pacemaker test hosts themselves: a cluster and a remote node come up, each host with
its own Pacemaker directories, and leave nothing on the machine."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests import pacemakerhosts
from tests.testhosts import Network


def _machine_file(path: str) -> tuple[int, bytes] | None:
    try:
        return os.stat(path).st_ino, Path(path).read_bytes()
    except FileNotFoundError:
        return None


def test_a_cluster_and_a_remote_node_come_up_on_private_dirs(
    pacemaker_available: None, network: Network
) -> None:
    machine_key = _machine_file(pacemakerhosts.PACEMAKER_KEY_PATH)
    cluster = network.add_hosts(2, pacemaker=True)
    status = network.wait_for_pacemaker()
    assert status.dc in ("node1", "node2") and status.quorum
    assert not status.stonith_enabled  # the tests' seeded CIB
    (remote,) = network.add_remote_hosts(1)
    status = network.wait_for_pacemaker()
    assert status.nodes[remote.name].type == "remote" and status.nodes[remote.name].online
    assert status.online("member") == ["node1", "node2"]
    # One shared key as Debian lays it out (root:haclient 0640), seen on each host only.
    keys = {h.path(pacemakerhosts.PACEMAKER_KEY_PATH).read_bytes() for h in network.hosts}
    assert len(keys) == 1 and len(next(iter(keys))) == pacemakerhosts.DEBIAN_KEY_SIZE
    info = cluster[0].path(pacemakerhosts.PACEMAKER_KEY_PATH).stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert _machine_file(pacemakerhosts.PACEMAKER_KEY_PATH) == machine_key
    # The daemons write to the host's own log and CIB.
    assert "pacemaker-controld" in cluster[0].pacemaker_log()
    assert "pacemaker-remoted" in remote.pacemaker_log()
    assert cluster[0].path("/var/lib/pacemaker/cib/cib.xml").exists()
    assert not remote.path("/var/lib/pacemaker/cib/cib.xml").exists()
    # A restart of pacemaker-remoted: the cluster connects again.
    network.restart_pacemaker_remote(remote)
