"""Every step of the key write failing: old key intact, no temp left, the C tool's exit code.

Faults that a real file system can produce are produced for real (a tiny
tmpfs for ENOSPC, a read-only remount); the others (EIO on fsync, a failing
rename) are injected by monkeypatching the one os function at the one call.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from corokey.cli import keygen
from tests.keygen_helpers import is_root, our_keygen, run_tool, temp_files

OLD_KEY = bytes(range(256))


@pytest.fixture
def old_key(tmp_path: Path) -> Path:
    key = tmp_path / "authkey"
    key.write_bytes(OLD_KEY)
    key.chmod(0o400)
    return key


def _run_in_process(key: Path) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = keygen.run(["corosync-keygen", "-k", str(key)], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def _fail_nth(
    original: Callable[..., Any], exc_errno: int, when: Callable[..., bool]
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            raise OSError(exc_errno, os.strerror(exc_errno))
        return original(*args, **kwargs)

    return wrapper


def _is_temp_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> bool:
    return isinstance(path, str) and ".corokey-" in path and bool(flags & os.O_CREAT)


def _is_file_fd(fd: int, *args: Any, **kwargs: Any) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


def _is_dir_fd(fd: int, *args: Any, **kwargs: Any) -> bool:
    import stat

    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _always(*args: Any, **kwargs: Any) -> bool:
    return True


FAULTS = [
    # (os function, errno, predicate, exit code, first words of the message)
    ("open", errno.EACCES, _is_temp_open, 2, "Could not create"),
    ("fchown", errno.EPERM, _always, 3, "Failed to set key file permissions"),
    ("fchmod", errno.EPERM, _always, 3, "Failed to set key file permissions"),
    ("write", errno.EIO, _is_file_fd, 4, "Could not write"),
    ("fsync", errno.EIO, _is_file_fd, 4, "Could not write"),
    ("close", errno.EIO, _is_file_fd, 5, "Could not close"),
    ("rename", errno.EIO, _always, 5, "Could not rename the new key"),
]


@pytest.mark.parametrize(
    ("function", "code", "predicate", "exit_code", "message"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_fault_before_commit_keeps_the_old_key(
    old_key: Path,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    code: int,
    predicate: Callable[..., bool],
    exit_code: int,
    message: str,
) -> None:
    if function == "fchown" and not is_root():
        pytest.skip("fchown is only attempted as root")
    original = getattr(os, function)
    if function == "close":
        # Close really, then report the error (a failing close still releases the fd).
        def closing(fd: int) -> None:
            really_regular = predicate(fd)
            original(fd)
            if really_regular:
                raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "close", closing)
    else:
        monkeypatch.setattr(os, function, _fail_nth(original, code, predicate))
    result_code, stdout, stderr = _run_in_process(old_key)
    monkeypatch.undo()
    assert result_code == exit_code
    assert stderr.splitlines()[0].startswith(f"corosync-keygen: {message}")
    assert os.strerror(code) in stderr.splitlines()[0]
    assert stderr.splitlines()[1].startswith("corosync-keygen: hint: ")
    assert old_key.read_bytes() == OLD_KEY
    assert temp_files(old_key.parent) == []
    assert "Corosync Cluster Engine Authentication key generator." in stdout


def test_directory_fsync_failure_is_exit_5_with_new_key_in_place(
    old_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", _fail_nth(os.fsync, errno.EIO, _is_dir_fd))
    code, _, stderr = _run_in_process(old_key)
    monkeypatch.undo()
    assert code == 5
    assert "The new key is at" in stderr
    new = old_key.read_bytes()
    assert len(new) == 256 and new != OLD_KEY
    assert temp_files(old_key.parent) == []


# ----------------------------------------------------------------------------- real faults


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    if not is_root():
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=64", "tmpfs", str(mount_point)],
        check=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> None:
    """Fill the file system until one more byte does not fit."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    # Inodes are left, so the temp file can be created, but no page to write it.


def _snapshot(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.root
def test_real_enospc_leaves_old_key_and_no_temp(tiny_tmpfs: Path) -> None:
    key = tiny_tmpfs / "authkey"
    key.write_bytes(OLD_KEY)
    key.chmod(0o400)
    _fill(tiny_tmpfs)
    before = _snapshot(tiny_tmpfs)
    result = run_tool(our_keygen(), ["-k", str(key)], tiny_tmpfs)
    (tiny_tmpfs / "corosync-keygen").unlink()
    assert result.returncode == 4, result.stderr
    first = result.stderr.decode().splitlines()[0]
    assert first == f"corosync-keygen: Could not write {key}: No space left on device"
    assert key.read_bytes() == OLD_KEY
    assert _snapshot(tiny_tmpfs) == before


@pytest.mark.root
def test_real_read_only_file_system_is_exit_2_and_changes_nothing(
    tiny_tmpfs: Path, tmp_path: Path
) -> None:
    key = tiny_tmpfs / "authkey"
    key.write_bytes(OLD_KEY)
    key.chmod(0o400)
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run_tool(our_keygen(), ["-k", str(key)], workdir)
    assert result.returncode == 2
    assert "Read-only file system" in result.stderr.decode().splitlines()[0]
    assert key.read_bytes() == OLD_KEY
    assert _snapshot(tiny_tmpfs) == ["authkey"]
