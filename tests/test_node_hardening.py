"""Issue 16, parts 3 and 6, on this machine: the real node scripts run by real shells
(sh, bash, zsh, and as another user through setpriv), real files and real ssh option
processing; the transport is a local shell (tests/test_push_unit.py's ``_LocalShell``)
or, for a node that misbehaves, a fake node script in its place.

The same defects on real sshd test hosts: tests/cluster/test_node_logins.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, List

import pytest

from corokey.key import generate_key
from corokey.nodekey import NodeFailure, PushSession, look
from corokey.profiles import get_profile
from corokey.remote import MAX_LINE, MAX_OUTPUT, Ssh
from corokey.verify import NodeState, VerifyReport, key_findings
from tests.test_push_unit import OWNER, _LocalShell

NOBODY = 65534


def _as_nobody(argv: List[str]) -> List[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


class _Nobody(_LocalShell):
    """The node scripts as a non-root login would run them."""

    def argv(self, node: str, command: str) -> List[str]:
        return _as_nobody(super().argv(node, command))


class _FakeNode(Ssh):
    """A node whose sshd runs ``script`` (sh) whatever corokey asked for."""

    def __init__(self, script: str) -> None:
        super().__init__(multiplex=False, timeout=20)
        self.script = script

    def argv(self, node: str, command: str) -> List[str]:
        return ["sh", "-c", self.script]


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's tmp_path is root's alone)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to run scripts as another user")
    directory = Path(tempfile.mkdtemp(prefix="corokey-node-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


# ------------------------------------------------------------------ part 3


@pytest.mark.parametrize("size", [200, 5000])
def test_a_key_the_login_cannot_read_has_no_fingerprint(public_dir: Path, size: int) -> None:
    """200 bytes: hashed whole (sha256sum failed, the hash was empty); 5000: past the 4096
    compared (head | sha256sum hashed the empty input, the same on every node)."""
    conf = public_dir / "corosync.conf"
    conf.write_text("")
    keys = []
    for name in ("a", "b"):
        (public_dir / name).mkdir(mode=0o755)
        keys.append(str(public_dir / name / "authkey"))
        Path(keys[-1]).write_bytes(generate_key(min(size, 4096)) + os.urandom(max(0, size - 4096)))
        Path(keys[-1]).chmod(0o400)
    views = [look(_Nobody(conf), "here", [path]) for path in keys]
    held = [view.keys[path] for view, path in zip(views, keys)]
    assert [(k.kind, k.size, k.unreadable) for k in held] == [
        ("regular", size, "permission-denied")
    ] * 2
    assert [(k.sha256, k.used) for k in held] == [(None, None)] * 2, "never a fingerprint"
    # verify's verdict on these two nodes: it could not tell (2), and says why.
    states = []
    for node, view, path in zip(("node1", "node2"), views, keys):
        state = NodeState(node)
        state.view, state.key = view, view.keys[path]
        state.findings = key_findings(view, path, get_profile(None), False, f"{node}:{path}")
        states.append(state)
    report = VerifyReport(keys[0], states)
    assert report.exit_code == 2 and report.unreadable == ["node1", "node2"]
    assert report.odd == [] and report.fix() is None
    first = states[0].findings[0]
    assert first.reference == "node-unreadable"
    assert first.message == f"here: cannot read {keys[0]} (permission-denied), so its " + (
        "fingerprint is unknown"
    )
    assert "log in as root" in (first.fix or "")


def test_a_key_that_fails_with_an_io_error_has_no_fingerprint(tmp_path: Path) -> None:
    """A real EIO: a live process's /proc/PID/mem is a regular file of size 0 whose offset
    0 is never mapped (this test's own process, which outlives the script)."""
    mem = f"/proc/{os.getpid()}/mem"
    held = look(_LocalShell(_conf(tmp_path)), "here", [mem]).keys[mem]
    assert (held.kind, held.unreadable, held.sha256, held.used) == (
        "regular",
        "io-error",
        None,
        None,
    )


def test_root_reads_the_same_keys(public_dir: Path) -> None:
    conf = public_dir / "corosync.conf"
    conf.write_text("")
    key = generate_key(4096) + b"tail ignored by corosync"
    path = public_dir / "authkey"
    path.write_bytes(key)
    held = look(_LocalShell(conf), "here", [str(path)]).keys[str(path)]
    import hashlib

    assert held.unreadable is None and held.sha256 == hashlib.sha256(key[:4096]).hexdigest()


# ------------------------------------------------------------------ part 6: directories


def _conf(directory: Path) -> Path:
    conf = directory / "corosync.conf"
    conf.write_text("")
    return conf


def test_an_unsafe_parent_of_the_key_directory_is_a_finding(tmp_path: Path) -> None:
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o777)
    keydir = parent / "corosync"
    keydir.mkdir(mode=0o755)
    key = keydir / "authkey"
    key.write_bytes(generate_key())
    key.chmod(0o400)
    view = look(_LocalShell(_conf(tmp_path)), "here", [str(key)])
    findings = key_findings(view, str(key), get_profile(None), False, f"here:{key}")
    unsafe = [f for f in findings if f.reference == "directory-writable"]
    assert len(unsafe) == 1, findings
    assert f"mode 777 at {parent}" in unsafe[0].message
    assert unsafe[0].fix == f"chown root {parent} && chmod go-w {parent}"


