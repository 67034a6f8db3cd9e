"""Real corosync 2.3.5 and 2.4.6 clusters (3 test hosts each) with corokey's keys.

The 2.x builds come from tests/corosync2.py; each host runs one, bind-mounted over
/usr/sbin in its own mount namespace, so corokey finds 2.x there by itself
(COROKEY_COROSYNC is removed from the environment of every command run inside).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List

import pytest

from tests import corosync2
from tests.keygen_helpers import our_keygen
from tests.testhosts import KEY_PATH, Host, Network

pytestmark = pytest.mark.slow

INVALID_DIGEST = "Received message has invalid digest... ignoring."


def _env() -> Dict[str, str]:
    import corokey

    env = {k: v for k, v in os.environ.items() if k != "COROKEY_COROSYNC"}
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(corokey.__file__))
    return env


def corokey_in(host: Host, *args: str) -> Any:
    return host.run([sys.executable, "-m", "corokey", *args], check=False, env=_env())


@pytest.fixture(params=corosync2.VERSIONS)
def cluster2(request: pytest.FixtureRequest, network: Network) -> List[Host]:
    corosync2.build_or_skip(request.param)
    hosts = network.add_hosts(3, corosync_version=request.param)
    network.wait_for_membership()
    version = hosts[0].run(["corosync", "-v"]).stdout
    assert f"version '{request.param}'" in version
    return hosts


def _restart_all_with(network: Network, hosts: List[Host], key: bytes) -> None:
    """2.x cannot reload a key: stop every node, install it everywhere, start again."""
    for host in hosts:
        host.stop_corosync()
    for host in hosts:
        host.write_key(key)
    for host in hosts:
        host.start_corosync()
    network.wait_for_membership()


def test_our_keys_form_a_2x_cluster(network: Network, cluster2: List[Host]) -> None:
    first = cluster2[0]
    # The corosync-keygen drop-in, run on the node itself: it finds 2.x and makes its key.
    made = first.run([our_keygen(), "-l", "-k", "/etc/corosync/authkey.new"], env=_env())
    assert "Gathering 1024 bits for key from /dev/urandom." in made.stdout
    key = first.read_key("/etc/corosync/authkey.new")
    assert len(key) == 128
    _restart_all_with(network, cluster2, key)
    assert {h.read_key() for h in cluster2} == {key}
    # corokey generate, on another node: 2.x's 128 bytes, and it forms the cluster too.
    result = corokey_in(cluster2[1], "generate", "--force", "/etc/corosync/authkey.gen")
    assert result.returncode == 0, result.stderr
    generated = cluster2[1].read_key("/etc/corosync/authkey.gen")
    assert len(generated) == 128 and generated != key
    _restart_all_with(network, cluster2, generated)
    checked = corokey_in(cluster2[2], "check", KEY_PATH)
    assert checked.returncode == 0 and "corosync 2.x rules" in checked.stdout, checked.stdout


def test_a_node_with_another_key_is_shut_out_and_doctor_says_why(
    network: Network, cluster2: List[Host]
) -> None:
    good, other, odd = cluster2
    odd.stop_corosync()
    odd.run([our_keygen(), "-l", "-k", KEY_PATH], env=_env())
    odd.start_corosync()
    network.wait_for_membership({good: {1, 2}, other: {1, 2}, odd: {3}})
    for host in cluster2:
        host.wait_until(
            lambda host=host: INVALID_DIGEST in host.log_text(),
            f"the seed's 'invalid digest' message in {host.name}'s log",
        )
    for host, alone in ((odd, True), (good, False)):
        result = corokey_in(host, "doctor", "--json")
        report: Dict[str, Any] = json.loads(result.stdout)
        assert result.returncode == 2, report
        finding = next(f for f in report["findings"] if f["reference"] == "key-mismatch-unnamed")
        assert "does not log the sender" in finding["message"]
        assert "cannot tell from here which node" in finding["message"]
        assert ("this node is alone" in finding["message"]) is alone
        assert finding["fix"].startswith("corokey verify")
        assert "restart corosync" in finding["fix"]
        assert report["members"] == ([3] if alone else [1, 2])
    text = corokey_in(odd, "doctor").stdout
    assert "error[key-mismatch-unnamed]" in text and "fix: corokey verify" in text
