"""corokey rotate --restart on real clusters: the whole cluster stops, the key changes
everywhere, the cluster forms again; or the old key comes back everywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import List, Optional

import pytest

from tests import corosync2
from tests.cluster.test_rotate import rotate_argv, settled
from tests.faults import FaultySsh, shim, stall_directory_sync
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


# ---------------------------------------------------------------- answers lost, slow stops


@pytest.mark.parametrize("version", [None, "2.4.6"])
def test_lost_commit_answers_after_the_stop_start_the_cluster_on_its_old_key(
    network: Network, version: Optional[str]
) -> None:
    # Every node renames and its answer is lost, with the cluster stopped. Today's code said
    # "nothing was changed" and left the cluster stopped with the new key in every file.
    hosts = _hosts(network, version)
    old = hosts[0].read_key()
    faulty = FaultySsh(network.workdir).add(
        at="from-node", line="corokey-result committed", drop=True
    )
    argv = rotate_argv(network, hosts, "--restart", "--stop-command", STOP)
    result = network.run_admin(
        [*argv, "--start-command", START, "--form-timeout", "30"], env=faulty.env(), timeout=240
    )
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["result"] == "rolled-back", report
    assert [h.read_key() for h in hosts] == [old] * 3
    network.wait_for_membership()


def test_a_stop_that_outlasts_the_step_time_limit_is_waited_for(network: Network) -> None:
    # A stop taking longer than --timeout (a pacemaker stop moving resources): the stop
    # and start commands have a limit of their own. Today the step's limit killed the
    # local ssh while the node went on stopping.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    argv = rotate_argv(network, hosts, "--restart", "--stop-command", f"sleep 8; {STOP}")
    result = network.run_admin(
        [*argv, "--start-command", START, "--timeout", "4"], env=dict(os.environ), timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["result"] == "rotated"
    keys = {h.read_key() for h in hosts}
    assert len(keys) == 1 and old not in keys
    network.wait_for_membership()


def test_a_stop_that_leaves_corosync_running_commits_nothing(network: Network) -> None:
    # "Stopped" is confirmed (corosync no longer answers) before any commit.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    argv = rotate_argv(network, hosts, "--restart", "--stop-command", "true")
    result = network.run_admin(
        [*argv, "--start-command", START],  # started only where corosync is gone
        env=dict(os.environ),
        timeout=240,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "still answers" in result.stderr, result.stderr
    assert [h.read_key() for h in hosts] == [old] * 3
    network.wait_for_membership()


#: systemctl on a test host (no systemd): corosync as the tests run it, pacemaker a flag.
SYSTEMCTL = f"""echo "$*" >> /run/systemctl.log
case "$*" in
  "is-active --quiet pacemaker") [ -e /run/pacemaker.active ] ;;
  "is-enabled --quiet pacemaker") exit 1 ;;
  "stop pacemaker") rm -f /run/pacemaker.active ;;
  "start pacemaker") touch /run/pacemaker.active ;;
  "stop corosync") {STOP} ;;
  "start corosync") {START} ;;
  *) exit 1 ;;
esac
"""


def test_pacemaker_starts_again_exactly_where_it_ran(network: Network) -> None:
    # Started with `pcs cluster start` (not enabled) on node1 and node2, not on node3.
    # Today's default start command started it only where it is enabled: nowhere.
    hosts = settled(network, 3)
    for host in hosts:
        shim(host, "systemctl", SYSTEMCTL)
    for host in hosts[:2]:
        host.path("/run/pacemaker.active").write_text("")
    result = network.run_admin(
        rotate_argv(network, hosts, "--restart"), env=dict(os.environ), timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [h.path("/run/pacemaker.active").exists() for h in hosts] == [True, True, False]
    log = hosts[2].path("/run/systemctl.log").read_text()
    assert "start corosync" in log and "start pacemaker" not in log
    network.wait_for_membership()


def test_an_interrupt_says_where_each_node_stands(network: Network) -> None:
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    argv = rotate_argv(network, hosts, "--restart", "--stop-command", f"{STOP}; sleep 30")
    process = network.popen_admin([*argv, "--start-command", START], env=dict(os.environ))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(h.members() for h in hosts):
        time.sleep(0.2)
    process.send_signal(signal.SIGHUP)  # a closed terminal: handled as Ctrl-C
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout.decode() + stderr.decode()
    report = json.loads(stdout)
    assert report["interrupted"], report
    for host in hosts:
        assert "holds the old key" in report["nodes"][host.name], report
        assert "corosync does not answer" in report["nodes"][host.name], report
    assert [h.read_key() for h in hosts] == [old] * 3
    for host in hosts:
        host.run(["sh", "-c", START])
    network.wait_for_membership()


def test_a_directory_sync_stalling_past_the_timeout_ends_on_one_key(network: Network) -> None:
    # The review's scenario under --restart: node2's sync after its rename stalls past
    # --timeout with the cluster stopped; its session holds the directory's lock meanwhile.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    stall_directory_sync(hosts[1], 15)
    argv = rotate_argv(network, hosts, "--restart", "--stop-command", STOP, "--timeout", "5")
    result = network.run_admin(
        [*argv, "--start-command", START, "--form-timeout", "30"], env=dict(os.environ), timeout=240
    )
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["result"] == "rolled-back", report
    assert [h.read_key() for h in hosts] == [old] * 3
    network.wait_for_membership()


def test_a_stop_whose_session_is_cut_is_waited_for_before_the_start(network: Network) -> None:
    # node2's stop session is cut at once while node2 goes on stopping (10 s, the others
    # 1 s): nothing is committed, and the start sent to node2 must wait for that stop, or
    # node2 would end stopped after the report said the cluster was whole.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    hosts[1].path("/run/slow-stop").write_text("")
    faulty = FaultySsh(network.workdir)
    faulty.add(node="node2", script="what=stop", at="from-node", line="--corokey--", drop=True)
    stop = f"if [ -e /run/slow-stop ]; then rm /run/slow-stop; sleep 10; fi; sleep 1; {STOP}"
    argv = rotate_argv(network, hosts, "--restart", "--stop-command", stop)
    result = network.run_admin(
        [*argv, "--start-command", START, "--form-timeout", "30"], env=faulty.env(), timeout=240
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert json.loads(result.stdout)["result"] == "rolled-back", result.stdout
    assert [h.read_key() for h in hosts] == [old] * 3
    time.sleep(12)  # node2's own stop is long over
    assert all(h.members() == {1, 2, 3} for h in hosts), {h.name: h.members() for h in hosts}
