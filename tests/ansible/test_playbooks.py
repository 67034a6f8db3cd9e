"""The corokey.corosync roles and modules with ansible-playbook against real clusters.

Two clusters of three test hosts (tests/ansible/fleet.py), one inventory. The
tests run in file order on one fleet, each leaving it whole.
"""

import base64
import re
import stat
from pathlib import Path
from typing import Iterator

import pytest

from tests.ansible.fleet import Fleet
from tests.testhosts import Network, unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    net = Network()
    try:
        yield Fleet(net, tmp_path_factory.mktemp("fleet"))
    finally:
        net.close()


def recap(output: str) -> "dict[str, dict[str, int]]":
    counts = {}
    for line in output.splitlines():
        match = re.match(r"^(node\d+)\s+:\s+(.*)$", line)
        if match:
            counts[match.group(1)] = {
                k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))
            }
    return counts


def assert_no_key_material(output: str, key: bytes) -> None:
    lowered = output.lower()
    for start in range(0, len(key) - 12, 3):
        window = key[start : start + 12]
        assert window.hex() not in lowered, f"hex of key bytes {start}.. in the output"
        assert base64.b64encode(window).decode() not in output, f"base64 of key bytes {start}.."
    assert key[:16].decode("latin-1") not in output, "raw key bytes in the output"


def leftovers(fleet: Fleet) -> "dict[str, list[str]]":
    return {
        h.name: [e for e in fleet.key_dir_entries(h) if e not in ("authkey", "authkey.old")]
        for h in fleet.hosts
    }


def test_distribute_then_nothing_changes(fleet: Fleet) -> None:
    status, output = fleet.playbook("distribute.yml")
    assert status == 0, output
    keys = fleet.node_keys()
    for cluster in ("alpha", "beta"):
        for host in fleet.cluster(cluster):
            assert keys[host.name] == fleet.controller_key(cluster)
            assert stat.S_IMODE(host.path("/etc/corosync/authkey").stat().st_mode) == 0o400
    assert fleet.controller_key("alpha") != fleet.controller_key("beta")
    assert leftovers(fleet) == {h.name: [] for h in fleet.hosts}
    assert all(c["changed"] >= 1 and c["failed"] == 0 for c in recap(output).values()), output

    status, output = fleet.playbook("distribute.yml")
    assert status == 0, output
    assert all(c["changed"] == 0 for c in recap(output).values()), output
    assert fleet.node_keys() == keys
    # corosync still runs on the keys it started with: make it take the new ones.
    fleet.reload("alpha")
    fleet.reload("beta")
    fleet.wait_whole()


def test_check_mode_changes_nothing(fleet: Fleet, tmp_path: Path) -> None:
    before = fleet.node_keys()
    status, output = fleet.playbook("distribute.yml", "--check", "--diff", keys=tmp_path / "keys")
    assert status == 0, output
    assert all(c["changed"] >= 1 for c in recap(output).values()), output
    assert fleet.node_keys() == before
    assert leftovers(fleet) == {h.name: [] for h in fleet.hosts}


def test_diff_and_vvv_never_show_the_key(fleet: Fleet, tmp_path: Path) -> None:
    before = fleet.node_keys()
    other_keys = tmp_path / "keys"
    status, output = fleet.playbook("distribute.yml", "--diff", "-vvv", keys=other_keys)
    assert status == 0, output
    assert "fingerprint: SHA256:" in output  # the diff is there, and shows the fingerprint
    for cluster in ("alpha", "beta"):
        assert_no_key_material(output, fleet.controller_key(cluster, other_keys))
        assert_no_key_material(output, fleet.controller_key(cluster))
    # Nor in what Ansible left on the controller (its local temp directory).
    local = [p for p in (fleet.workdir / "ansible-local").rglob("*") if p.is_file()]
    for path in local:
        data = path.read_bytes()
        for cluster in ("alpha", "beta"):
            key = fleet.controller_key(cluster, other_keys)
            assert key not in data and base64.b64encode(key) not in data, path
    # Put the fleet's keys back (corosync still runs on them: nothing was reloaded).
    status, output = fleet.playbook("distribute.yml")
    assert status == 0, output
    assert fleet.node_keys() == before


def test_audit_reports_every_node(fleet: Fleet) -> None:
    status, output = fleet.playbook("audit.yml")
    assert status == 0, output
    pattern = r"corokey-audit (node\d) (SHA256:\S+) (\w+)\s+running=True members=([\d,]+)"
    lines = re.findall(pattern, output)
    assert {line[0] for line in lines} == {h.name for h in fleet.hosts}, output
    for name, _fingerprint, status_text, members in lines:
        assert status_text == "ok"
        assert members == ("1,2,3" if name in ("node1", "node2", "node3") else "4,5,6")
    assert "online_reload=True" in output


