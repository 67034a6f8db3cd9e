"""Pacemaker 2.1.5 reading corosync's key (issue 16 part 5), on real test hosts: a
cluster of corosync + pacemakerd and a node running pacemaker-remoted.

Where Pacemaker has no key of its own, pacemaker-controld (user hacluster) falls back to
/etc/corosync/authkey, which must then be root:haclient 0440, and the remote node holds
the same bytes: check, doctor and verify say so in a note (not the mode-readable error
whose advice, 0400, cuts the remote node off), and rotate refuses with its own reference.
With a Pacemaker key of its own, corosync's key is corosync's alone: 0400, and rotated
while the remote connection stays up.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests import pacemakerhosts
from tests.testhosts import Host, Network

KEY = "/etc/corosync/authkey"
pytestmark = pytest.mark.usefixtures("own_ssh_connections")


def corokey_on(host: Host, *argv: str) -> tuple[int, Dict[str, Any]]:
    """corokey run on the host itself (check and doctor look at the local node)."""
    result = host.run([sys.executable, "-m", "corokey", *argv], check=False, timeout=60)
    try:
        return result.returncode, json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"not JSON: {result.stdout!r} {result.stderr!r}") from None


def corokey_admin(net: Network, hosts: List[Host], command: str, *extra: str) -> Any:
    argv = [sys.executable, "-m", "corokey", command, "-F", str(net.ssh_config)]
    argv += ["--nodes", ",".join(h.name for h in hosts), *extra]
    return net.run_admin(argv, env=dict(os.environ))


def references(findings: List[Dict[str, Any]]) -> List[str]:
    return [f["reference"] for f in findings]


def test_a_remote_node_on_corosyncs_key_is_never_cut_off(
    pacemaker_available: None, network: Network
) -> None:
    cluster = network.add_hosts(3, pacemaker=True, pacemaker_key="corosync")
    network.wait_for_membership()
    (remote,) = network.add_remote_hosts(1)
    # The fact corokey relies on: no /etc/pacemaker/authkey on the cluster nodes, and the
    # remote node, holding corosync's key, is online.
    assert not cluster[0].path(pacemakerhosts.PACEMAKER_KEY_PATH).exists()
    assert remote.path(pacemakerhosts.PACEMAKER_KEY_PATH).read_bytes() == cluster[0].read_key()
    assert network.wait_for_pacemaker().nodes[remote.name].online
    before = {h.name: h.read_key() for h in cluster}

    code, report = corokey_on(cluster[0], "check", "--json", KEY)
    assert code == 0, report
    (key,) = report["keys"]
    assert references(key["findings"]) == ["pacemaker-remote-key"], report
    note = key["findings"][0]
    assert note["severity"] == "note"
    assert "Pacemaker 2.1.5" in note["message"] and "does not exist" in note["message"]
    assert "its own key on every cluster and remote node" in note["fix"]

    _, diagnosis = corokey_on(cluster[0], "doctor", "--json")
    found = references(diagnosis["findings"])
    assert "pacemaker-remote-key" in found and "mode-readable" not in found, diagnosis
    assert not any(
        "0400" in (f["fix"] or "") and "chmod" in (f["fix"] or "")
        for f in diagnosis["findings"]
        if f["reference"] != "pacemaker-remote-key"
    )

    verify = corokey_admin(network, cluster, "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for node in json.loads(verify.stdout)["nodes"]:
        assert references(node["findings"]) == ["pacemaker-remote-key"], node

    rotate = corokey_admin(network, cluster, "rotate", "--yes")
    assert rotate.returncode != 0
    assert "error[pacemaker-remote-key]" in rotate.stderr, rotate.stderr
    assert "node1, node2, node3" in rotate.stderr
    assert "key-unsound" not in rotate.stderr
    assert {h.name: h.read_key() for h in cluster} == before
    shared_and_readable(cluster)

    # push: the same key stays root:haclient 0440 (the profile's 0400 would cut the
    # remote node off) ...
    push = corokey_admin(network, cluster, "push", "--from", "node1", "--json")
    assert push.returncode == 0, push.stdout + push.stderr
    report = json.loads(push.stdout)
    assert {n["state"] for n in report["nodes"].values()} == {"unchanged"}, report
    assert report["pacemaker_nodes"] == ["node2", "node3"]  # node1 is the source
    shared_and_readable(cluster)
    # ... a new key is refused before anything is staged ...
    new_key = network.workdir / "new.key"
    new_key.write_bytes(os.urandom(256))
    new_key.chmod(0o600)
    push = corokey_admin(network, cluster, "push", str(new_key))
    assert push.returncode == 2 and "error[pacemaker-remote-key]" in push.stderr, push.stderr
    assert {h.name: h.read_key() for h in cluster} == before
    # ... and an odd node is repaired from one that holds the cluster's key.
    cluster[2].write_key(os.urandom(256), mode=0o440, group="haclient")
    push = corokey_admin(network, [cluster[2]], "push", "--from", "node1")
    assert push.returncode == 0, push.stdout + push.stderr
    assert "kept root:haclient 0440" in push.stdout
    assert {h.name: h.read_key() for h in cluster} == before
    shared_and_readable(cluster)

    # corokey install on the node (what check advises for a hard-linked key): the same key
    # keeps Pacemaker's permission, another one is refused.
    for data, code in ((before["node1"], 0), (os.urandom(256), 2)):
        source = cluster[0].path("/run/source.key")
        source.write_bytes(data)
        source.chmod(0o600)
        result = cluster[0].run(
            [sys.executable, "-m", "corokey", "install", "/run/source.key", KEY], check=False
        )
        assert result.returncode == code, result.stdout + result.stderr
        if code:
            assert "error[pacemaker-remote-key]" in result.stderr, result.stderr
    generate = cluster[0].run(
        [sys.executable, "-m", "corokey", "generate", "--force", KEY], check=False
    )
    assert generate.returncode == 2, generate.stdout + generate.stderr
    assert "error[pacemaker-remote-key]" in generate.stderr, generate.stderr
    assert {h.name: h.read_key() for h in cluster} == before
    shared_and_readable(cluster)

    # The Ansible modules, as Ansible runs them on a node.
    info = ansible_module(cluster[0], "authkey_info", {})
    assert "pacemaker-remote-key" in json.dumps(info) and "mode-readable" not in json.dumps(info)
    same = ansible_module(cluster[0], "authkey", {"content_b64": b64(before["node1"])})
    assert same.get("failed") is not True and same["changed"] is False, same
    new = ansible_module(cluster[0], "authkey", {"content_b64": b64(os.urandom(256))})
    assert new.get("failed") is True and "Pacemaker Remote" in new["msg"], new
    assert {h.name: h.read_key() for h in cluster} == before
    shared_and_readable(cluster)

    # The remote connection stayed up all along.
    status = network.cluster_status()
    assert status is not None and status.nodes[remote.name].online


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def ansible_module(host: Host, name: str, args: Dict[str, Any]) -> Dict[str, Any]:
    """A module of the collection run on ``host`` as Ansible runs it: a process, arguments
    as JSON on stdin."""
    root = str(Path(__file__).resolve().parents[2])
    module = f"ansible_collections.corokey.corosync.plugins.modules.{name}"
    script = (
        f"import sys, runpy; sys.path.insert(0, {root!r}); "
        f"runpy.run_module({module!r}, run_name='__main__')"
    )
    params = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": False}}
    result = host.run(
        [sys.executable, "-c", script], input=json.dumps(params).encode(), check=False
    )
    try:
        return json.loads(result.stdout)  # type: ignore[no-any-return]
    except ValueError:
        raise AssertionError(f"{name}: {result.stdout!r} {result.stderr!r}") from None


def shared_and_readable(cluster: List[Host]) -> None:
    for host in cluster:
        info = host.path(KEY).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o440, 0, _haclient())


def test_with_its_own_key_corosyncs_key_rotates_and_the_remote_node_reconnects(
    pacemaker_available: None, network: Network
) -> None:
    cluster = network.add_hosts(3, pacemaker=True)  # one shared /etc/pacemaker/authkey
    network.wait_for_membership()
    (remote,) = network.add_remote_hosts(1)
    pacemaker_key = remote.path(pacemakerhosts.PACEMAKER_KEY_PATH).read_bytes()
    assert pacemaker_key != cluster[0].read_key()

    code, report = corokey_on(cluster[0], "check", "--json", KEY)
    assert code == 0 and report["keys"][0]["findings"] == [], report
    # corosync's key readable by haclient while Pacemaker has its own: the error stands.
    cluster[1].write_key(cluster[1].read_key(), mode=0o440, group="haclient")
    code, report = corokey_on(cluster[1], "check", "--json", KEY)
    assert code == 2, report
    assert references(report["keys"][0]["findings"]) == ["mode-readable", "group"], report
    cluster[1].write_key(cluster[1].read_key(), mode=0o400)

    network.wait_for_stable_ring(seconds=5)
    rotate = corokey_admin(network, cluster, "rotate", "--yes", "--json")
    assert rotate.returncode == 0, rotate.stdout + rotate.stderr
    assert json.loads(rotate.stdout)["result"] == "rotated"
    assert len({h.read_key() for h in cluster}) == 1
    status = network.cluster_status()
    assert status is not None and status.nodes[remote.name].online
    # A new TLS handshake after the rotation: Pacemaker's key was never touched.
    network.restart_pacemaker_remote(remote)
    assert remote.path(pacemakerhosts.PACEMAKER_KEY_PATH).read_bytes() == pacemaker_key


def _haclient() -> int:
    import grp

    return grp.getgrnam("haclient").gr_gid


def test_pcmk_authkey_location_is_read_as_pacemaker_reads_it(
    pacemaker_available: None, network: Network
) -> None:
    """PCMK_authkey_location from /etc/default/pacemaker: Pacemaker 2.1.5 uses the key
    there (the remote node has no other), so corosync's key is corosync's alone; an empty
    file there sends Pacemaker down the list, to corosync's key."""
    cluster = network.add_hosts(2, pacemaker=True, pacemaker_key="corosync")
    network.wait_for_pacemaker()
    location = "/etc/pacemaker/remote.key"
    remote_key = os.urandom(4096)
    for host in cluster:
        host.stop_pacemaker()
        pacemakerhosts.set_defaults(host, PCMK_authkey_location=f'"{location}"')
        host.write_key(remote_key, location, mode=0o640, group="haclient")
        host.start_pacemaker()
    network.wait_for_pacemaker()
    environment = {"PCMK_authkey_location": location}
    (remote,) = network.add_remote_hosts(1, remote_key, location, environment=environment)
    assert not remote.path(pacemakerhosts.PACEMAKER_KEY_PATH).exists()
    assert not remote.path(KEY).exists()  # the only key it has is at the location

    # Pacemaker has its own key: corosync's key readable by haclient is the error again.
    code, report = corokey_on(cluster[0], "check", "--json", KEY)
    assert code == 2, report
    assert references(report["keys"][0]["findings"]) == ["mode-readable", "group"], report
    # An empty key at PCMK_authkey_location: Pacemaker falls back to corosync's.
    cluster[0].write_key(b"", location, mode=0o640, group="haclient")
    code, report = corokey_on(cluster[0], "check", "--json", KEY)
    assert code == 0, report
    (note,) = report["keys"][0]["findings"]
    assert note["reference"] == "pacemaker-remote-key"
    assert f"{location} is empty" in note["message"], note
    # The same facts read over ssh (the node script reads the quoted setting too).
    verify = corokey_admin(network, cluster, "verify", "--json")
    found = {n["node"]: references(n["findings"]) for n in json.loads(verify.stdout)["nodes"]}
    assert found == {"node1": ["pacemaker-remote-key"], "node2": ["mode-readable"]}, found


