"""The library side of ``corokey install``: when it writes, and what it refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corokey.errors import CorokeyError
from corokey.install import already_installed, install_key, verify_readback
from corokey.profiles import get_profile

PROFILE = get_profile("corosync")
OWNER = (os.geteuid(), os.getegid())


def _key(path: Path, data: bytes, mode: int = 0o400) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_the_same_key_with_the_same_mode_and_owner_is_already_installed(tmp_path: Path) -> None:
    data = os.urandom(256)
    dest = _key(tmp_path / "authkey", data)
    assert already_installed(str(dest), data, 0o400, OWNER)
    assert not already_installed(str(dest), data, 0o600, OWNER)  # mode
    assert not already_installed(str(dest), os.urandom(256), 0o400, OWNER)  # content
    assert not already_installed(str(dest), data + b"x", 0o400, OWNER)  # size
    assert not already_installed(str(dest), data, 0o400, (OWNER[0] + 1, OWNER[1]))  # owner
    os.link(dest, tmp_path / "second-name")
    assert not already_installed(str(dest), data, 0o400, OWNER)  # an extra hard link
    assert not already_installed(str(tmp_path / "missing"), data, 0o400, OWNER)


def test_an_unchanged_install_does_not_touch_the_file(tmp_path: Path) -> None:
    data = os.urandom(256)
    dest = tmp_path / "authkey"
    first = install_key(data, str(dest), PROFILE, label="KEY")
    assert first.result == "installed" and first.old_path is None
    inode = dest.stat().st_ino
    again = install_key(data, str(dest), PROFILE, label="KEY")
    assert again.result == "unchanged" and dest.stat().st_ino == inode
    assert not (tmp_path / "authkey.old").exists()


def test_a_key_check_rejects_is_refused_unless_forced(tmp_path: Path) -> None:
    dest = tmp_path / "authkey"
    with pytest.raises(CorokeyError) as caught:
        install_key(b"\0" * 256, str(dest), PROFILE, label="KEY")
    assert caught.value.reference == "source-one-byte" and not dest.exists()
    assert install_key(b"\0" * 256, str(dest), PROFILE, label="KEY", force=True).result == (
        "installed"
    )


def test_readback_compares_every_byte(tmp_path: Path) -> None:
    data = os.urandom(5000)  # past the 4096 bytes a fingerprint covers
    dest = _key(tmp_path / "authkey", data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorokeyError) as caught:
        verify_readback(str(dest), data)
    assert caught.value.reference == "readback-mismatch"
    verify_readback(str(_key(tmp_path / "good", data)), data)
