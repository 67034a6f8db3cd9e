"""The ssh command lines push and verify build, how nodes and key paths are checked, and
the node scripts run by a local sh (real files, coreutils and flock; no ssh).

These run without root: the owner the scripts set is the current user's."""

from __future__ import annotations

import fcntl
import grp
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from corokey.errors import UsageError
from corokey.key import generate_key
from corokey.nodekey import NodeFailure, NodeView, PushSession, look, read_key, restore_old
from corokey.nodescripts import NODE_CONF_PATH, parse_answer
from corokey.remote import Ssh, remote_command, resolve_nodes, validate_node, validate_path

OWNER = f"{pwd.getpwuid(os.getuid()).pw_name}:{grp.getgrgid(os.getgid()).gr_name}"


def test_host_keys_are_always_checked_unless_the_admin_says_otherwise() -> None:
    argv = Ssh(config="/tmp/cfg").argv("node1", "true")
    assert argv[:3] == ["ssh", "-F", "/tmp/cfg"]
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
    assert argv[-3:] == ["--", "node1", remote_command("true")]
    own = Ssh(options=["StrictHostKeyChecking=accept-new"]).argv("n", "true")
    assert "StrictHostKeyChecking=yes" not in own
    assert "StrictHostKeyChecking=accept-new" in own


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "-oProxyCommand=x",
        "a b",
        "x\ny",
        "$(id)",
        "a;b",
        "`id`",
        "n1|n2",
        "\x1b[31mred",
        "a/b",
        "n'1",
        "a@b@c",
        "root@",
    ],
)
def test_node_names_accept_only_host_name_characters(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        Ssh().argv(bad, "true")
    assert "\x1b" not in caught.value.message, "no raw control characters in messages"


@pytest.mark.parametrize(
    "good", ["node1", "n-1.example.com", "10.0.0.1", "fe80::1%eth0", "root@node1", "h_2"]
)
def test_real_node_names_pass(good: str) -> None:
    assert validate_node(good) == good


@pytest.mark.parametrize(
    "bad", ["authkey", "/etc/x\ny", "/etc/corosync/", "/etc/corosync/.", "/etc/corosync/..", "/"]
)
def test_remote_key_paths_must_name_a_file(bad: str) -> None:
    with pytest.raises(UsageError):
        validate_path(bad)
    assert validate_path("/etc/corosync/authkey") == "/etc/corosync/authkey"


def test_nodes_from_the_nodelist(tmp_path: Path) -> None:
    conf = tmp_path / "corosync.conf"
    conf.write_text(
        "nodelist {\n node {\n  name: alpha\n  nodeid: 1\n  ring0_addr: 10.1.1.1\n }\n"
        " node {\n  nodeid: 2\n  ring0_addr: 10.1.1.2\n }\n}\n"
    )
    assert resolve_nodes(None, str(conf)) == ["alpha", "10.1.1.2"]
    assert resolve_nodes("b, a,b", str(conf)) == ["b", "a"]
    conf.write_text("nodelist {\n node {\n  name: $(reboot)\n  nodeid: 1\n }\n}\n")
    with pytest.raises(UsageError, match="not a node name"):
        resolve_nodes(None, str(conf))
    conf.write_text("totem {\n}\n")
    with pytest.raises(UsageError, match="lists no nodes"):
        resolve_nodes(None, str(conf))


def test_answers_are_parsed_by_name_and_fields() -> None:
    answer = parse_answer("corokey-result staged name=.x size=256 path=/a b/c")
    assert answer is not None and answer.name == "staged"
    assert answer.fields == {"name": ".x", "size": "256", "path": "/a b/c"}
    assert parse_answer("Welcome to node1") is None


class _LocalShell(Ssh):
    """The node scripts run by this machine's own sh instead of through ssh: scripts,
    files and tools are real, only the transport is left out. corosync.conf is read
    from ``conf`` instead of /etc/corosync (this machine's own is not the test's)."""

    def __init__(self, conf: Path, banner: str = "") -> None:
        super().__init__(multiplex=False, timeout=20)
        self.conf = conf
        self.banner = banner

    def argv(self, node: str, command: str) -> List[str]:
        command = command.replace(NODE_CONF_PATH, str(self.conf))
        return ["sh", "-c", (f"echo '{self.banner}'; " if self.banner else "") + command]


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    directory = tmp_path / "corosync"
    directory.mkdir(mode=0o755)
    return directory


def _shell(keydir: Path, conf: str = "", banner: str = "") -> _LocalShell:
    path = keydir.parent / "corosync.conf"
    if conf:
        path.write_text(conf)
    return _LocalShell(path, banner)


def _push(
    shell: Ssh, keydir: Path, key: bytes, mode: int = 0o400, commit: bool = True
) -> Optional[str]:
    """One node's push session, as push runs it; the staged name (None: unchanged)."""
    session = PushSession(shell, "here")
    session.read_conf()
    staged = session.stage(str(keydir / "authkey"), key, OWNER, mode)
    if staged is None:
        return None
    name = session.staged_name
    if commit:
        session.commit()
    else:
        session.abort()
    return name


def _entries(keydir: Path) -> List[str]:
    return sorted(os.listdir(keydir))


def test_stage_commit_and_unchanged_with_the_real_scripts(keydir: Path) -> None:
    shell = _shell(keydir)
    old, new = generate_key(), generate_key()
    (keydir / "authkey").write_bytes(old)
    (keydir / "authkey").chmod(0o644)  # an exposed key...
    stale = keydir / ".authkey.corokey-push-STALE123"
    stale.write_bytes(b"left by a killed run")
    name = _push(shell, keydir, new)
    assert name is not None and name.startswith(".authkey.corokey-push-")
    assert not stale.exists(), "a stale staged copy is removed by the next stage"
    assert (keydir / "authkey").read_bytes() == new
    info = os.stat(keydir / "authkey")
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_nlink) == (0o400, os.getuid(), 1)
    assert (keydir / "authkey.old").read_bytes() == old
    # ...is not kept exposed as .old
    assert stat.S_IMODE(os.stat(keydir / "authkey.old").st_mode) == 0o600
    assert _entries(keydir) == ["authkey", "authkey.old"]
    assert _push(shell, keydir, new) is None, "unchanged"
    assert _push(shell, keydir, new, mode=0o600) is not None, "mode differs"


