"""corokey rotate --restart on real clusters: the whole cluster stops, the key changes
everywhere, the cluster forms again; or the old key comes back everywhere."""

from __future__ import annotations

import json
import os
import subprocess
from typing import List, Optional

import pytest

from tests import corosync2
from tests.cluster.test_rotate import rotate_argv, settled
from tests.testhosts import Host, Network

pytestmark = [pytest.mark.usefixtures("own_ssh_connections"), pytest.mark.slow]

#: The test hosts have no systemd: corosync itself, as a daemon in the host. The one the
#: harness started stays a zombie until the harness reaps it: "stopped" is gone or zombie.
STOP = (
    'p=$(cat /run/corosync.pid) && kill "$p" && '
    "while s=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null) && [ \"$s\" != Z ]; do sleep 0.1; done"
)
START = "corosync </dev/null >/dev/null 2>&1"


def run_restart(net: Network, hosts: List[Host], *extra: str) -> subprocess.CompletedProcess[str]:
    argv = rotate_argv(net, hosts, "--restart", "--stop-command", STOP, "--start-command", START)
    return net.run_admin([*argv, *extra], env=dict(os.environ), timeout=240)


def test_restart_rotation_changes_every_key_and_the_cluster_forms_again(
    network: Network,
) -> None:
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    result = run_restart(network, hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["result"] == "rotated" and report["downtime_seconds"] > 0
    keys = {h.read_key() for h in hosts}
    assert len(keys) == 1 and old not in keys
    assert all(h.path("/etc/corosync/authkey.old").read_bytes() == old for h in hosts)
    network.wait_for_membership()
    assert all(h.members() == {1, 2, 3} for h in hosts)


def _hosts(network: Network, version: Optional[str]) -> List[Host]:
    """Three settled hosts: Debian's corosync 3.x, or a 2.x build."""
    if version is None:
        return settled(network, 3)
    corosync2.build_or_skip(version)
    hosts = network.add_hosts(3, corosync_version=version)
    network.wait_for_membership()
    network.wait_for_stable_ring(seconds=3)
    return hosts


@pytest.mark.parametrize("version", [None, "2.4.6"])
def test_a_node_that_cannot_start_brings_the_old_key_back_everywhere(
    network: Network, version: Optional[str]
) -> None:
    hosts = _hosts(network, version)
    old = hosts[0].read_key()
    # node3's first start fails (as a node with a broken unit would); its second works.
    hosts[2].path("/run/fail-once").write_text("")
    start = f"if [ -e /run/fail-once ]; then rm /run/fail-once; exit 1; fi; {START}"
    argv = rotate_argv(network, hosts, "--restart", "--stop-command", STOP)
    result = network.run_admin(
        [*argv, "--start-command", start, "--form-timeout", "20"],
        env=dict(os.environ),
        timeout=240,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["result"] == "rolled-back", report
    assert "node3" in " ".join(report["steps"])
    assert [h.read_key() for h in hosts] == [old] * 3
    network.wait_for_membership()


def test_a_failing_stop_changes_nothing_and_restarts_what_stopped(
    network: Network,
) -> None:
    # The stop command fails on every node (after stopping): nothing is committed, and
    # whoever stopped starts again with the old key.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    argv = rotate_argv(network, hosts, "--restart", "--start-command", START)
    result = network.run_admin(
        [*argv, "--stop-command", f'[ "$(hostname)" = never ] || {STOP}; exit 3'],
        env=dict(os.environ),
        timeout=240,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "stop command failed" in result.stderr and "nothing" in result.stderr
    assert [h.read_key() for h in hosts] == [old] * 3
    network.wait_for_membership()
