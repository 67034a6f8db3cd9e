"""The cached corosync 2.x builds (tests/corosync2.py) are what they claim to be."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import corosync2


@pytest.mark.parametrize("version", corosync2.VERSIONS)
def test_build_is_that_version_and_uses_its_own_libraries(version: str) -> None:
    build = corosync2.build_or_skip(version)
    result = subprocess.run(
        [str(build.corosync), "-v"], capture_output=True, text=True, check=True, timeout=30
    )
    assert f"version '{version}'" in result.stdout
    # Without 2.x's own libcmap the 2.x tools would silently talk to Debian's 3.x libraries.
    for tool in ("corosync-cmapctl", "corosync-cfgtool", "corosync-quorumtool"):
        ldd = subprocess.run(
            ["ldd", str(build.program(tool))], capture_output=True, text=True, check=True
        ).stdout
        libs = [line.split("=>")[1].split()[0] for line in ldd.splitlines() if "=>" in line]
        ours = [lib for lib in libs if "/libcmap" in lib or "/libcfg" in lib or "/libquorum" in lib]
        assert ours and all(lib.startswith(str(build.lib)) for lib in ours), ldd
    assert corosync2.build_seconds(build) is not None


def test_cache_key_follows_the_tarball_bytes(tmp_path: Path) -> None:
    tarball = tmp_path / "corosync-2.3.5.tar.gz"
    tarball.write_bytes(b"one")
    first = corosync2.cache_key(tarball)
    tarball.write_bytes(b"two")
    assert corosync2.cache_key(tarball) != first
    assert len(first) == 16


def test_unknown_version_is_unavailable_with_a_reason() -> None:
    assert "not one of the test versions" in str(corosync2.unavailable_reason("1.4.7"))
