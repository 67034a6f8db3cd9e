"""push, verify and rotate on real corosync 2.x clusters (3 test hosts): 2.x uses the first
128 bytes of the key and cannot load a new one while it runs. (The restart rotation's
rollback on 2.x is in test_rotate_restart.py, beside the 3.x one.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import List

import pytest

from corokey.key import generate_key
from tests import corosync2
from tests.cluster.test_rotate import rotate_argv
from tests.cluster.test_rotate_restart import START, STOP, _hosts
from tests.testhosts import Host, Network

pytestmark = [pytest.mark.usefixtures("own_ssh_connections"), pytest.mark.slow]


def _cluster(network: Network, version: str) -> List[Host]:
    return _hosts(network, version)


def _admin(network: Network, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "corokey", *args, "-F", str(network.ssh_config)]
    return network.run_admin(argv, env=dict(os.environ), timeout=240)


def _names(hosts: List[Host]) -> str:
    return ",".join(h.name for h in hosts)


@pytest.mark.parametrize("version", corosync2.VERSIONS)
def test_rotate_refuses_2x_then_restart_rotates_it(network: Network, version: str) -> None:
    hosts = _cluster(network, version)
    old = hosts[0].read_key()
    refused = network.run_admin(rotate_argv(network, hosts), env=dict(os.environ), timeout=240)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "error[version-too-old]" in refused.stderr and "--restart" in refused.stderr
    assert all(h.read_key() == old for h in hosts)
    argv = rotate_argv(network, hosts, "--restart", "--stop-command", STOP)
    result = network.run_admin([*argv, "--start-command", START], env=dict(os.environ), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["result"] == "rotated" and report["downtime_seconds"] > 0
    keys = {h.read_key() for h in hosts}
    assert len(keys) == 1 and old not in keys
    network.wait_for_membership()
    assert f"version '{version}'" in hosts[0].run(["corosync", "-v"]).stdout


def test_push_and_verify_compare_what_2x_uses(network: Network) -> None:
    hosts = _cluster(network, "2.3.5")
    argv = [sys.executable, "-m", "corokey", "push", "-", "--nodes", _names(hosts), "--json"]
    new = generate_key()
    pushed = network.run_admin(
        [*argv, "-F", str(network.ssh_config)], input=new, env=dict(os.environ)
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert json.loads(pushed.stdout)["corosync2_nodes"] == [h.name for h in hosts]
    key = new
    # A key that differs only past byte 128 is the same key for corosync 2.x.
    hosts[2].write_key(key[:128] + generate_key()[:128])
    verified = _admin(network, "verify", "--nodes", _names(hosts), "--json")
    report = json.loads(verified.stdout)
    assert verified.returncode == 0, verified.stdout
    assert {n["effective_bytes"] for n in report["nodes"]} == {128}
    text = _admin(network, "verify", "--nodes", _names(hosts))
    assert "first 128 bytes" in text.stdout
    hosts[2].write_key(generate_key())
    assert _admin(network, "verify", "--nodes", _names(hosts)).returncode == 1
