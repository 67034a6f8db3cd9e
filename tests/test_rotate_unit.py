"""rotate's refusals that need no cluster, and its version rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from corokey.preflight import MIN_VERSION, _version_tuple


def test_version_rule() -> None:
    assert _version_tuple("3.1.7") >= MIN_VERSION
    assert _version_tuple("3.0.4") < MIN_VERSION
    assert _version_tuple("2.4.5") < MIN_VERSION
    assert _version_tuple(None) < MIN_VERSION
    assert _version_tuple("weird") < MIN_VERSION


def _rotate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corokey", "rotate", *args],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_a_key_check_rejects_is_never_rotated_to(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(os.urandom(100))
    result = _rotate("--nodes", "nowhere1,nowhere2", "--key", str(short), "--yes")
    assert result.returncode == 2
    assert "refusing to rotate to a key that corokey check rejects" in result.stderr


def test_without_a_terminal_rotation_needs_yes(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(os.urandom(256))
    result = _rotate("--nodes", "nowhere1", "--key", str(key))
    assert result.returncode == 2 and "--yes" in result.stderr
