"""Pacemaker Remote's key on real Pacemaker 2.1.5 test hosts (tests/pacemakerhosts.py):
cluster nodes with pacemakerd, remote nodes and a guest node with pacemaker-remoted.

corokey nodes, verify and push with --profile pacemaker on a Debian-stock cluster (a
different key per node), doctor on both sides of a failed handshake, and rotate
--profile pacemaker: online, refused while a remote node is down, rolled back when the
commit fails on the remote node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List

import pytest

from tests import pacemakerhosts
from tests.faults import FaultySsh
from tests.pacemaker_guests import add_guest
from tests.testhosts import Host, Network

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.usefixtures("own_ssh_connections"),
]
KEY = pacemakerhosts.PACEMAKER_KEY_PATH


def corokey(
    net: Network, *args: str, env: Dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "corokey", *args, "-F", str(net.ssh_config)]
    return net.run_admin(argv, env={**os.environ, **(env or {})}, timeout=600)


def _src() -> str:
    import corokey

    return os.path.dirname(os.path.dirname(corokey.__file__))


def doctor(host: Host) -> Dict[str, Any]:
    argv = [sys.executable, "-m", "corokey", "doctor", "--profile", "pacemaker", "--json"]
    result = host.run(argv, check=False, env={**os.environ, "PYTHONPATH": _src()})
    assert result.stdout, result.stderr
    document: Dict[str, Any] = json.loads(result.stdout)
    document["exit"] = result.returncode
    return document


def test_debian_stock_cluster_found_verified_and_fixed(
    pacemaker_available: None, network: Network
) -> None:
    cluster = network.add_hosts(2, pacemaker=True, pacemaker_key="per-node")
    network.wait_for_pacemaker(cluster)
    (remote,) = network.add_remote_hosts(1, key=os.urandom(4096), wait=False)
    # Which nodes: from node1's CIB, the remote node offline (it cannot connect).
    listed = corokey(network, "nodes", "--profile", "pacemaker", "--cib-from", "node1", "--json")
    assert listed.returncode == 0, listed.stderr
    nodes = {n["name"]: n for n in json.loads(listed.stdout)["nodes"]}
    assert [(n, nodes[n]["kind"]) for n in nodes] == [
        ("node1", "cluster"),
        ("node2", "cluster"),
        (remote.name, "remote"),
    ]
    assert nodes["node1"]["state"] == "online"
    assert nodes[remote.name]["address"] == remote.address
    # The CIB the cluster holds, read by corokey as crm_mon reads it.
    from corokey.cib import nodes_from_cib

    cib = cluster[0].run(["cibadmin", "-Q"]).stdout
    assert sorted(n.name for n in nodes_from_cib(cib)) == sorted(nodes)
    # verify: every node a different key, said plainly, and the push that makes them agree.
    checked = corokey(network, "verify", "--profile", "pacemaker", "--cib-from", "node1")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "every node holds a different key" in checked.stdout
    fix = f"corokey push --profile pacemaker --from node1 --nodes node2,{remote.name}"
    assert f"fix: {fix}" in checked.stdout
    # Debian's root:haclient 0640 is not a finding.
    report = json.loads(
        corokey(network, "verify", "--profile", "pacemaker", "--cib-from", "node1", "--json").stdout
    )
    assert all(n["findings"] == [] for n in report["nodes"]), report["nodes"]
    # doctor on the cluster node and on the remote node: the handshake failures, each side
    # naming its peer.
    cluster[0].wait_until(
        lambda: "Disconnecting after TLS handshake" in "".join(h.pacemaker_log() for h in cluster),
        "a failed handshake in a cluster node's log",
    )
    dc = next(h for h in cluster if "Disconnecting after TLS handshake" in h.pacemaker_log())
    seen = doctor(dc)
    assert seen["exit"] == 2
    assert f"{remote.address}:3121" in seen["handshake_failures_by_peer"]
    on_remote = doctor(remote)
    assert on_remote["role"] == "remote"
    assert dc.address in on_remote["handshake_failures_by_peer"], on_remote
    # The fix, then every node agrees and the remote node connects.
    fixed = corokey(network, *fix.split()[1:])
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    again = corokey(network, "verify", "--profile", "pacemaker", "--cib-from", "node1")
    assert again.returncode == 0, again.stdout
    # No crm_resource --cleanup needed: the cluster keeps retrying the connection.
    network.wait_for_pacemaker()


def test_guest_node_is_listed_and_verified(pacemaker_available: None, network: Network) -> None:
    cluster = network.add_hosts(2, pacemaker=True)
    network.wait_for_pacemaker(cluster)
    guest = add_guest(network, cluster, cluster[0].read_key(KEY))
    network.wait_for_pacemaker([*cluster, guest])
    listed = corokey(network, "nodes", "--profile", "pacemaker", "--cib-from", "node1", "--json")
    nodes = {n["name"]: n for n in json.loads(listed.stdout)["nodes"]}
    assert nodes[guest.name]["kind"] == "guest"
    assert nodes[guest.name]["resource"] == f"vm-{guest.name}"
    assert nodes[guest.name]["state"] == "online"
    checked = corokey(network, "verify", "--profile", "pacemaker", "--cib-from", "node1")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{guest.name} (guest)" in checked.stdout


def maintenance_mode(host: Host) -> bool:
    argv = ["crm_attribute", "--type", "crm_config", "--name", "maintenance-mode", "--query"]
    return host.run([*argv, "--quiet"], check=False).stdout.strip() == "true"


def _keys(hosts: List[Host]) -> Dict[str, bytes]:
    return {h.name: h.read_key(KEY) for h in hosts}


def _owner_and_mode(host: Host) -> tuple[int, int, int]:
    info = host.path(KEY).stat()
    return info.st_uid, info.st_gid, info.st_mode & 0o7777


def corokey_on(host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "corokey", *args]
    return host.run(argv, check=False, env={**os.environ, "PYTHONPATH": _src()})


def _a_node_without_hacluster_gets_a_key_only_root_reads(
    network: Network, bare: Host, hosts: List[Host]
) -> None:
    """push, verify, check, install, generate and doctor with the pacemaker profile on a
    remote node that has no user hacluster and no group haclient: root:root 0400 there,
    said, and accepted (pacemaker-remoted reads it as root)."""
    names = ",".join(h.name for h in hosts)
    before = _keys(hosts)
    argv = ["push", "--profile", "pacemaker", "--from", "node1", "--cib-from", "node1"]
    pushed = corokey(network, *argv, "--json")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    report = json.loads(pushed.stdout)
    assert report["owners"] == {bare.name: "root:root"}
    assert report["nodes"][bare.name]["state"] == "committed"  # was 0600: now 0400
    assert _owner_and_mode(bare) == (0, 0, 0o400) and _keys(hosts) == before
    said = corokey(network, *argv)
    assert f"{bare.name}: no user hacluster there, so the key is root:root 0400" in said.stdout
    # verify without the CIB (no roles known) and with it: no finding about its owner.
    for where in (["--nodes", names], ["--cib-from", "node1"]):
        checked = corokey(network, "verify", "--profile", "pacemaker", "--json", *where)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert all(n["findings"] == [] for n in json.loads(checked.stdout)["nodes"]), where
    local = corokey_on(bare, "check", "--profile", "pacemaker", "--json", KEY)
    assert local.returncode == 0 and json.loads(local.stdout)["keys"][0]["findings"] == [], (
        local.stdout
    )
    installed = corokey_on(bare, "install", "--profile", "pacemaker", "--json", KEY, KEY)
    assert installed.returncode == 0, installed.stderr
    assert json.loads(installed.stdout)["owner"] == "root:root"
    made = corokey_on(bare, "generate", "--profile", "pacemaker", "--json", "/run/new/authkey")
    assert made.returncode == 0 and json.loads(made.stdout)["owner"] == "root:root", made.stderr
    assert doctor(bare)["findings"] == []


def test_rotate_online_then_a_new_connection_works(
    pacemaker_available: None, network: Network
) -> None:
    """Two remote nodes, the second without user hacluster or group haclient (built without
    Pacemaker's packages): push, verify, check and install give it root:root 0400, and the
    rotation includes it."""
    cluster = network.add_hosts(2, pacemaker=True)
    network.wait_for_pacemaker(cluster)
    (remote,) = network.add_remote_hosts(1, wait=False)
    (bare,) = network.add_remote_hosts(1, pacemaker_accounts=False)
    _a_node_without_hacluster_gets_a_key_only_root_reads(network, bare, [*cluster, remote, bare])
    old = _keys([*cluster, remote, bare])
    marks = {h.name: len(h.pacemaker_log()) for h in cluster}
    done = corokey(
        network, "rotate", "--profile", "pacemaker", "--cib-from", "node1", "--yes", "--json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "rotated"
    assert report["window_seconds"] >= 61 and report["maintenance_mode_set"] is True
    assert report["offline_seconds"] == {remote.name: 0.0, bare.name: 0.0}
    assert report["owners"] == {bare.name: "root:root"}
    new = _keys([*cluster, remote, bare])
    assert len(set(new.values())) == 1 and set(new.values()).isdisjoint(old.values())
    assert _owner_and_mode(bare) == (0, 0, 0o400)
    status = network.cluster_status()
    assert status is not None and {remote.name, bare.name} <= set(status.online())
    # No connection was attempted with a stale key: not one handshake failed.
    failed = "Disconnecting after TLS handshake"
    assert not any(failed in h.pacemaker_log()[marks[h.name] :] for h in cluster)
    assert not maintenance_mode(cluster[0])
    # A new TLS handshake with the new key: restart pacemaker-remoted on the node without
    # hacluster (it reads the root:root key as root).
    network.restart_pacemaker_remote(bare)


def test_rotate_refused_while_a_remote_node_is_down_and_rolled_back_when_its_commit_fails(
    pacemaker_available: None, network: Network
) -> None:
    cluster = network.add_hosts(2, pacemaker=True)
    network.wait_for_pacemaker(cluster)
    (remote,) = network.add_remote_hosts(1)
    old = _keys([*cluster, remote])
    # The commit's answer is lost on the remote node: its key changed, rotate believes not.
    faulty = FaultySsh(network.workdir)
    faulty.add(node=remote.name, at="from-node", line="corokey-result committed", drop=True)
    lost = corokey(
        network,
        "rotate",
        "--profile",
        "pacemaker",
        "--cib-from",
        "node1",
        "--yes",
        "--json",
        env=faulty.env(),
    )
    assert faulty.fired(0)
    assert lost.returncode == 2, lost.stdout + lost.stderr
    report = json.loads(lost.stdout)
    assert report["outcome"] == "rolled back", lost.stderr
    assert set(report["nodes"].values()) == {"old key"}
    assert _keys([*cluster, remote]) == old
    # Restored as Pacemaker can read it (.old is kept 0600: controld, as hacluster, could
    # not read a key restored with that mode and would fall back to corosync's).
    checked = corokey(network, "verify", "--profile", "pacemaker", "--cib-from", "node1")
    assert checked.returncode == 0, checked.stdout
    status = network.cluster_status()
    assert status is not None and remote.name in status.online()  # connection kept
    # The commit really fails on the remote node: its key file is a mount point, so the
    # rename over it fails (EBUSY); the cluster nodes committed and are rolled back.
    remote.run(["mount", "--bind", KEY, KEY])
    try:
        failed = corokey(
            network, "rotate", "--profile", "pacemaker", "--cib-from", "node1", "--yes", "--json"
        )
    finally:
        remote.run(["umount", KEY])
    assert failed.returncode == 2, failed.stdout + failed.stderr
    report = json.loads(failed.stdout)
    assert report["outcome"] == "rolled back", failed.stderr
    assert "error[pacemaker-rotate]" in failed.stderr and remote.name in failed.stderr
    assert _keys([*cluster, remote]) == old
    status = network.cluster_status()
    assert status is not None and remote.name in status.online()
    assert not maintenance_mode(cluster[0])
    # The remote node down: refused, nothing changed.
    remote.stop_pacemaker()
    pacemakerhosts.wait_for(
        lambda: (s := network.cluster_status()) is not None and not s.nodes[remote.name].online,
        "the remote node offline",
        90,
        lambda: "",
    )
    refused = corokey(network, "rotate", "--profile", "pacemaker", "--cib-from", "node1", "--yes")
    assert refused.returncode == 2
    assert "error[pacemaker-rotate-refused]" in refused.stderr
    assert f"{remote.name} (remote) is offline" in refused.stderr
    assert _keys([*cluster, remote]) == old


def test_a_handshake_inside_the_cache_window_fails_until_the_cache_expires(
    pacemaker_available: None, network: Network
) -> None:
    """The fact rotate's window rests on (lib/lrmd/lrmd_client.c, key_cache_expired):
    pacemaker-controld keeps the key it read for 60 s, so new connections inside that time
    use the old key although every node holds the new one, and fail; Pacemaker retries
    (about every 6.6 s here) and connects once the 60 s are over. Seen on Pacemaker 2.1.5:
    failures for about 50 s, then connected."""
    cluster = network.add_hosts(1, pacemaker=True)  # one controld: nowhere else to connect
    network.wait_for_pacemaker(cluster)
    (remote,) = network.add_remote_hosts(1)
    network.restart_pacemaker_remote(remote)  # controld has read (and cached) the key by now
    cached_by = time.monotonic()
    mark = len(cluster[0].pacemaker_log())
    new = os.urandom(4096)
    for host in [*cluster, remote]:
        host.write_key(new, KEY, mode=pacemakerhosts.DEBIAN_KEY_MODE, group="haclient")
    # A fresh pacemaker-remoted reads the new key; the controller's reconnection uses the
    # key it cached.
    network.restart_pacemaker_remote(remote, wait=False)
    failed = f"Disconnecting after TLS handshake with Pacemaker Remote server {remote.address}"
    succeeded = f"TLS connection to Pacemaker Remote server {remote.address}:3121 succeeded"

    def log() -> str:
        return cluster[0].pacemaker_log()[mark:]

    pacemakerhosts.wait_for(lambda: failed in log(), "a failed handshake", 60, log)
    assert time.monotonic() - cached_by < 60
    pacemakerhosts.wait_for(lambda: succeeded in log(), "a connection with the new key", 120, log)
    healed = time.monotonic() - cached_by
    assert 30 <= healed <= 80, healed
    assert log().split(succeeded)[0].count(failed) >= 3
    # crm_mon showed the remote node "online" while some of those attempts were pending:
    # rotate counts a node online only after STABLE_SECONDS in a row.


def test_a_reconnection_inside_rotates_window_waits_for_it_and_connects(
    pacemaker_available: None, network: Network
) -> None:
    """pacemaker-remoted restarts while rotate waits out the caches (a recovery or a move
    would do the same): in maintenance-mode the cluster does not try to reconnect inside
    the window; after it, the connection comes back with the new key."""
    cluster = network.add_hosts(2, pacemaker=True)
    network.wait_for_pacemaker(cluster)
    (remote,) = network.add_remote_hosts(1)
    network.restart_pacemaker_remote(remote)  # the caches hold the old key, freshly read
    old = remote.read_key(KEY)
    argv = [
        sys.executable,
        "-m",
        "corokey",
        "rotate",
        "--profile",
        "pacemaker",
        "--yes",
        "--json",
        "--cib-from",
        "node1",
        "-F",
        str(network.ssh_config),
    ]
    process = network.popen_admin(argv, env=dict(os.environ))
    pacemakerhosts.wait_for(lambda: remote.read_key(KEY) != old, "the commit", 120, lambda: "")
    marks = {h.name: len(h.pacemaker_log()) for h in cluster}
    remote.stop_pacemaker()
    remote.start_pacemaker()
    stdout, stderr = process.communicate(timeout=400)
    assert process.returncode == 0, stdout.decode() + stderr.decode()
    report = json.loads(stdout)
    assert report["outcome"] == "rotated"
    assert report["offline_seconds"][remote.name] > 0  # it restarted: seen offline, then back
    status = network.cluster_status()
    assert status is not None and remote.name in status.online()
    # No connection was attempted with a stale key: not one handshake failed.
    failed = "Disconnecting after TLS handshake"
    assert not any(failed in h.pacemaker_log()[marks[h.name] :] for h in cluster)


def test_a_remote_node_stopped_on_purpose_is_refused_unless_left_out(
    pacemaker_available: None, network: Network
) -> None:
    cluster = network.add_hosts(2, pacemaker=True)
    network.wait_for_pacemaker(cluster)
    up, parked = network.add_remote_hosts(2)
    cluster[0].run(
        ["crm_resource", "-r", parked.name, "--meta", "-p", "target-role", "-v", "Stopped"]
    )
    pacemakerhosts.wait_for(
        lambda: (s := network.cluster_status()) is not None and not s.nodes[parked.name].online,
        "the parked remote node offline",
        60,
        lambda: "",
    )
    old = parked.read_key(KEY)
    argv = ["rotate", "--profile", "pacemaker", "--cib-from", "node1", "--yes"]
    refused = corokey(network, *argv)
    assert refused.returncode == 2
    assert f"{parked.name} (remote) is stopped on purpose" in refused.stderr
    assert f"--leave-out {parked.name}" in refused.stderr
    done = corokey(network, *argv, "--json", "--leave-out", parked.name)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "rotated" and report["left_out"] == [parked.name]
    assert parked.name not in report["nodes"]
    assert parked.read_key(KEY) == old  # left alone: it gets the key before it starts
    assert up.read_key(KEY) == cluster[0].read_key(KEY) != old