@pytest.mark.skipif(os.geteuid() != 0, reason="the directories must be root's, as on a node")
def test_a_linked_key_directory_is_judged_where_it_leads(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    (tmp_path / "etc").mkdir(mode=0o755)
    (tmp_path / "etc" / "corosync").symlink_to(open_dir)
    key = tmp_path / "etc" / "corosync" / "authkey"
    key.write_bytes(generate_key())
    key.chmod(0o400)
    view = look(_LocalShell(_conf(tmp_path)), "here", [str(key)])
    findings = key_findings(view, str(key), get_profile(None), False, f"here:{key}")
    assert [f.message for f in findings if f.reference == "directory-writable"] == [
        f"here:{key}: others can write to its directory (owner uid 0, mode 777 at {open_dir})"
    ]
    # The directory holding the link counts too: whoever writes there can swap the link.
    open_dir.chmod(0o755)
    (tmp_path / "etc").chmod(0o777)
    view = look(_LocalShell(_conf(tmp_path)), "here", [str(key)])
    assert view.unsafe_at == {str(key): str(tmp_path / "etc")}


def test_a_sticky_world_writable_key_directory_is_unsafe(tmp_path: Path) -> None:
    keydir = tmp_path / "corosync"
    keydir.mkdir()
    keydir.chmod(0o1777)
    conf = _conf(tmp_path)
    session = PushSession(_LocalShell(conf), "here")
    session.read_conf()
    with pytest.raises(NodeFailure) as caught:
        session.stage(str(keydir / "authkey"), generate_key(), OWNER, 0o400)
    assert caught.value.reference == "node-unsafe-directory"
    assert "mode 1777" in caught.value.message
    assert os.listdir(keydir) == []
    view = look(_LocalShell(conf), "here", [str(keydir / "authkey")])
    assert view.unsafe_at == {str(keydir / "authkey"): str(keydir)}
    # Above the key's directory a sticky one stays fine (as /tmp): others cannot rename it.
    keydir.chmod(0o755)
    tmp_path.chmod(0o1777)
    assert look(_LocalShell(conf), "here", [str(keydir / "authkey")]).unsafe_at == {}


def test_old_is_linked_under_a_name_nobody_could_plant(tmp_path: Path) -> None:
    keydir = tmp_path / "corosync"
    keydir.mkdir(mode=0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    old = generate_key()
    (keydir / "authkey").write_bytes(old)
    (keydir / "authkey").chmod(0o400)
    # The fixed name the previous key used to be linked under, as a link to elsewhere.
    (keydir / ".authkey.old.corokey-push-").symlink_to(elsewhere)
    session = PushSession(_LocalShell(_conf(tmp_path)), "here")
    session.read_conf()
    new = generate_key()
    session.stage(str(keydir / "authkey"), new, OWNER, 0o400)
    session.commit()
    assert os.listdir(elsewhere) == [], "no link of the key outside its directory"
    assert not (keydir / "authkey.old").is_symlink()
    assert (keydir / "authkey.old").read_bytes() == old
    assert (keydir / "authkey").read_bytes() == new
    leftovers = [n for n in os.listdir(keydir) if n.startswith(".authkey.old.corokey-push-")]
    assert leftovers == [".authkey.old.corokey-push-"], "only the planted link, untouched"


# ------------------------------------------------------------------ part 6: the transport


SHELLS = [s for s in ("sh", "bash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh") if shutil.which(s)]
#: Octal arithmetic (0777 & 022 is 18 in sh; zsh and ksh93 read 0777 as decimal: 0),
#: every kind of quote, a backslash, history and escape characters.
PROBE = r"""o=$((0777 & 022)); printf '%s|%s\n' "$o" 'q " '"'"' \\ ! ~. done'
"""


@pytest.mark.parametrize("shell", SHELLS)
def test_the_node_scripts_run_under_bin_sh_whatever_the_login_shell(
    shell: str, tmp_path: Path
) -> None:
    """sshd runs the remote command with the login shell's -c. zsh reads $((0755)) as
    decimal, so dir_unsafe passed a 0777 directory there."""
    command = Ssh(multiplex=False).argv("node1", PROBE)[-1]
    result = subprocess.run([shell, "-c", command], capture_output=True, text=True, timeout=30)
    assert result.stdout == "18|q \" ' \\\\ ! ~. done\n", (shell, result.stderr)


def test_zsh_is_there_to_test_with() -> None:
    if not (Path(__file__).resolve().parent.parent / "scripts" / "test.sh").exists():
        pytest.skip("not the source checkout: zsh is the test machine's (scripts/test.sh)")
    assert "zsh" in SHELLS, "zsh is not installed (sh scripts/test.sh installs it)"


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client here")
def test_no_terminal_whatever_ssh_config_says(tmp_path: Path) -> None:
    """-G prints the options ssh would use: with RequestTTY force in ssh_config, a
    terminal would read the key's bytes as line editing and signals."""
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n    RequestTTY force\n    EscapeChar ~\n")
    argv = Ssh(config=str(config), multiplex=False).argv("node1", "true")
    options = [*argv[: argv.index("--")], "-G", "node1"]
    effective = subprocess.run(options, capture_output=True, text=True, check=True).stdout
    lines = effective.splitlines()
    assert [x for x in lines if x.startswith("requesttty ")] in (
        ["requesttty no"],
        ["requesttty false"],  # how OpenSSH 9.2 prints -T
    )
    assert "escapechar none" in lines
    admin = Ssh(multiplex=False, options=["RequestTTY=force"]).argv("node1", "true")
    assert admin.index("-T") < admin.index("RequestTTY=force"), "the first value wins in ssh"


def test_a_stream_of_other_lines_before_an_answer_is_read_in_a_loop() -> None:
    node = _FakeNode(
        "echo --corokey--; i=0; while [ $i -lt 3000 ]; do echo 'not an answer'; i=$((i+1)); "
        "done; echo 'corokey-result corosync'; read -r x; "
        "i=0; while [ $i -lt 3000 ]; do echo noise; i=$((i+1)); done; "
        "echo 'corokey-result unchanged kind=regular'; cat > /dev/null"
    )
    session = PushSession(node, "here")
    session.read_conf()
    assert session.stage("/etc/corosync/authkey", generate_key(), "root:root", 0o400) is None


@pytest.mark.parametrize(
    ("output", "why"),
    [
        ("head -c 3000000 /dev/zero", f"a line of more than {MAX_LINE} bytes"),
        (
            f"yes 'corokey-result text noise' | head -n {MAX_OUTPUT // 20}",
            f"more than {MAX_OUTPUT // 1048576} MiB",
        ),
    ],
)
def test_what_a_node_sends_is_read_in_bounded_amounts(output: str, why: str) -> None:
    node = _FakeNode(
        "echo --corokey--; echo 'corokey-result corosync version=3.1.7 effective=4096'; "
        f"{output}; echo; echo 'corokey-result key kind=missing path=/etc/corosync/authkey'"
    )
    with pytest.raises(NodeFailure) as caught:
        look(node, "node1", ["/etc/corosync/authkey"])
    assert caught.value.reference == "node-session-lost"
    assert why in caught.value.message


# ------------------------------------------------------------------ part 6: printing


def test_what_nodes_said_reaches_the_terminal_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """Ring ids, reload status and versions come from the nodes' tools; an escape sequence
    among them must not reach the admin's terminal (here: clear the screen)."""
    from corokey.cli import push as push_cli
    from corokey.cli import rotate as rotate_cli
    from corokey.push import PushReport
    from corokey.rotate import RotateReport

    clear = "\x1b[2J"
    report = RotateReport("a" * 64, "b" * 64)
    report.steps.append(f"preflight: corosync {clear}3.1.7 everywhere")
    report.nodes["node1"] = f"ring id changed from 1.{clear}5 to 1.6"
    rotate_cli._show(report, False, "SHA256:new")
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "ring id changed from 1.\\x1b[2J5 to 1.6" in shown
    pushed = PushReport("SHA256:x", 256)
    pushed.states["node1"] = "failed"
    pushed.reasons["node1"] = f"node1: the session ended ({clear})"
    push_cli._show(pushed, False)
    assert "\x1b" not in capsys.readouterr().out