def test_an_aborted_or_abandoned_stage_leaves_nothing(keydir: Path) -> None:
    shell = _shell(keydir)
    old = generate_key()
    (keydir / "authkey").write_bytes(old)
    _push(shell, keydir, generate_key(), commit=False)
    assert _entries(keydir) == ["authkey"] and (keydir / "authkey").read_bytes() == old
    # The admin goes away (its end of stdin closes) while the node waits for "commit".
    session = PushSession(shell, "here")
    session.read_conf()
    session.stage(str(keydir / "authkey"), generate_key(), OWNER, 0o400)
    assert any(".corokey-push-" in n for n in _entries(keydir))
    session.session.close()
    assert _entries(keydir) == ["authkey"] and (keydir / "authkey").read_bytes() == old


@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_stage_refuses_a_key_path_that_is_not_a_regular_file(keydir: Path, kind: str) -> None:
    target = keydir / "elsewhere"
    target.write_bytes(b"not to be touched")
    if kind == "symlink":
        (keydir / "authkey").symlink_to(target)
    else:
        (keydir / "authkey").mkdir()
    with pytest.raises(NodeFailure) as caught:
        _push(_shell(keydir), keydir, generate_key())
    assert caught.value.reference == "node-not-regular"
    assert f"is a {kind}" in caught.value.message
    assert target.read_bytes() == b"not to be touched"
    assert not [n for n in _entries(keydir) if ".corokey-push-" in n]


@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_stage_refuses_an_old_copy_that_is_not_a_regular_file(keydir: Path, kind: str) -> None:
    # mv would otherwise move the previous key into that directory, or through the link.
    (keydir / "authkey").write_bytes(generate_key())
    elsewhere = keydir / "elsewhere"
    elsewhere.mkdir()
    if kind == "symlink":
        (keydir / "authkey.old").symlink_to(elsewhere)
    else:
        (keydir / "authkey.old").mkdir()
    with pytest.raises(NodeFailure, match=r"authkey\.old is a (symlink|directory)"):
        _push(_shell(keydir), keydir, generate_key())
    assert os.listdir(elsewhere) == []
    assert not [n for n in _entries(keydir) if ".corokey-push-" in n]


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_key_directory_others_can_write_is_refused(keydir: Path, mode: int) -> None:
    old = generate_key()
    (keydir / "authkey").write_bytes(old)
    keydir.chmod(mode)
    with pytest.raises(NodeFailure) as caught:
        _push(_shell(keydir), keydir, generate_key())
    assert caught.value.reference == "node-unsafe-directory"
    assert str(keydir) in caught.value.message and "chmod go-w" in caught.value.hint
    assert _entries(keydir) == ["authkey"] and (keydir / "authkey").read_bytes() == old


