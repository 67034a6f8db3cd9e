"""push, verify and rotate take the key corosync really reads on the nodes (issue 16,
parts 1 and 2): 2.x's crypto defaults, a top-level ``totem.keyfile``, and the files the
startup settings name. The oracle for "corosync uses the key" is corosync itself: a node
whose key file is missing starts only when corosync does not read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Iterator, List

import pytest

from corokey.key import generate_key
from tests import corosync2
from tests.cluster.test_rotate import rotate_argv
from tests.cluster.test_rotate_restart import START, STOP
from tests.testhosts import KEY_PATH, Host, Network, unavailable_reason

pytestmark = [pytest.mark.usefixtures("own_ssh_connections"), pytest.mark.slow]

CONF = "/etc/corosync/corosync.conf"


def corokey(net: Network, *args: str, key: bytes = b"") -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "corokey", *args, "-F", str(net.ssh_config)]
    return net.run_admin(argv, input=key if key else None, env=dict(os.environ))


def names(hosts: List[Host]) -> str:
    return ",".join(h.name for h in hosts)


def _uses_key(host: Host, key_path: str = KEY_PATH) -> bool:
    """Whether corosync on ``host`` reads ``key_path``: it starts without that file only
    when it does not (it is moved aside for the probe and put back)."""
    target = host.path(key_path)
    aside = target.with_name(target.name + ".probe")
    os.rename(target, aside)
    try:
        started = host.start_or_refused() is not None
        host.stop_corosync()
        return not started
    finally:
        os.rename(aside, target)


# ------------------------------------------------------------------ 2.x crypto defaults


@pytest.fixture(scope="module", params=corosync2.VERSIONS)
def pair2(request: pytest.FixtureRequest) -> Iterator[List[Host]]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    corosync2.build_or_skip(request.param)
    network = Network()
    try:
        yield network.add_hosts(2, corosync=False, corosync_version=request.param)
    finally:
        network.close()


def _conf2(hosts: List[Host], crypto: str) -> str:
    nodes = "".join(
        f"    node {{\n        ring0_addr: {h.address}\n        nodeid: {h.nodeid}\n    }}\n"
        for h in hosts
    )
    subnet = hosts[0].network.subnet
    return (
        f"totem {{\n    version: 2\n    cluster_name: two\n    transport: udpu\n{crypto}"
        f"    interface {{\n        ringnumber: 0\n        bindnetaddr: {subnet}.0\n"
        "        mcastport: 5405\n    }\n}\n"
        f"nodelist {{\n{nodes}}}\nquorum {{\n    provider: corosync_votequorum\n}}\n"
        "logging {\n    to_stderr: yes\n}\nqb {\n    ipc_type: socket\n}\n"
    )


@pytest.mark.parametrize(
    ("crypto", "used"),
    [
        ("", True),  # the common 2.x conf: aes256 + sha1 by default
        ("    secauth: on\n", True),
        ("    crypto_cipher: none\n", True),  # still sha1 with the key
        ("    secauth: off\n", False),
    ],
    ids=["no-crypto-lines", "secauth-on", "crypto_cipher-none-alone", "secauth-off"],
)
def test_2x_push_and_verify_go_where_corosync_uses_the_key(
    pair2: List[Host], crypto: str, used: bool
) -> None:
    network = pair2[0].network
    old = generate_key(128)
    for host in pair2:
        host.path(CONF).write_text(_conf2(pair2, crypto))
        host.write_key(old)
    assert _uses_key(pair2[0]) is used, "corosync itself disagrees with the test's table"
    new = generate_key(128)
    pushed = corokey(network, "push", "-", "--nodes", names(pair2), "--json", key=new)
    verified = corokey(network, "verify", "--nodes", names(pair2))
    if used:
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert {h.read_key() for h in pair2} == {new}
        assert verified.returncode == 0, verified.stdout + verified.stderr
    else:
        assert pushed.returncode != 0 and "crypto-off" in pushed.stdout + pushed.stderr
        assert {h.read_key() for h in pair2} == {old}
        assert verified.returncode != 0 and "crypto-off" in verified.stdout + verified.stderr


def test_2x_push_follows_an_exported_authkey_variable(pair2: List[Host]) -> None:
    """2.x reads COROSYNC_TOTEM_AUTHKEY_FILE when the conf names no key (totemconfig.c);
    its init script passes on only what the startup file exports."""
    if not os.path.isfile("/etc/default/corosync"):
        pytest.skip("no /etc/default/corosync to bind over (Debian's corosync ships it)")
    network = pair2[0].network
    for host in pair2:
        host.path(CONF).write_text(_conf2(pair2, ""))
        _bind(
            host, "/etc/default/corosync", "export COROSYNC_TOTEM_AUTHKEY_FILE=/etc/corosync/k2\n"
        )
    try:
        new = generate_key(128)
        pushed = corokey(network, "push", "-", "--nodes", names(pair2), "--json", key=new)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert {h.read_key("/etc/corosync/k2") for h in pair2} == {new}
        _bind(pair2[1], "/etc/default/corosync", "COROSYNC_TOTEM_AUTHKEY_FILE=/etc/corosync/k2\n")
        unsure = corokey(network, "verify", "--nodes", names(pair2))
        assert unsure.returncode != 0 and "without export" in unsure.stdout + unsure.stderr
    finally:
        for host in pair2:
            while host.run(["umount", "/etc/default/corosync"], check=False).returncode == 0:
                pass


def test_rotate_restart_rotates_a_2x_cluster_without_crypto_lines(network: Network) -> None:
    """The common 2.x conf has no crypto lines: its corosync encrypts with the key, and
    rotate --restart (made for 2.x) must not refuse it as crypto-off."""
    corosync2.build_or_skip("2.4.6")
    hosts = network.add_hosts(3, corosync=False, corosync_version="2.4.6")
    old = generate_key(128)
    for host in hosts:
        host.runs_corosync = True
    for host in hosts:
        host.write_corosync_conf(hosts)
        text = host.path(CONF).read_text()
        for line in ("    crypto_cipher: aes256\n", "    crypto_hash: sha256\n"):
            assert line in text
            text = text.replace(line, "")
        host.path(CONF).write_text(text)
        host.write_key(old)
    for host in hosts:
        host.start_corosync()
    network.wait_for_membership()
    network.wait_for_stable_ring(seconds=3)
    argv = rotate_argv(network, hosts, "--restart", "--stop-command", STOP)
    result = network.run_admin([*argv, "--start-command", START], env=dict(os.environ), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["result"] == "rotated"
    keys = {h.read_key() for h in hosts}
    assert len(keys) == 1 and old not in keys
    network.wait_for_membership()


# ------------------------------------------------------------------ 3.x: dotted keyfile


def _three_on_cluster_key(network: Network) -> List[Host]:
    """Three running 3.x hosts whose conf names the key only by a top-level dotted
    ``totem.keyfile`` line, with a stale, different key at /etc/corosync/authkey."""
    hosts = network.add_hosts(3, corosync=False)
    key, stale = generate_key(), generate_key()
    for host in hosts:
        host.runs_corosync = True
    for host in hosts:
        host.write_corosync_conf(hosts)
        text = host.path(CONF).read_text()
        text = text.replace(f"    keyfile: {KEY_PATH}\n", "")
        host.path(CONF).write_text(text + "totem.keyfile: /etc/corosync/cluster.key\n")
        host.write_key(key, "/etc/corosync/cluster.key")
        host.write_key(stale)  # the same old key everywhere: corosync does not read it
    for host in hosts:
        host.start_corosync()
    network.wait_for_membership()
    network.wait_for_stable_ring(seconds=5)
    return hosts


def test_rotate_and_verify_follow_a_top_level_dotted_keyfile(network: Network) -> None:
    """The issue's false "rotated": authkey was rewritten, cluster.key left as it was."""
    hosts = _three_on_cluster_key(network)
    stale = {h.name: h.read_key() for h in hosts}
    before = hosts[0].read_key("/etc/corosync/cluster.key")
    result = network.run_admin(rotate_argv(network, hosts), env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["result"] == "rotated" and report["path"] == "/etc/corosync/cluster.key"
    after = {h.read_key("/etc/corosync/cluster.key") for h in hosts}
    assert len(after) == 1 and before not in after
    assert {h.name: h.read_key() for h in hosts} == stale  # authkey untouched
    checked = corokey(network, "verify", "--nodes", names(hosts))
    assert checked.returncode == 0 and "/etc/corosync/cluster.key" in checked.stdout


# ------------------------------------------------------------------ the startup files


def _bind(host: Host, path: str, text: str) -> None:
    """``text`` at ``path`` inside the host only (a bind mount in its mount namespace)."""
    source = host.root / ("startup-" + path.strip("/").replace("/", "-"))
    source.write_text(text)
    host.run(["mount", "--bind", str(source), path])


@pytest.fixture
def pair3(network: Network) -> List[Host]:
    if not os.path.isfile("/etc/default/corosync"):
        pytest.skip("no /etc/default/corosync to bind over (Debian's corosync ships it)")
    return network.add_hosts(2, corosync=False)


def test_push_follows_dash_c_in_corosync_options(network: Network, pair3: List[Host]) -> None:
    for host in pair3:
        host.path(CONF).write_text("totem {\n    crypto_hash: sha256\n}\n")
        host.path("/etc/corosync/other.conf").write_text(
            "totem {\n    crypto_hash: sha256\n    keyfile: /etc/corosync/other.key\n}\n"
        )
        _bind(host, "/etc/default/corosync", 'COROSYNC_OPTIONS="-c /etc/corosync/other.conf"\n')
    new = generate_key()
    pushed = corokey(network, "push", "-", "--nodes", names(pair3), "--json", key=new)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert json.loads(pushed.stdout)["path"] == "/etc/corosync/other.key"
    assert {h.read_key("/etc/corosync/other.key") for h in pair3} == {new}
    assert not any(h.path(KEY_PATH).exists() for h in pair3)
    verified = corokey(network, "verify", "--nodes", names(pair3))
    assert verified.returncode == 0 and "/etc/corosync/other.key" in verified.stdout
    # What corokey cannot evaluate, it says, and changes nothing.
    _bind(pair3[0], "/etc/default/corosync", 'COROSYNC_OPTIONS="-c $CONF"\n')
    refused = corokey(network, "push", "-", "--nodes", names(pair3), key=generate_key())
    assert refused.returncode != 0 and "cannot tell" in refused.stdout + refused.stderr
    assert {h.read_key("/etc/corosync/other.key") for h in pair3} == {new}
