"""Issue 16, parts 3 and 6, through real sshd on test hosts: a non-root login, a login
shell that is not sh, an ssh_config that forces a terminal, an owner name that is an
escape sequence. Users and shells exist in each host only (its own /etc/passwd).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Iterator, List

import pytest

from corokey.key import generate_key
from tests import corosync2
from tests.testhosts import KEY_PATH, LOGINS, Host, Network

pytestmark = pytest.mark.usefixtures("own_ssh_connections")

LOGIN = "ckadmin"
LOGIN_UID = 47011


def corokey(net: Network, *args: str, key: bytes = b"") -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "corokey", *args, "-F", str(net.ssh_config)]
    return net.run_admin(argv, input=key if key else None, env=dict(os.environ))


def add_login(host: Host) -> None:
    """The non-root login, with sbin in its PATH as on Red Hat's distributions (bash reads
    ~/.bashrc in ssh sessions on Debian): its corosync -v answers."""
    host.add_login(LOGIN, LOGIN_UID, login_shell="/bin/bash")
    host.path(f"{LOGINS}/{LOGIN}/.bashrc").write_text("PATH=$PATH:/usr/sbin:/sbin\n")


def as_login(hosts: List[Host]) -> str:
    return ",".join(f"{LOGIN}@{h.name}" for h in hosts)


def as_root(hosts: List[Host]) -> str:
    return ",".join(h.name for h in hosts)


@pytest.fixture(scope="module")
def three(testhosts_available: None) -> Iterator[Network]:
    """Three hosts (sshd, Debian's corosync 3 installed, not running), each with a
    non-root login."""
    net = Network()
    try:
        for host in net.add_hosts(3, corosync=False):
            add_login(host)
        yield net
    finally:
        net.close()


@pytest.fixture
def hosts(three: Network) -> List[Host]:
    """Each host's key directory as a fresh install leaves it."""
    for host in three.hosts:
        directory = host.path("/etc/corosync")
        for name in os.listdir(directory):
            os.unlink(directory / name)
        directory.chmod(0o755)
        host.set_login_shell("root", "/bin/bash")
    return three.hosts


def _differing_keys(hosts: List[Host], size: int) -> None:
    for host in hosts:
        host.write_key(generate_key(min(size, 4096)) + os.urandom(max(0, size - 4096)))


def _unreadable_verdict(net: Network, hosts: List[Host]) -> None:
    """verify as the non-root login: could not tell (2), each node's key unreadable."""
    result = corokey(net, "verify", "--nodes", as_login(hosts), "--key-path", KEY_PATH, "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 2, result.stdout + result.stderr
    assert not report["same"] and report["unreadable"] == [f"{LOGIN}@{h.name}" for h in hosts]
    for node in report["nodes"]:
        assert node["corosync_version"] == hosts[0].run(["corosync", "-v"]).stdout.split("'")[1]
        assert node["unreadable"] == "permission-denied"
        assert node["sha256"] is None and node["used_sha256"] is None
        assert node["findings"][0]["reference"] == "node-unreadable"
    assert report["fix"] is None, "no push is advised where nothing could be read"
    text = corokey(net, "verify", "--nodes", as_login(hosts), "--key-path", KEY_PATH)
    assert text.returncode == 2
    assert f"{LOGIN}@{hosts[0].name}: cannot read {KEY_PATH} (permission-denied)" in text.stdout
    assert "log in as root" in text.stdout
    assert "hold the same key" not in text.stdout


def test_verify_as_a_non_root_login_does_not_hash_what_it_cannot_read(
    three: Network, hosts: List[Host]
) -> None:
    """Keys over the 4096 bytes compared, different on every node: the old script hashed
    head's empty output on each and said all three agreed (exit 0)."""
    _differing_keys(hosts, 5000)
    as_admin = corokey(three, "verify", "--nodes", as_root(hosts), "--key-path", KEY_PATH)
    assert as_admin.returncode == 1 and "split evenly" in as_admin.stdout, as_admin.stdout
    _unreadable_verdict(three, hosts)


@pytest.mark.slow
def test_verify_as_a_non_root_login_on_corosync_2(network: Network) -> None:
    """2.x uses the first 128 bytes: a 256-byte key (corokey's default size) was hashed
    as head's empty output there."""
    corosync2.build_or_skip("2.4.6")
    hosts = network.add_hosts(3, corosync=False, corosync_version="2.4.6")
    for host in hosts:
        add_login(host)
    assert "version '2.4.6'" in hosts[0].run(["corosync", "-v"]).stdout
    _differing_keys(hosts, 256)
    as_admin = corokey(network, "verify", "--nodes", as_root(hosts), "--key-path", KEY_PATH)
    assert as_admin.returncode == 1 and "split evenly" in as_admin.stdout, as_admin.stdout
    assert "compared the first 128 bytes" in as_admin.stdout
    _unreadable_verdict(network, hosts)


def test_the_node_scripts_run_under_sh_when_roots_shell_is_zsh(
    three: Network, hosts: List[Host]
) -> None:
    """zsh's $((0777 & 022)) is 0 (decimal): the key directory 0777 passed as safe."""
    key = generate_key()
    for host in hosts:
        host.write_key(key)
        host.set_login_shell("root", "/usr/bin/zsh")
    hosts[0].path("/etc/corosync").chmod(0o777)
    shell = subprocess.run(
        three.admin_command(["ssh", "-F", str(three.ssh_config), hosts[0].name, "echo $ZSH_NAME"]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.strip() == "zsh", "root's login shell on the host is zsh"
    result = corokey(three, "verify", "--nodes", as_root(hosts), "--key-path", KEY_PATH, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    findings = json.loads(result.stdout)["nodes"][0]["findings"]
    assert [f["reference"] for f in findings] == ["directory-writable"], findings
    pushed = corokey(
        three, "push", "-", "--nodes", as_root(hosts), "--key-path", KEY_PATH, key=generate_key()
    )
    assert pushed.returncode == 2 and "error[node-unsafe-directory]" in pushed.stderr
    assert all(h.read_key() == key for h in hosts), "nothing was pushed"


def test_a_terminal_forced_by_ssh_config_never_carries_the_key(
    three: Network, hosts: List[Host]
) -> None:
    """With RequestTTY force, ssh gave the session a terminal: the line discipline took
    ^C, ^D, ^Z and CR in the key's bytes for signals and line editing."""
    key = bytes([3, 4, 26, 13, 10, 126, 46, 127, 21, 17, 19]) * 23 + os.urandom(3)
    original = three.ssh_config.read_text()
    three.ssh_config.write_text(
        original.replace("    BatchMode yes\n", "    BatchMode yes\n    RequestTTY force\n")
    )
    try:
        result = corokey(
            three,
            "push",
            "-",
            "--nodes",
            as_root(hosts),
            "--key-path",
            KEY_PATH,
            "--force",
            key=key,
        )
    finally:
        three.ssh_config.write_text(original)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [h.read_key() for h in hosts] == [key] * 3


def test_an_owner_name_from_a_node_is_printed_escaped(three: Network, hosts: List[Host]) -> None:
    key = generate_key()
    for host in hosts:
        host.write_key(key)
    odd = hosts[1]
    odd.add_account("ev\x1b[2Jil", 47012)
    os.chown(odd.path(KEY_PATH), 47012, 0)
    result = corokey(three, "verify", "--nodes", as_root(hosts), "--key-path", KEY_PATH)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "\x1b" not in result.stdout + result.stderr, "no raw escape on the terminal"
    assert "ev\\x1b[2Jil" in result.stdout
