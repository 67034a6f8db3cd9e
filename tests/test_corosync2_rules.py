"""generate, check, fingerprint and compare follow corosync 2.x's rules on a 2.x node.

The node is real as far as these commands can tell: a private mount namespace where
/usr/sbin/corosync is the 2.3.5 build (tests/corosync2.py), and no COROKEY_COROSYNC.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corokey.key import fingerprint
from tests import corosync2
from tests.cli_helpers import write_key

pytestmark = pytest.mark.skipif(
    bool(corosync2.namespaces_unavailable()), reason=str(corosync2.namespaces_unavailable())
)


@pytest.fixture(scope="module")
def build() -> corosync2.Build:
    return corosync2.build_or_skip("2.3.5")


def corokey_on_2x(build: corosync2.Build, *args: str) -> subprocess.CompletedProcess[str]:
    return corosync2.run_as_on_2x_node(build, [sys.executable, "-m", "corokey", *args])


def test_generate_writes_128_bytes_and_the_2x_fingerprint(
    build: corosync2.Build, tmp_path: Path
) -> None:
    key = tmp_path / "authkey"
    result = corokey_on_2x(build, "generate", str(key))
    assert result.returncode == 0, result.stderr
    data = key.read_bytes()
    assert len(data) == 128
    assert f"Fingerprint: {fingerprint(data, corosync2=True)}" in result.stdout


def test_generate_on_3x_keeps_256(tmp_path: Path) -> None:
    key = tmp_path / "authkey"
    result = subprocess.run(
        [sys.executable, "-m", "corokey", "generate", str(key)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "COROKEY_COROSYNC"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert key.stat().st_size == 256


def test_check_refuses_a_key_2x_cannot_start_with(build: corosync2.Build, tmp_path: Path) -> None:
    key = write_key(tmp_path / "authkey", os.urandom(127))
    result = corokey_on_2x(build, "check", str(key))
    assert result.returncode == 2
    assert "corosync 2.x refuses to start" in result.stdout
    assert "Could only read 1016 bits of 1024 bits from" in result.stdout
    # 127 bytes is too short for 3.x as well; 128 is fine for both, and 2.x adds no note.
    key = write_key(tmp_path / "k128", os.urandom(128))
    result = corokey_on_2x(build, "check", str(key))
    assert result.returncode == 0, result.stdout
    assert "minimum-size" not in result.stdout


def test_check_and_fingerprint_use_exactly_the_first_128_bytes(
    build: corosync2.Build, tmp_path: Path
) -> None:
    head = os.urandom(128)
    a = write_key(tmp_path / "a", head + os.urandom(128))
    b = write_key(tmp_path / "b", head + os.urandom(64))
    result = corokey_on_2x(build, "check", str(a))
    assert result.returncode == 0, result.stdout
    assert "corosync 2.x uses only the first 128" in result.stdout
    assert fingerprint(head) in result.stdout
    result = corokey_on_2x(build, "fingerprint", str(a), str(b))
    assert result.stdout.count(fingerprint(head)) == 2, result.stdout
    assert corokey_on_2x(build, "compare", str(a), str(b)).returncode == 0


def test_compare_on_3x_still_tells_them_apart(tmp_path: Path) -> None:
    head = os.urandom(128)
    a = write_key(tmp_path / "a", head + os.urandom(128))
    b = write_key(tmp_path / "b", head + os.urandom(64))
    result = subprocess.run(
        [sys.executable, "-m", "corokey", "compare", str(a), str(b)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "COROKEY_COROSYNC"},
        check=False,
    )
    assert result.returncode == 1
