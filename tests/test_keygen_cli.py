"""Scenario tests of our corosync-keygen where it deliberately does better than the C tool."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from tests.keygen_helpers import is_root, our_keygen, run_tool, temp_files


def _run(tmp_path: Path, *args: str, umask: int | None = None):  # type: ignore[no-untyped-def]
    return run_tool(our_keygen(), list(args), tmp_path, umask=umask)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077, 0o777])
def test_mode_is_0400_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    result = _run(tmp_path, "-k", str(tmp_path / "authkey"), umask=umask)
    assert result.returncode == 0, result.stderr
    st = (tmp_path / "authkey").stat()
    assert stat.S_IMODE(st.st_mode) == 0o400
    assert st.st_size == 256


def test_symlink_at_target_is_refused_and_left_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "authkey"
    link.symlink_to(victim)
    result = _run(tmp_path, "-k", str(link))
    assert result.returncode == 2
    first = result.stderr.decode().splitlines()[0]
    expected = f"Could not create {link}: it is a symbolic link to {victim}; refusing to replace it"
    assert first == f"corosync-keygen: {expected}"
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert victim.read_bytes() == b"precious"
    assert temp_files(tmp_path) == []


def test_dangling_symlink_is_refused_too(tmp_path: Path) -> None:
    link = tmp_path / "authkey"
    link.symlink_to(tmp_path / "nowhere")
    assert _run(tmp_path, "-k", str(link)).returncode == 2
    assert not (tmp_path / "nowhere").exists()


def test_fifo_at_target_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "authkey"
    os.mkfifo(fifo)
    result = _run(tmp_path, "-k", str(fifo))
    assert result.returncode == 2
    assert "fifo" in result.stderr.decode()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_existing_key_is_replaced_by_a_new_inode(tmp_path: Path) -> None:
    key = tmp_path / "authkey"
    key.write_bytes(b"o" * 256)
    key.chmod(0o644)
    old_inode = key.stat().st_ino
    result = _run(tmp_path, "-k", str(key))
    assert result.returncode == 0
    st = key.stat()
    assert st.st_ino != old_inode
    assert stat.S_IMODE(st.st_mode) == 0o400
    assert key.read_bytes() != b"o" * 256
    assert temp_files(tmp_path) == []


@pytest.mark.skipif(not is_root(), reason="needs root to chown")
def test_root_makes_the_key_root_owned(tmp_path: Path) -> None:
    key = tmp_path / "authkey"
    key.write_bytes(b"o" * 256)
    os.chown(key, 12345, 12345)
    assert _run(tmp_path, "-k", str(key)).returncode == 0
    st = key.stat()
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_missing_parent_directory_is_exit_2(tmp_path: Path) -> None:
    result = _run(tmp_path, "-k", str(tmp_path / "no" / "authkey"))
    assert result.returncode == 2
    assert not (tmp_path / "no").exists()


def test_stale_temp_of_a_killed_run_is_removed(tmp_path: Path) -> None:
    # A PID that cannot be alive: above the kernel's pid_max.
    stale = tmp_path / ".authkey.corokey-4194399-deadbeef.tmp"
    stale.write_bytes(b"x" * 100)
    stale.chmod(0o400)
    other = tmp_path / ".otherkey.corokey-4194399-deadbeef.tmp"
    other.write_bytes(b"y")
    assert _run(tmp_path, "-k", str(tmp_path / "authkey")).returncode == 0
    assert not stale.exists()
    assert other.exists(), "temp files of other keys are not ours to remove"


def test_temp_of_a_live_writer_is_kept(tmp_path: Path) -> None:
    live = tmp_path / f".authkey.corokey-{os.getpid()}-0badf00d.tmp"
    live.write_bytes(b"x")
    assert _run(tmp_path, "-k", str(tmp_path / "authkey")).returncode == 0
    assert live.exists()


def test_dash_m_is_the_random_file(tmp_path: Path) -> None:
    source = tmp_path / "rand"
    source.write_bytes(bytes(range(256)) * 2)
    result = _run(tmp_path, "-m", str(source), "-k", str(tmp_path / "authkey"))
    assert result.returncode == 0
    assert (tmp_path / "authkey").read_bytes() == bytes(range(256))
    assert f"Gathering 2048 bits for key from {source}." in result.stdout.decode()


def test_random_file_that_ends_early_is_an_error_not_a_hang(tmp_path: Path) -> None:
    source = tmp_path / "short"
    source.write_bytes(b"a" * 100)
    key = tmp_path / "authkey"
    key.write_bytes(b"old" * 50)
    result = _run(tmp_path, "-r", str(source), "-k", str(key))
    assert result.returncode == 1
    assert result.stderr.decode().splitlines()[0] == f"corosync-keygen: Unexpected end of {source}"
    assert key.read_bytes() == b"old" * 50


def test_default_source_never_prompts_even_without_l(tmp_path: Path) -> None:
    result = _run(tmp_path, "-k", str(tmp_path / "authkey"))
    assert b"Press keys" not in result.stdout
    assert result.stdout.decode().splitlines() == [
        "Corosync Cluster Engine Authentication key generator.",
        "Gathering 2048 bits for key from /dev/urandom.",
        f"Writing corosync key to {tmp_path / 'authkey'}.",
    ]


def test_dev_random_prompts_like_the_c_tool(tmp_path: Path) -> None:
    result = _run(tmp_path, "-r", "/dev/random", "-s", "128", "-k", str(tmp_path / "authkey"))
    assert result.returncode == 0
    assert "Press keys on your keyboard to generate entropy." in result.stdout.decode()


def test_errors_carry_a_hint_line(tmp_path: Path) -> None:
    result = _run(tmp_path, "-k", str(tmp_path / "no" / "authkey"))
    lines = result.stderr.decode().splitlines()
    assert lines[1].startswith("corosync-keygen: hint: ")
    assert "mkdir -p" in lines[1]


def test_key_bytes_never_reach_stdout_or_stderr(tmp_path: Path) -> None:
    key_bytes = bytes(range(7, 7 + 200)) + b"\x01" * 56
    source = tmp_path / "rand"
    source.write_bytes(key_bytes)
    outputs = []
    for args in (
        ["-r", str(source), "-k", str(tmp_path / "authkey")],
        ["-r", str(source), "-k", str(tmp_path / "no" / "authkey")],
        ["-r", str(source), "-s", "300", "-k", str(tmp_path / "k2")],
    ):
        result = _run(tmp_path, *args)
        outputs.append(result.stdout + result.stderr)
    assert (tmp_path / "authkey").read_bytes() == key_bytes
    for output in outputs:
        for needle in (
            key_bytes[:16],
            key_bytes[:16].hex().encode(),
            base64.b64encode(key_bytes[:12]),
        ):
            assert needle not in output


def test_secret_content_repr_hides_the_bytes(tmp_path: Path) -> None:
    from corokey.secretfile import read_secret

    key = tmp_path / "authkey"
    key.write_bytes(b"SECRETSECRET" * 20)
    content = read_secret(str(key))
    assert b"SECRET" not in repr(content).encode()
    assert "240 bytes" in repr(content)
