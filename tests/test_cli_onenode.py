"""Scenario tests of corokey fingerprint, check, compare, generate and install.

Each runs the real entry point in a temp dir and checks stdout, stderr, exit
code and the files left behind; a refused run must change nothing at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from tests.cli_helpers import corokey, corokey_bytes, snapshot, write_key

ROOT = os.geteuid() == 0


# ----------------------------------------------------------------------------- fingerprint


def test_fingerprint_matches_sha256sum_and_ssh_style(tmp_path: Path) -> None:
    data = os.urandom(256)
    key = write_key(tmp_path / "authkey", data)
    result = corokey("fingerprint", str(key))
    expected = base64.b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
    assert result.returncode == 0
    assert result.stdout == f"2048 SHA256:{expected} {key} (256 bytes)\n"
    hexed = corokey("fingerprint", "--hex", str(key)).stdout.split()[1]
    sha256sum = subprocess.run(["sha256sum", str(key)], capture_output=True, text=True).stdout
    assert hexed == sha256sum.split()[0]


def test_fingerprint_uses_what_corosync_uses(tmp_path: Path) -> None:
    data = os.urandom(5000)
    key = write_key(tmp_path / "big", data)
    line = corokey("fingerprint", "--hex", str(key)).stdout
    assert line.split()[1] == hashlib.sha256(data[:4096]).hexdigest()
    assert "corosync 3.x uses the first 4096" in line
    v2 = corokey("fingerprint", "--hex", "--corosync2", str(key)).stdout
    assert v2.split()[1] == hashlib.sha256(data[:128]).hexdigest()


def test_fingerprint_of_stdin_json_and_randomart(tmp_path: Path) -> None:
    data = os.urandom(300)
    result = corokey("fingerprint", "--json", "-", input=data)
    document = json.loads(result.stdout)
    assert document["keys"][0]["size"] == 300
    assert document["keys"][0]["sha256_hex"] == hashlib.sha256(data).hexdigest()
    art = corokey("fingerprint", "-v", str(write_key(tmp_path / "k", data))).stdout.splitlines()
    assert art[1].startswith("+") and "[COROSYNC 2400]" in art[1] and art[-1].endswith("+")
    assert len(art) == 1 + 11 and sum(row.count("S") for row in art[2:-1]) <= 2


def test_fingerprint_never_prints_key_bytes(tmp_path: Path) -> None:
    data = bytes(range(65, 65 + 26)) * 10  # printable, so a leak would show as text
    key = write_key(tmp_path / "k", data)
    for args in (
        ["fingerprint", str(key)],
        ["fingerprint", "--json", str(key)],
        ["check", "--json", str(key)],
        ["compare", str(key), str(key)],
    ):
        result = corokey(*args)
        assert "ABCDEFGHIJ" not in result.stdout + result.stderr
        assert data[:8].hex() not in result.stdout + result.stderr


def test_fingerprint_of_a_missing_file_is_an_error_line_and_a_hint_exit_2(tmp_path: Path) -> None:
    result = corokey("fingerprint", str(tmp_path / "nope"))
    assert result.returncode == 2
    error, hint = result.stderr.splitlines()
    assert error == f"corokey: error[read-failed]: cannot read {tmp_path / 'nope'}: " + (
        "No such file or directory"
    )
    assert (
        hint == f"hint: check the path, or create a key with: corokey generate {tmp_path / 'nope'}"
    )


def test_an_unknown_command_is_a_usage_error_with_a_hint() -> None:
    result = corokey("frobnicate")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "corokey: error[usage]: unknown command 'frobnicate'",
        "hint: run 'corokey --help' for the list",
    ]


# ----------------------------------------------------------------------------- check


@pytest.mark.root
@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the key must be root's: the corosync profile's owner check fails on any other",
)
def test_check_exit_codes_and_json(tmp_path: Path) -> None:
    clean = write_key(tmp_path / "clean", os.urandom(256))
    long = write_key(tmp_path / "long", os.urandom(5000))
    short = write_key(tmp_path / "short", os.urandom(100))
    assert corokey("check", str(clean)).returncode == 0
    assert corokey("check", str(long)).returncode == 1
    result = corokey("check", str(clean), str(long), str(short))
    assert result.returncode == 2
    assert "error[too-short]" in result.stdout and "fix: corokey generate" in result.stdout
    document = json.loads(corokey("check", "--json", str(short)).stdout)
    assert document["keys"][0]["status"] == "error"
    assert document["keys"][0]["findings"][0]["reference"] == "too-short"


@pytest.mark.root
@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the key must be root's: the corosync profile's owner check fails on any other",
)
def test_check_fips_flag_and_stdin(tmp_path: Path) -> None:
    key = write_key(tmp_path / "k", os.urandom(512))
    assert corokey("check", str(key)).returncode == 0
    result = corokey("check", "--fips", str(key))
    assert result.returncode == 2 and "fips-too-long" in result.stdout
    assert corokey("check", "-", input=b"A" * 300).returncode == 2


def test_check_leaves_files_alone(tmp_path: Path) -> None:
    write_key(tmp_path / "k", os.urandom(256), 0o644)
    before = snapshot(tmp_path)
    assert corokey("check", str(tmp_path / "k")).returncode == 2
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- compare


def test_compare_same_and_different(tmp_path: Path) -> None:
    data = os.urandom(256)
    a = write_key(tmp_path / "a", data)
    b = write_key(tmp_path / "b", data)
    c = write_key(tmp_path / "c", os.urandom(256))
    same = corokey("compare", str(a), str(b))
    assert same.returncode == 0 and "corosync 3: same key" in same.stdout
    different = corokey("compare", str(a), str(b), str(c))
    assert different.returncode == 1 and "DIFFERENT" in different.stdout


def test_compare_ignores_what_corosync_ignores(tmp_path: Path) -> None:
    head = os.urandom(4096)
    a = write_key(tmp_path / "a", head + b"x" * 10)
    b = write_key(tmp_path / "b", head + os.urandom(50))
    result = corokey("compare", str(a), str(b))
    assert result.returncode == 0
    assert "differ only past what corosync reads" in result.stdout


def test_compare_corosync2_sees_only_128_bytes(tmp_path: Path) -> None:
    head = os.urandom(128)
    a = write_key(tmp_path / "a", head + os.urandom(128))
    b = write_key(tmp_path / "b", head + os.urandom(128))
    assert corokey("compare", str(a), str(b)).returncode == 1
    result = corokey("compare", "--corosync2", "--json", str(a), str(b))
    assert result.returncode == 0
    assert json.loads(result.stdout)["same_corosync2"] is True


def test_compare_needs_two_files(tmp_path: Path) -> None:
    result = corokey("compare", str(write_key(tmp_path / "a", os.urandom(256))))
    assert result.returncode == 2 and "at least two" in result.stderr


# ----------------------------------------------------------------------------- generate


def test_generate_creates_parents_and_protects_the_key(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "corosync" / "authkey"
    result = corokey("generate", str(path))
    assert result.returncode == 0, result.stderr
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o400 and st.st_size == 256
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
    assert "SHA256:" in result.stdout
    if ROOT:
        assert (st.st_uid, st.st_gid) == (0, 0)


def test_generate_refuses_to_replace_without_force(tmp_path: Path) -> None:
    key = write_key(tmp_path / "authkey", os.urandom(256))
    before = snapshot(tmp_path)
    result = corokey("generate", str(key))
    assert result.returncode == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert snapshot(tmp_path) == before


def test_generate_force_keeps_the_old_key(tmp_path: Path) -> None:
    old = os.urandom(256)
    key = write_key(tmp_path / "authkey", old)
    result = corokey("generate", "--force", "--json", str(key))
    assert result.returncode == 0
    assert json.loads(result.stdout)["old_path"] == f"{key}.old"
    assert (tmp_path / "authkey.old").read_bytes() == old
    assert stat.S_IMODE((tmp_path / "authkey.old").stat().st_mode) == 0o400
    assert key.read_bytes() != old


def test_generate_profiles_and_sizes(tmp_path: Path) -> None:
    fence = tmp_path / "fence_xvm.key"
    assert corokey("generate", "--profile", "fence-xvm", str(fence)).returncode == 0
    assert fence.stat().st_size == 512 and stat.S_IMODE(fence.stat().st_mode) == 0o600
    assert corokey("generate", "-s", "4096", str(tmp_path / "big")).returncode == 0
    before = snapshot(tmp_path)
    result = corokey("generate", "-s", "127", str(tmp_path / "small"))
    assert result.returncode == 2 and "supported <128,4096>" in result.stderr
    assert snapshot(tmp_path) == before


def test_generate_to_stdout_pipe_and_file(tmp_path: Path) -> None:
    result = corokey_bytes("generate", "-s", "300", "-")
    assert result.returncode == 0 and len(result.stdout) == 300 and result.stderr == b""
    out = tmp_path / "out"
    with open(out, "wb") as handle:
        os.chmod(out, 0o644)
        warned = subprocess.run(
            [sys.executable, "-m", "corokey", "generate", "-"],
            stdout=handle,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert warned.returncode == 0 and out.stat().st_size == 256
    assert b"readable by others" in warned.stderr


def _run_on_terminal(args: list, answer: bytes) -> tuple[int, bytes]:  # type: ignore[type-arg]
    pid, fd = pty.fork()
    if pid == 0:  # child: the terminal is stdin, stdout and stderr
        os.execv(sys.executable, [sys.executable, "-m", "corokey", *args])  # noqa: S606
    output = b""
    sent = False
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if b"(y/n)?" in output and not sent:
            os.write(fd, answer)
            sent = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


def test_generate_asks_on_a_terminal(tmp_path: Path) -> None:
    old = os.urandom(256)
    key = write_key(tmp_path / "authkey", old)
    code, output = _run_on_terminal(["generate", str(key)], b"n\n")
    assert b"Overwrite (y/n)?" in output and code == 2
    assert key.read_bytes() == old
    code, output = _run_on_terminal(["generate", str(key)], b"y\n")
    assert code == 0 and key.read_bytes() != old


def test_generate_refuses_raw_key_on_a_terminal(tmp_path: Path) -> None:
    code, output = _run_on_terminal(["generate", "-"], b"")
    assert code == 2 and b"refusing to write a raw key to a terminal" in output


def test_generate_pacemaker_without_its_user_is_root_s(tmp_path: Path) -> None:
    """Where hacluster does not exist only pacemaker-remoted reads the key, as root
    (corokey.pacemaker_access.owner_for); tests/cluster/test_pacemaker_remote.py runs it on
    such a remote node."""
    try:
        import pwd

        pwd.getpwnam("hacluster")
        pytest.skip("hacluster exists here")
    except KeyError:
        pass
    if not ROOT:
        pytest.skip("owners are only set by root")
    result = corokey("generate", "--profile", "pacemaker", str(tmp_path / "authkey"))
    assert result.returncode == 0, result.stderr
    info = (tmp_path / "authkey").stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, 0, 0o400)


def test_generate_refuses_a_symlink(tmp_path: Path) -> None:
    target = write_key(tmp_path / "real", b"x" * 256)
    (tmp_path / "authkey").symlink_to(target)
    before = snapshot(tmp_path)
    result = corokey("generate", "--force", str(tmp_path / "authkey"))
    assert result.returncode == 2 and "symbolic link" in result.stderr
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- install


def test_install_like_install_D(tmp_path: Path) -> None:
    data = os.urandom(256)
    src = write_key(tmp_path / "src", data, 0o644)
    dest = tmp_path / "etc" / "corosync" / "authkey"
    result = corokey("install", str(src), str(dest))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"installed {src} -> {dest}")
    assert dest.read_bytes() == data and stat.S_IMODE(dest.stat().st_mode) == 0o400
    if ROOT:
        assert (dest.stat().st_uid, dest.stat().st_gid) == (0, 0)


def test_install_unchanged_touches_nothing(tmp_path: Path) -> None:
    data = os.urandom(256)
    src = write_key(tmp_path / "src", data)
    dest = tmp_path / "authkey"
    assert corokey("install", str(src), str(dest)).returncode == 0
    before = snapshot(tmp_path)
    result = corokey("install", str(src), str(dest))
    assert result.returncode == 0 and result.stdout.startswith("unchanged:")
    assert snapshot(tmp_path) == before


def test_install_replaces_keeps_old_and_fixes_mode(tmp_path: Path) -> None:
    old, new = os.urandom(256), os.urandom(256)
    dest = write_key(tmp_path / "authkey", old, 0o644)
    src = write_key(tmp_path / "src", new)
    result = corokey("install", "--json", str(src), str(dest))
    assert json.loads(result.stdout)["result"] == "installed"
    assert dest.read_bytes() == new and stat.S_IMODE(dest.stat().st_mode) == 0o400
    assert (tmp_path / "authkey.old").read_bytes() == old
    # Same key, wrong mode: rewritten, not "unchanged".
    dest.chmod(0o600)
    assert (
        json.loads(corokey("install", "--json", str(src), str(dest)).stdout)["result"]
        == "installed"
    )
    assert stat.S_IMODE(dest.stat().st_mode) == 0o400


def test_install_refuses_a_bad_source_unless_forced(tmp_path: Path) -> None:
    src = write_key(tmp_path / "src", os.urandom(64).hex().encode()[:100])
    dest = write_key(tmp_path / "authkey", os.urandom(256))
    before = snapshot(tmp_path)
    result = corokey("install", str(src), str(dest))
    assert result.returncode == 2
    assert "refusing to install" in result.stderr and "Could only read 800 bits" in result.stderr
    assert snapshot(tmp_path) == before
    assert corokey("install", "--force", str(src), str(dest)).returncode == 0
    assert dest.read_bytes() == src.read_bytes()


def test_install_from_stdin(tmp_path: Path) -> None:
    data = os.urandom(512)
    dest = tmp_path / "authkey"
    result = corokey("install", "-", str(dest), input=data)
    assert result.returncode == 0, result.stderr
    assert dest.read_bytes() == data


def test_install_refuses_a_symlinked_destination(tmp_path: Path) -> None:
    src = write_key(tmp_path / "src", os.urandom(256))
    victim = write_key(tmp_path / "victim", b"v" * 10, 0o644)
    (tmp_path / "authkey").symlink_to(victim)
    before = snapshot(tmp_path)
    result = corokey("install", str(src), str(tmp_path / "authkey"))
    assert result.returncode == 2
    assert snapshot(tmp_path) == before


def test_unknown_command_and_version() -> None:
    result = corokey("frobnicate")
    assert result.returncode == 2 and "unknown command 'frobnicate'" in result.stderr
    assert corokey("--version").stdout.startswith("corokey ")


@pytest.mark.parametrize(
    "args",
    [["fingerprint", "-"], ["check", "-"], ["compare", "-", "OTHER"], ["install", "-", "DEST"]],
)
def test_reading_a_key_from_a_terminal_is_refused(tmp_path: Path, args: List[str]) -> None:
    # Otherwise the command waits silently while whatever is typed echoes (install would
    # then install it).
    other = write_key(tmp_path / "other", os.urandom(256))
    argv = [a.replace("OTHER", str(other)).replace("DEST", str(tmp_path / "dest")) for a in args]
    code, output = _run_on_terminal(argv, b"")
    assert code == 2 and b"refusing to read a key from a terminal" in output
    assert not (tmp_path / "dest").exists()


def test_standard_input_over_the_limit_is_refused_not_cut() -> None:
    result = corokey("fingerprint", "-", input=os.urandom((1 << 20) + 1))
    assert result.returncode == 2 and "holds more than 1048576 bytes" in result.stderr
    whole = corokey("fingerprint", "-", input=os.urandom(1 << 20))
    assert whole.returncode == 0 and "(1048576 bytes," in whole.stdout


@pytest.mark.parametrize("command", [["compare", "-", "-"], ["fingerprint", "-", "-"]])
def test_standard_input_named_twice_is_refused(command: List[str]) -> None:
    result = corokey(*command, input=os.urandom(256))
    assert result.returncode == 2 and "named more than once" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["generate", ""], ["generate", "--force", ""], ["install", "SRC", ""], ["push", ""]],
)
def test_an_empty_path_is_an_error_never_the_default(tmp_path: Path, args: List[str]) -> None:
    src = write_key(tmp_path / "src", os.urandom(256))
    result = corokey(*[a.replace("SRC", str(src)) for a in args], "--profile", "corosync")
    assert result.returncode == 2 and "is empty" in result.stderr, result.stderr


def test_a_zero_size_is_refused_not_the_default(tmp_path: Path) -> None:
    result = corokey("generate", "-s", "0", str(tmp_path / "k"))
    assert result.returncode == 2 and "0 bytes is not supported" in result.stderr
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("command", ["check", "fingerprint", "install", "generate"])
def test_a_path_through_a_file_is_a_clear_error(tmp_path: Path, command: str) -> None:
    key = write_key(tmp_path / "authkey", os.urandom(256))
    args = [str(key), str(key / "x")] if command == "install" else [str(key / "x")]
    result = corokey(command, *args)
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr and "Not a directory" in result.stderr


def test_an_exposed_key_is_not_kept_exposed_as_old(tmp_path: Path) -> None:
    # The replaced key may still be the live key of other nodes.
    old = os.urandom(256)
    key = write_key(tmp_path / "authkey", old, mode=0o644)
    result = corokey("generate", "--force", str(key))
    assert result.returncode == 0, result.stderr
    kept = tmp_path / "authkey.old"
    assert kept.read_bytes() == old and stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_verify_without_an_ssh_client_says_so_and_leaves_home_alone(tmp_path: Path) -> None:
    """No ssh client on the admin's machine: verify stops with no-ssh before it makes its
    connection directory under the user's home (an admin machine keeps no trace of a
    command that could not run)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python3")
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"}
    (tmp_path / "home").mkdir()
    import corokey

    env["PYTHONPATH"] = str(Path(corokey.__file__).resolve().parent.parent)  # src, or pybuild's
    result = subprocess.run(
        [str(bin_dir / "python3"), "-m", "corokey", "verify", "--nodes", "node1,node2"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert "corokey: error[no-ssh]:" in result.stderr, result.stderr
    assert list((tmp_path / "home").iterdir()) == []
