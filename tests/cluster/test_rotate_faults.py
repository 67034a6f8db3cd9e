"""corokey rotate when answers are lost: the end is decided from what the nodes hold.

Faults come from outside corokey (tests/faults.py): an ssh relay that cuts or holds a
session at a protocol line, and node-side shims for a node's own steps."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import List

import pytest

from corokey.key import generate_key
from tests.cluster.test_rotate import rotate_argv, settled
from tests.faults import FaultySsh, shim, stall_directory_sync
from tests.testhosts import Host, Network

pytestmark = [pytest.mark.usefixtures("own_ssh_connections"), pytest.mark.slow]

COMMITTED = "corokey-result committed"
#: The restore's copy of .old fails on a host where /run/fail-restore exists.
FAILING_RESTORE = (
    'case "$*" in *.corokey-restore-*)\n'
    '  if [ -e /run/fail-restore ]; then echo "cp: simulated I/O error" >&2; exit 1; fi ;;\n'
    'esac\nexec /usr/bin/cp "$@"\n'
)


def whole(network: Network, hosts: List[Host], seconds: float = 8) -> None:
    """The membership is whole now and stays whole (a node on another key drops out
    within a few seconds of a reload)."""
    network.wait_for_membership()
    time.sleep(seconds)
    assert all(h.members() == {1, 2, 3} for h in hosts), {h.name: h.members() for h in hosts}


def run_finish(network: Network, command: str) -> None:
    command = command.replace("corokey ", f"{shlex.quote(sys.executable)} -m corokey ", 1)
    result = network.run_admin(["sh", "-c", command])
    assert result.returncode == 0, result.stdout + result.stderr


def test_commit_answers_lost_everywhere_are_rolled_back(network: Network) -> None:
    # Every node renames and its answer is lost: today's code said "nothing was changed"
    # with the new key in every file under a corosync running the old one.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    faulty = FaultySsh(network.workdir).add(at="from-node", line=COMMITTED, drop=True)
    result = network.run_admin(rotate_argv(network, hosts), env=faulty.env())
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["result"] == "rolled-back", report
    assert [h.read_key() for h in hosts] == [old] * 3
    whole(network, hosts)


def test_a_directory_sync_stalling_past_the_timeout_ends_on_one_key(network: Network) -> None:
    # The review's scenario: node2's sync of the directory after its rename stalls past
    # --timeout (a slow disk): its answer is lost, the rename done, and its session holds
    # the directory's lock until the disk answers. Today: node2 split off alone.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    stall_directory_sync(hosts[1], 15)
    result = network.run_admin(rotate_argv(network, hosts, "--timeout", "5"), timeout=240)
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["result"] == "rolled-back", report
    assert [h.read_key() for h in hosts] == [old] * 3
    whole(network, hosts)


def test_a_failed_restore_before_any_reload_is_not_followed_by_one(network: Network) -> None:
    # node2's commit answer is lost (rollback), node3's restore fails. No -R had run, so
    # the rollback must not run one: it would load node3's new key there and split it off.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    shim(hosts[2], "cp", FAILING_RESTORE)
    hosts[2].path("/run/fail-restore").write_text("")
    faulty = FaultySsh(network.workdir).add(node="node2", at="from-node", line=COMMITTED, drop=True)
    result = network.run_admin(rotate_argv(network, hosts), env=faulty.env())
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["result"] == "rollback-incomplete", report
    assert "new key" in report["nodes"]["node3"], report
    assert [h.read_key() == old for h in hosts] == [True, True, False]
    whole(network, hosts)
    # The command the report names finishes it (nothing else needed: no -R had run).
    hosts[2].path("/run/fail-restore").unlink()
    run_finish(network, report["finish"]["node3"])
    assert [h.read_key() for h in hosts] == [old] * 3
    whole(network, hosts, seconds=0)


def test_a_failed_restore_after_the_reload_is_not_followed_by_another(network: Network) -> None:
    # -R ran but its answer was lost (rollback); node3's restore fails. A -R now would
    # switch node1 and node2 back to the old key and leave node3 alone on the new one.
    hosts = settled(network, 3)
    shim(hosts[2], "cp", FAILING_RESTORE)
    hosts[2].path("/run/fail-restore").write_text("")
    faulty = FaultySsh(network.workdir)
    faulty.add(node="node1", at="from-node", line="corokey-result reloaded", drop=True)
    result = network.run_admin(rotate_argv(network, hosts), env=faulty.env())
    assert result.returncode == 2, result.stdout + result.stderr
    whole(network, hosts)
    report = json.loads(result.stdout)
    assert report["result"] == "rollback-incomplete", report
    assert "node3" in report["finish"], report
    hosts[2].path("/run/fail-restore").unlink()
    run_finish(network, report["finish"]["node3"])
    time.sleep(4)
    assert len({h.read_key() for h in hosts}) == 1
    whole(network, hosts)


def test_ctrl_c_reaches_corokey_and_not_a_commit_in_flight(network: Network) -> None:
    # A terminal's Ctrl-C goes to the whole foreground process group. node2's commit is in
    # flight (the relay holds it 3 s): its ssh must finish it, corokey then rolls back.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    faulty = FaultySsh(network.workdir).add(node="node2", at="to-node", line="commit", stall=3)
    process = subprocess.Popen(
        network.admin_command(rotate_argv(network, hosts)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=faulty.env(),
        start_new_session=True,  # its own group, as a shell's foreground job
        # and SIGINT not ignored, whatever this run inherited (a background job's is)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and hosts[0].read_key() == old:
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout.decode() + stderr.decode()
    assert hosts[1].path("/etc/corosync/authkey.old").read_bytes() == old, "node2 committed"
    assert [h.read_key() for h in hosts] == [old] * 3
    whole(network, hosts, seconds=0)


def test_push_reload_to_some_running_members_is_refused(network: Network) -> None:
    # -R reloads every member: node3, not named, would load its old key file and split off.
    hosts = settled(network, 3)
    keys = [h.read_key() for h in hosts]
    new = network.workdir / "newkey"
    new.write_bytes(generate_key())
    new.chmod(0o400)
    argv = [sys.executable, "-m", "corokey", "push", str(new), "--reload"]
    argv += ["--nodes", "node1,node2", "-F", str(network.ssh_config)]
    result = network.run_admin(argv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error[reload-some-members]" in result.stderr, result.stderr
    assert [h.read_key() for h in hosts] == keys
    whole(network, hosts, seconds=4)


def test_an_interrupt_during_the_rollback_gives_no_advice_that_splits(network: Network) -> None:
    # -R ran (its answer lost): rollback. SIGTERM while node2's restore is held. Today's
    # code called it "before corosync-cfgtool -R" and advised a -R with node2's file still
    # on the new key. The advice now: the old key everywhere first, then one -R.
    hosts = settled(network, 3)
    faulty = FaultySsh(network.workdir)
    faulty.add(node="node1", at="from-node", line="corokey-result reloaded", drop=True)
    faulty.add(node="node2", at="start", script=".corokey-restore-", stall=20)
    process = network.popen_admin(rotate_argv(network, hosts), env=faulty.env())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not faulty.fired(1):
        time.sleep(0.1)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    text = stderr.decode()
    assert process.returncode == 130, stdout.decode() + text
    assert "during the rollback" in text and "before corosync-cfgtool -R" not in text, text
    assert "once every node holds it" in text, text
    assert json.loads(stdout)["interrupted"]


def test_a_node_lost_after_its_rename_is_named_with_the_command_that_finishes_it(
    network: Network,
) -> None:
    # node2 renames, its answer is lost, and from then on it cannot be reached. The rest is
    # rolled back without a -R (none had run), and the report names node2, what its file
    # holds as far as known, and the command that finishes it.
    hosts = settled(network, 3)
    old = hosts[0].read_key()
    faulty = FaultySsh(network.workdir)
    faulty.add(node="node2", at="from-node", line=COMMITTED, drop=True)  # rule 0
    faulty.add(node="node2", at="start", drop=True, after=0)  # node2 gone from then on
    result = network.run_admin(rotate_argv(network, hosts), env=faulty.env())
    assert result.returncode == 2, result.stdout + result.stderr
    whole(network, hosts)
    report = json.loads(result.stdout)
    assert report["result"] == "rollback-incomplete", report
    assert "could not be read" in report["nodes"]["node2"], report
    assert [hosts[0].read_key(), hosts[2].read_key()] == [old, old]
    faulty.clear()  # node2 is back
    command = report["finish"]["node2"]
    assert command.startswith("corokey push --from node1 --nodes node2 -F "), command
    run_finish(network, command)
    assert [h.read_key() for h in hosts] == [old] * 3
    whole(network, hosts, seconds=0)
