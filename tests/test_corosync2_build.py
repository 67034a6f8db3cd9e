"""The cached corosync 2.x builds (tests/corosync2.py) are what they claim to be."""

from __future__ import annotations

import os
import subprocess
import sys
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


@pytest.mark.slow
def test_concurrent_runs_build_once_into_a_fresh_cache(tmp_path: Path) -> None:
    if corosync2.unavailable_reason("2.3.5") or not corosync2.tarball("2.3.5").is_file():
        pytest.skip(f"no tarball: {corosync2.tarball('2.3.5')}")
    program = (
        "from tests import corosync2\n"
        "build = corosync2.get_build('2.3.5')\n"
        "print(build.prefix, len(corosync2.built_here))\n"
    )
    env = {**os.environ, "COROKEY_TEST_CACHE": str(tmp_path / "cache")}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", program],
            cwd=corosync2.REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    answers = [run.communicate(timeout=900)[0].split() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert answers[0][0] == answers[1][0]
    assert sorted(a[1] for a in answers) == ["0", "1"]  # one built, the other waited
    left = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert left == [Path(answers[0][0]).name, Path(answers[0][0]).name + ".lock"]
