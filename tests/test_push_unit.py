"""The ssh command lines push and verify build, how nodes are found, and the remote scripts
run by a local sh (real files and coreutils, no ssh)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import List

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


class _LocalShell(Ssh):
    """The remote scripts run by this machine's own sh instead of through ssh: the
    scripts, files and coreutils are real, only the transport is left out."""

    def argv(self, node: str, command: str) -> List[str]:
        return ["sh", "-c", command]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to root:root needs root")


@needs_root
def test_stage_commit_and_unchanged_with_the_real_scripts(tmp_path: Path) -> None:
    from corokey.key import generate_key
    from corokey.nodekey import commit, inspect, stage

    shell = _LocalShell(multiplex=False)
    key_path = str(tmp_path / "authkey")
    old, new = generate_key(), generate_key()
    (tmp_path / "authkey").write_bytes(old)
    old_inode = os.stat(key_path).st_ino
    stale = tmp_path / ".authkey.corokey-push-STALE123"
    stale.write_bytes(b"left by a killed run")
    staged = stage(shell, "here", key_path, new, "root:root", 0o400)
    assert staged is not None and staged.startswith(".authkey.corokey-push-")
    assert not stale.exists(), "a stale staged copy is removed by the next stage"
    info = os.stat(tmp_path / staged)
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o400, 0, 0)
    assert (tmp_path / "authkey").read_bytes() == old, "staging changes nothing"
    commit(shell, "here", key_path, staged, hashlib.sha256(new).hexdigest())
    assert (tmp_path / "authkey").read_bytes() == new
    assert os.stat(tmp_path / "authkey.old").st_ino == old_inode
    assert sorted(os.listdir(tmp_path)) == ["authkey", "authkey.old"]
    remote = inspect(shell, "here", key_path)
    assert (remote.kind, remote.mode, remote.nlink, remote.size) == ("regular", 0o400, 1, 256)
    assert remote.sha256 == hashlib.sha256(new).hexdigest()
    assert stage(shell, "here", key_path, new, "root:root", 0o400) is None, "unchanged"
    assert stage(shell, "here", key_path, new, "root:root", 0o600) is not None, "mode differs"


def _stage_a_new_key(directory: Path) -> None:
    from corokey.key import generate_key
    from corokey.nodekey import stage

    stage(
        _LocalShell(multiplex=False),
        "here",
        str(directory / "authkey"),
        generate_key(),
        "root:root",
        0o400,
    )


@needs_root
@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_stage_refuses_a_key_path_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    from corokey.nodekey import NodeKeyError

    target = tmp_path / "elsewhere"
    target.write_bytes(b"not to be touched")
    if kind == "symlink":
        (tmp_path / "authkey").symlink_to(target)
    else:
        (tmp_path / "authkey").mkdir()
    with pytest.raises(NodeKeyError, match="not a regular file"):
        _stage_a_new_key(tmp_path)
    assert target.read_bytes() == b"not to be touched"
    assert not [n for n in os.listdir(tmp_path) if ".corokey-push-" in n]


@needs_root
@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_stage_refuses_an_old_copy_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    # mv would otherwise move the previous key into that directory, or through the link.
    from corokey.key import generate_key
    from corokey.nodekey import NodeKeyError

    (tmp_path / "authkey").write_bytes(generate_key())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "symlink":
        (tmp_path / "authkey.old").symlink_to(elsewhere)
    else:
        (tmp_path / "authkey.old").mkdir()
    with pytest.raises(NodeKeyError, match=r"authkey\.old is a symbolic link or not a regular"):
        _stage_a_new_key(tmp_path)
    assert os.listdir(elsewhere) == []
    assert not [n for n in os.listdir(tmp_path) if ".corokey-push-" in n]


@needs_root
def test_rollback_restores_the_old_key_as_a_file_of_its_own(tmp_path: Path) -> None:
    from corokey.checks import check_key
    from corokey.key import generate_key
    from corokey.profiles import get_profile
    from corokey.rotate import restore_old

    old, new = generate_key(), generate_key()
    (tmp_path / "authkey").write_bytes(new)
    (tmp_path / "authkey.old").write_bytes(old)
    for name in ("authkey", "authkey.old"):
        os.chmod(tmp_path / name, 0o400)
    result = restore_old(_LocalShell(multiplex=False), "here", str(tmp_path / "authkey"))
    assert result.status == 0, result.why()
    assert (tmp_path / "authkey").read_bytes() == old
    info = os.stat(tmp_path / "authkey")
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_nlink) == (0o400, 0, 1)
    assert sorted(os.listdir(tmp_path)) == ["authkey", "authkey.old"]
    report = check_key(str(tmp_path / "authkey"), get_profile("corosync"), fips=False)
    assert report.findings == ()


class _ChattyLogin(_LocalShell):
    """A node whose shell start-up prints a banner on every session."""

    def argv(self, node: str, command: str) -> List[str]:
        return ["sh", "-c", "echo 'Welcome to node1'; " + command]


@needs_root
def test_push_from_refuses_bytes_that_are_not_the_source_file(tmp_path: Path) -> None:
    from corokey.cli.push import _check_read_back
    from corokey.errors import CorokeyError
    from corokey.key import generate_key
    from corokey.nodekey import read_key

    key_path = str(tmp_path / "authkey")
    (tmp_path / "authkey").write_bytes(generate_key())
    quiet = _LocalShell(multiplex=False)
    _check_read_back(quiet, "here", key_path, read_key(quiet, "here", key_path))
    # A banner from the node's shell start-up is not taken for part of the key...
    chatty = _ChattyLogin(multiplex=False)
    read = read_key(chatty, "here", key_path)
    assert read == (tmp_path / "authkey").read_bytes()
    _check_read_back(chatty, "here", key_path, read)
    # ...and bytes that are not the file's are refused, whatever brought them.
    with pytest.raises(CorokeyError, match="are not that file"):
        _check_read_back(chatty, "here", key_path, b"Welcome\n" + read)


@needs_root
def test_a_login_banner_does_not_confuse_stage_commit_or_inspect(tmp_path: Path) -> None:
    from corokey.key import generate_key
    from corokey.nodekey import commit, inspect, stage

    chatty = _ChattyLogin(multiplex=False)
    key_path = str(tmp_path / "authkey")
    new = generate_key()
    staged = stage(chatty, "here", key_path, new, "root:root", 0o400)
    assert staged is not None
    commit(chatty, "here", key_path, staged, hashlib.sha256(new).hexdigest())
    remote = inspect(chatty, "here", key_path)
    assert (remote.kind, remote.size, remote.sha256) == (
        "regular",
        256,
        hashlib.sha256(new).hexdigest(),
    )


@needs_root
@pytest.mark.parametrize("unsafe", ["other-owner", "world-writable", "symlink"])
def test_connection_sharing_only_in_a_private_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unsafe: str
) -> None:
    # The key crosses the shared connection; a socket someone else planted at the
    # ControlPath would receive it (XDG_RUNTIME_DIR or HOME kept by sudo -E, say).
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(private))
    assert any(a.startswith("ControlPath=") for a in Ssh().argv("node1", "true"))
    runtime = tmp_path / "runtime"
    if unsafe == "symlink":
        runtime.symlink_to(private)
        (private / "corokey").mkdir(mode=0o700, exist_ok=True)
        link = private / "corokey" / "ssh"
        shutil.rmtree(link, ignore_errors=True)
        link.symlink_to(tmp_path)
        runtime = private
    else:
        runtime.mkdir(mode=0o700)
        if unsafe == "other-owner":
            os.chown(runtime, 65534, 65534)
        else:
            runtime.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    argv = Ssh().argv("node1", "true")
    assert not [a for a in argv if a.startswith("Control")], argv