def test_rotate_both_clusters_online(fleet: Fleet) -> None:
    before = fleet.node_keys()
    old_controller = {c: fleet.controller_key(c) for c in ("alpha", "beta")}
    rings = fleet.net.ring_ids()
    members = {h.name: h.members() for h in fleet.hosts}
    status, output = fleet.playbook("rotate.yml")
    assert status == 0, output
    after = fleet.node_keys()
    for cluster in ("alpha", "beta"):
        new = fleet.controller_key(cluster)
        assert new != old_controller[cluster]
        assert (fleet.keys / cluster / "corosync.key.old").read_bytes() == old_controller[cluster]
        for host in fleet.cluster(cluster):
            assert after[host.name] == new
            assert host.path("/etc/corosync/authkey.old").read_bytes() == before[host.name]
    assert fleet.net.ring_ids() == rings
    assert {h.name: h.members() for h in fleet.hosts} == members
    assert leftovers(fleet) == {h.name: [] for h in fleet.hosts}


def test_a_cluster_with_a_node_down_is_untouched_the_other_rotates(fleet: Fleet) -> None:
    down = fleet.cluster("alpha")[2]
    down.stop_corosync()
    down.stop_sshd()
    try:
        alive = fleet.cluster("alpha")[:2]
        fleet.net.wait_for_membership({h: {1, 2} for h in alive})
        before = fleet.node_keys()
        alpha_key = fleet.controller_key("alpha")
        beta_key = fleet.controller_key("beta")
        status, output = fleet.playbook("rotate.yml")
        assert status != 0
        counts = recap(output)
        for host in fleet.cluster("alpha"):
            assert counts[host.name]["failed"] + counts[host.name]["unreachable"] >= 1, output
        assert all(counts[h.name]["failed"] == 0 for h in fleet.cluster("beta")), output
        assert "cluster alpha" in output
        after = fleet.node_keys()
        for host in alive:
            assert after[host.name] == before[host.name]
            assert fleet.key_dir_entries(host) == ["authkey", "authkey.old"]
        assert fleet.controller_key("alpha") == alpha_key
        assert not (fleet.keys / "alpha" / "corosync.key.next").exists()
        new_beta = fleet.controller_key("beta")
        assert new_beta != beta_key
        for host in fleet.cluster("beta"):
            assert after[host.name] == new_beta
    finally:
        down.start_sshd()
        down.start_corosync()
    fleet.wait_whole()


def test_a_symlink_at_the_key_path_fails_clearly(fleet: Fleet, tmp_path: Path) -> None:
    victim = fleet.cluster("beta")[1]
    key_path = victim.path("/etc/corosync/authkey")
    real = victim.path("/etc/corosync/authkey.real")
    key_path.rename(real)
    key_path.symlink_to("/etc/corosync/authkey.real")
    try:
        before = fleet.node_keys()
        status, output = fleet.playbook("distribute.yml", keys=tmp_path / "keys")
        assert status != 0
        assert (
            "refusing to read /etc/corosync/authkey: it is a symbolic link to "
            "/etc/corosync/authkey.real" in output
        ), output
        assert "cluster beta: nothing committed" in output
        after = fleet.node_keys()
        assert after[victim.name] == b"link" and real.read_bytes() == fleet.controller_key("beta")
        for host in fleet.cluster("beta"):
            assert after[host.name] == before[host.name]
            assert not [e for e in fleet.key_dir_entries(host) if "staged" in e]
        for host in fleet.cluster("alpha"):  # the other cluster went on
            assert after[host.name] == fleet.controller_key("alpha", tmp_path / "keys")
    finally:
        key_path.unlink()
        real.rename(key_path)


def test_a_failed_commit_puts_the_old_key_back_everywhere(fleet: Fleet) -> None:
    """node2 cannot keep authkey.old (a directory is there): its commit fails after
    node1 and node3 committed, and the rescue puts their old key back and reloads."""
    blocker = fleet.cluster("alpha")[1].path("/etc/corosync/authkey.old")
    saved = blocker.read_bytes()
    blocker.unlink()
    blocker.mkdir()
    try:
        before = fleet.node_keys()
        alpha_key = fleet.controller_key("alpha")
        rings = fleet.net.ring_ids()
        status, output = fleet.playbook("rotate.yml")
        assert status != 0
        assert "the commit failed on node2" in output, output
        assert "the old key put back and reloaded" in output, output
        assert "Put .old back where the new key was committed" in output
        after = fleet.node_keys()
        assert after == {**before, **{h.name: after[h.name] for h in fleet.cluster("beta")}}
        assert fleet.controller_key("alpha") == alpha_key
        for host in fleet.cluster("beta"):
            assert after[host.name] == fleet.controller_key("beta") != before[host.name]
        assert leftovers(fleet) == {h.name: [] for h in fleet.hosts}
        fleet.wait_whole()
        assert {
            n: r for n, r in fleet.net.ring_ids().items() if n in ("node1", "node2", "node3")
        } == {n: r for n, r in rings.items() if n in ("node1", "node2", "node3")}
    finally:
        blocker.rmdir()
        blocker.write_bytes(saved)
        blocker.chmod(0o400)
