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
    # pacemakerd is installed on the cluster nodes only (pacemaker-remote conflicts with it).
    assert cluster[0].run(["test", "-x", "/usr/sbin/pacemakerd"], check=False).returncode == 0
    assert remote.run(["test", "-x", "/usr/sbin/pacemakerd"], check=False).returncode == 1
    # A restart of pacemaker-remoted: the cluster connects again.
    network.restart_pacemaker_remote(remote)


def test_a_remote_node_whose_connection_is_starting_is_not_connected() -> None:
    """crm_mon 2.1.5 shows a remote node online while its connection resource starts (seen
    with a wrong key, whose start then fails): connected() waits for Started."""
    xml = """<pacemaker-result api-version="2.25" request="crm_mon">
      <summary><current_dc present="true" name="node1" with_quorum="true"/></summary>
      <nodes>
        <node name="node1" online="true" type="member" is_dc="true"/>
        <node name="node3" online="true" type="remote" is_dc="false"/>
      </nodes>
      <resources>
        <resource id="node3" role="{role}" active="true" failed="{failed}">
          <node name="node1" id="1" cached="true"/>
        </resource>
      </resources>
    </pacemaker-result>"""
    started = pacemakerhosts.parse_crm_mon(xml.format(role="Started", failed="false"))
    assert started.connected("node3") and started.dc == "node1" and started.quorum
    for role, failed in (("Starting", "false"), ("Started", "true"), ("Stopped", "false")):
        status = pacemakerhosts.parse_crm_mon(xml.format(role=role, failed=failed))
        assert status.nodes["node3"].online and not status.connected("node3")