@pytest.mark.slow
def test_the_advice_corokey_no_longer_gives_cuts_the_remote_node_off_and_the_way_out_works(
    pacemaker_available: None, network: Network
) -> None:
    """Why the note: corosync's key made 0400 (the advice check gave before) locks the remote
    node out at its next handshake, once pacemaker-controld's 60 s key cache has expired
    (lib/lrmd/lrmd_client.c key_cache_expired). The way out the note names works: a
    Pacemaker key of its own everywhere, then corosync's key 0400 is clean."""
    cluster = network.add_hosts(2, pacemaker=True, pacemaker_key="corosync")
    network.wait_for_membership()
    (remote,) = network.add_remote_hosts(1)
    for host in cluster:
        host.write_key(host.read_key(), mode=0o400)  # root:root 0400, the corosync profile
    time.sleep(62)  # past the cache of the key read at the connection's start
    remote.stop_pacemaker()
    remote.start_pacemaker()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logs = "".join(h.pacemaker_log() for h in cluster)
        if "Required key not available" in logs:
            break
        time.sleep(1)
    else:
        raise AssertionError("no 'Required key not available' in the cluster's logs")
    status = network.cluster_status()
    assert status is not None and not status.connected(remote.name)

    # The way out: Pacemaker's own key on every cluster and remote node.
    own = os.urandom(4096)
    for host in (*cluster, remote):
        host.write_key(own, pacemakerhosts.PACEMAKER_KEY_PATH, mode=0o640, group="haclient")
    cluster[0].run(["crm_resource", "--cleanup", "--resource", remote.name])
    network.wait_for_pacemaker()
    code, report = corokey_on(cluster[0], "check", "--json", KEY)
    assert code == 0 and report["keys"][0]["findings"] == [], report
