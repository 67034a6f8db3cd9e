"""The ssh command lines push and verify build, and how nodes are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from corokey.errors import UsageError
from corokey.remote import Ssh, resolve_nodes, validate_path


def test_host_keys_are_always_checked_unless_the_admin_says_otherwise() -> None:
    argv = Ssh(config="/tmp/cfg").argv("node1", "true")
    assert argv[:3] == ["ssh", "-F", "/tmp/cfg"]
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
    assert argv[-3:] == ["--", "node1", "true"]
    own = Ssh(options=["StrictHostKeyChecking=accept-new"]).argv("n", "true")
    assert "StrictHostKeyChecking=yes" not in own
    assert "StrictHostKeyChecking=accept-new" in own


@pytest.mark.parametrize("bad", ["", "-oProxyCommand=x", "a b", "x\ny"])
def test_node_names_cannot_smuggle_options(bad: str) -> None:
    with pytest.raises(UsageError):
        Ssh().argv(bad, "true")


def test_remote_paths_must_be_absolute() -> None:
    assert validate_path("/etc/corosync/authkey") == "/etc/corosync/authkey"
    for bad in ("authkey", "/etc/x\ny"):
        with pytest.raises(UsageError):
            validate_path(bad)


def test_nodes_from_the_nodelist(tmp_path: Path) -> None:
    conf = tmp_path / "corosync.conf"
    conf.write_text(
        "nodelist {\n node {\n  name: alpha\n  nodeid: 1\n  ring0_addr: 10.1.1.1\n }\n"
        " node {\n  nodeid: 2\n  ring0_addr: 10.1.1.2\n }\n}\n"
    )
    assert resolve_nodes(None, str(conf)) == ["alpha", "10.1.1.2"]
    assert resolve_nodes("b, a,b", str(conf)) == ["b", "a"]
    conf.write_text("totem {\n}\n")
    with pytest.raises(UsageError, match="lists no nodes"):
        resolve_nodes(None, str(conf))


def test_the_finish_command_is_the_same_ssh_call_without_connection_sharing() -> None:
    import shlex

    ssh = Ssh(config="/tmp/my cfg", options=["Port=2222"])
    script = "cd '/etc/corosync' && echo \"$x\"\n"
    full = ssh.argv("node1", script)
    assert any(a.startswith("ControlPath=") for a in full)
    expected = [
        a
        for i, a in enumerate(full)
        if not a.startswith("Control") and not (a == "-o" and full[i + 1].startswith("Control"))
    ]
    assert shlex.split(ssh.command_line("node1", script)) == expected
    assert expected[-1] == script and expected[:3] == ["ssh", "-F", "/tmp/my cfg"]
    assert "Port=2222" in expected