def test_a_parent_others_can_write_is_refused_unless_sticky(keydir: Path) -> None:
    (keydir / "authkey").write_bytes(generate_key())
    parent = keydir.parent
    parent.chmod(0o777)
    try:
        with pytest.raises(NodeFailure, match="can be written by others"):
            _push(_shell(keydir), keydir, generate_key())
        parent.chmod(0o1777)  # /tmp: others cannot rename what is not theirs
        assert _push(_shell(keydir), keydir, generate_key()) is not None
    finally:
        parent.chmod(0o755)


def test_a_second_run_on_the_same_directory_is_refused_not_raced(keydir: Path) -> None:
    # Two runs at once, or two names of one host in one run: the second finds the lock.
    old = generate_key()
    (keydir / "authkey").write_bytes(old)
    holder = os.open(keydir, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(NodeFailure) as caught:
            _push(_shell(keydir), keydir, generate_key())
        assert caught.value.reference == "node-busy"
    finally:
        os.close(holder)
    assert _entries(keydir) == ["authkey"] and (keydir / "authkey").read_bytes() == old


def test_rollback_restores_the_old_key_as_a_file_of_its_own(keydir: Path) -> None:
    old, new = generate_key(), generate_key()
    (keydir / "authkey").write_bytes(new)
    (keydir / "authkey.old").write_bytes(old)
    for name in ("authkey", "authkey.old"):
        (keydir / name).chmod(0o400)
    # The old fixed temp name, planted by someone who can write the directory: ignored.
    planted = keydir / ".authkey.restore.corokey"
    planted.write_bytes(b"planted")
    sha_old = hashlib.sha256(old).hexdigest()
    held = restore_old(_shell(keydir), "here", str(keydir / "authkey"), sha_old)
    assert held.sha256 == sha_old and (keydir / "authkey").read_bytes() == old
    info = os.stat(keydir / "authkey")
    assert (stat.S_IMODE(info.st_mode), info.st_nlink) == (0o400, 1)
    assert planted.read_bytes() == b"planted"
    assert _entries(keydir) == [".authkey.restore.corokey", "authkey", "authkey.old"]


def test_rollback_never_restores_an_old_copy_that_is_not_the_old_key(keydir: Path) -> None:
    new = generate_key()
    (keydir / "authkey").write_bytes(new)
    (keydir / "authkey.old").write_bytes(generate_key())
    wanted = hashlib.sha256(generate_key()).hexdigest()
    with pytest.raises(NodeFailure) as caught:
        restore_old(_shell(keydir), "here", str(keydir / "authkey"), wanted)
    assert caught.value.reference == "node-old-differs"
    assert (keydir / "authkey").read_bytes() == new


def test_push_from_refuses_bytes_that_are_not_the_source_file(keydir: Path) -> None:
    key_path = str(keydir / "authkey")
    (keydir / "authkey").write_bytes(generate_key())
    assert read_key(_shell(keydir), "here", key_path) == (keydir / "authkey").read_bytes()
    # A banner from the node's shell start-up is not taken for part of the key...
    chatty = _shell(keydir, banner="Welcome to node1")
    assert read_key(chatty, "here", key_path) == (keydir / "authkey").read_bytes()

    # ...and bytes that are not the file's are refused, whatever brought them.
    class _Trailing(_LocalShell):
        def argv(self, node: str, command: str) -> List[str]:
            return ["sh", "-c", command + "\necho trailing"]

    with pytest.raises(NodeFailure) as caught:
        read_key(_Trailing(keydir.parent / "corosync.conf"), "here", key_path)
    assert caught.value.reference == "from-read-mismatch"


def test_a_login_banner_does_not_confuse_push_or_look(keydir: Path) -> None:
    chatty = _shell(keydir, banner="Welcome to node1")
    new = generate_key()
    assert _push(chatty, keydir, new) is not None
    view = look(chatty, "here", [str(keydir / "authkey")])
    held = view.keys[str(keydir / "authkey")]
    assert (held.kind, held.size, held.sha256) == ("regular", 256, hashlib.sha256(new).hexdigest())


def test_nodes_say_whether_pacemaker_s_accounts_exist_when_asked(keydir: Path) -> None:
    """The pacemaker profile's owner is decided from them (corokey.pacemaker_access):
    real id and getent, asked of this machine's user database."""
    from corokey.pacemaker_access import Accounts

    shell = _shell(keydir)
    user = OWNER.split(":")[0]
    login = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    missing = "corokey-no-such-user:corokey-no-such-group"
    for asked, expected in (
        (OWNER, Accounts(True, True, login)),
        (missing, Accounts(False, False)),
        (f"{user}:corokey-no-such-group", Accounts(True, False, login)),
    ):
        session = PushSession(shell, "here", asked)
        assert session.read_conf().accounts == expected, asked
        session.abort()
        assert look(shell, "here", [str(keydir / "authkey")], accounts=asked).accounts == expected
    # Not asked (every profile but pacemaker): not said, no id or getent run.
    assert look(shell, "here", [str(keydir / "authkey")]).accounts is None


def test_look_reads_the_conf_and_the_key_it_names(keydir: Path) -> None:
    key = keydir / "cluster.key"
    key.write_bytes(generate_key())
    shell = _shell(keydir, conf=f"totem {{\n  crypto_cipher: aes256\n  keyfile:  {key}  \n}}\n")
    view = look(shell, "here", [str(keydir / "authkey")])
    assert view.conf is not None and view.conf.key_source() == ("file", str(key))
    assert view.keys[str(keydir / "authkey")].kind == "missing"
    assert view.keys[str(key)].sha256 == hashlib.sha256(key.read_bytes()).hexdigest()
    assert view.olds[str(key)].kind == "missing"


def _tiny_tmpfs(keydir: Path) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8k,mode=0755", "tmpfs", str(keydir)], check=True
    )


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_is_named_and_changes_nothing(keydir: Path) -> None:
    _tiny_tmpfs(keydir)
    try:
        old = generate_key()
        (keydir / "authkey").write_bytes(old)
        filler = os.open(keydir / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(filler, b"x" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(filler)
        with pytest.raises(NodeFailure) as caught:
            _push(_shell(keydir), keydir, generate_key(4096))
        assert caught.value.reference == "node-no-space", caught.value.message
        assert sorted(os.listdir(keydir)) == ["authkey", "filler"]
        assert (keydir / "authkey").read_bytes() == old
    finally:
        subprocess.run(["umount", str(keydir)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
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


# ---------------------------------------------------------------------------- where corosync reads


def _views(**confs: str) -> Dict[str, NodeView]:
    from corokey.corosync_conf import parse_conf

    views = {}
    for node, text in confs.items():
        view = NodeView(node)
        view.conf = parse_conf(text) if text else None
        views[node] = view
    return views


CRYPTO = "totem {\n crypto_cipher: aes256\n crypto_hash: sha256\n%s}\n"


def test_the_key_path_comes_from_every_node_s_corosync_conf() -> None:
    from corokey.keylocation import locate
    from corokey.profiles import get_profile

    corosync = get_profile("corosync")
    elsewhere = CRYPTO % " keyfile: /etc/corosync/cluster.key\n"
    assert locate(corosync, None, _views(a=elsewhere, b=elsewhere)) == "/etc/corosync/cluster.key"
    assert locate(corosync, None, _views(a=CRYPTO % "", b="")) == "/etc/corosync/authkey"
    # Keys corosync does not read keep the profile's path.
    assert locate(get_profile("pacemaker"), None, _views(a=elsewhere)) == "/etc/pacemaker/authkey"


@pytest.mark.parametrize(
    ("confs", "key_path", "crypto_off_ok", "reference"),
    [
        (
            {"a": CRYPTO % " keyfile: /k1\n", "b": CRYPTO % " keyfile: /k2\n"},
            None,
            True,
            "key-location-differs",
        ),
        (
            {"a": CRYPTO % " keyfile: /etc/corosync/cluster.key\n"},
            "/etc/corosync/authkey",
            True,
            "key-path-contradicts",
        ),
        ({"a": CRYPTO % " key: 0123456789abcdef\n"}, None, True, "key-inline"),
        ({"a": "totem {\n crypto_cipher: none\n crypto_hash: none\n}\n"}, None, True, "crypto-off"),
        ({"a": "totem {\n version: 2\n}\n"}, "/etc/corosync/authkey", False, "crypto-off"),
    ],
)
def test_contradictions_about_the_key_are_refused(
    confs: Dict[str, str], key_path: Optional[str], crypto_off_ok: bool, reference: str
) -> None:
    from corokey.keylocation import KeyLocationError, locate
    from corokey.profiles import get_profile

    with pytest.raises(KeyLocationError) as caught:
        locate(get_profile("corosync"), key_path, _views(**confs), crypto_off_ok)
    assert caught.value.reference == reference
    assert "0123456789abcdef" not in caught.value.message


def test_a_key_can_be_placed_before_crypto_is_turned_on() -> None:
    from corokey.keylocation import locate
    from corokey.profiles import get_profile

    off = "totem {\n crypto_cipher: none\n crypto_hash: none\n}\n"
    path = locate(get_profile("corosync"), "/etc/corosync/authkey", _views(a=off))
    assert path == "/etc/corosync/authkey"


# ---------------------------------------------------------------------------- verify


def test_verify_inspects_old_copies_and_their_protection(keydir: Path) -> None:
    from corokey.profiles import get_profile
    from corokey.verify import verify

    key = keydir / "authkey"
    key.write_bytes(generate_key())
    key.chmod(0o400)
    os.chown(key, os.getuid(), os.getgid())
    (keydir / "authkey.old").write_bytes(generate_key())
    (keydir / "authkey.old").chmod(0o644)
    profile = get_profile("corosync")
    profile = type(profile)(
        **{
            **{s: getattr(profile, s) for s in profile.__slots__},
            "owner": pwd.getpwuid(os.getuid()).pw_name,
        }
    )
    shell = _shell(keydir)
    report = verify(shell, ["here"], profile, str(key))
    refs = [f.reference for f in report.states[0].findings]
    assert refs == ["old-mode-readable"], refs
    (keydir / "authkey.old").chmod(0o400)
    os.link(keydir / "authkey.old", keydir / "copy")
    refs = [f.reference for f in verify(shell, ["here"], profile, str(key)).states[0].findings]
    assert refs == ["old-hard-links"], refs
    (keydir / "copy").unlink()
    assert verify(shell, ["here"], profile, str(key)).exit_code == 0


def test_verify_on_a_tie_does_not_pick_a_side() -> None:
    from corokey.nodekey import RemoteKey
    from corokey.verify import NodeState, VerifyReport

    states = []
    for node, digest in (("n1", "aa"), ("n2", "bb")):
        state = NodeState(node)
        state.key = RemoteKey(kind="regular", sha256=digest, size=256, mode=0o400, nlink=1)
        states.append(state)
    report = VerifyReport("/etc/corosync/authkey", states)
    assert report.tie and report.fix() is None and report.exit_code == 1
    assert report.odd == ["n1", "n2"]
    third = NodeState("n3")
    third.key = RemoteKey(kind="regular", sha256="aa", size=256, mode=0o400, nlink=1)
    majority = VerifyReport("/etc/corosync/authkey", [*states, third])
    assert majority.fix() == "corokey push --from n1 --nodes n2"


@pytest.mark.skipif(shutil.which("corosync") is None, reason="corosync is not installed here")
def test_look_names_the_node_s_corosync_and_the_bytes_it_uses(keydir: Path) -> None:
    (keydir / "authkey").write_bytes(generate_key())
    view = look(_shell(keydir), "here", [str(keydir / "authkey")])
    version = subprocess.run(["corosync", "-v"], capture_output=True, text=True).stdout
    assert view.corosync_version and f"version '{view.corosync_version}'" in version
    assert view.effective == (128 if view.corosync_version.startswith("2.") else 4096)
