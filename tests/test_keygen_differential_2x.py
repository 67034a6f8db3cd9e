"""Differential tests: our corosync-keygen on a 2.x node against the real 2.3.5 and 2.4.6 tools.

The real tools are built from the upstream tarballs (tests/corosync2.py).  Ours runs with
COROKEY_COROSYNC set to the same version, as on a node where corosync 2.x is installed
(the detection itself is tested in test_generation.py).  As in test_keygen_differential.py,
exit code, stdout, the first line of stderr, and the key's size and mode must be equal.
The deliberate differences (docs/corosync-keygen.md) are tested apart below: without -l we
never wait and say so on stderr, and an existing longer file is replaced whole, not
overwritten in place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

import pytest

from tests import corosync2
from tests.keygen_helpers import observe, our_keygen

K = "@D@/k"
VECTORS: List[List[str]] = [
    ["-l", "-k", K],
    ["-lk", K],
    ["-l", "-k@D@/k"],
    ["-l", "--key-file=@D@/k"],
    ["-l", "--key-file", K],
    ["-l", "--key=@D@/k"],
    ["-l", "--k", K],
    ["--less-secure", "-k", K],
    ["--less", "-k", K],
    ["-k", K, "-l", "-l"],
    ["-l", "-k", K, "operand"],
    ["-l", "-k", K, "--", "-x"],
    ["-l", "-k", K, "-k", "@D@/k2"],
    # 3.x options are not 2.x options.
    ["-l", "-k", K, "-s", "128"],
    ["-l", "-k", K, "-s128"],
    ["-l", "-k", K, "--size=256"],
    ["-l", "-k", K, "-r", "@D@/rand"],
    ["-l", "-k", K, "--random-file=@D@/rand"],
    ["-l", "-k", K, "-m", "@D@/rand"],
    ["-x"],
    ["-lx"],
    ["-l", "-k", K, "-x"],
    ["--foo"],
    ["--foo=bar"],
    ["--help=x"],
    ["--less-secure=yes"],
    ["-k"],
    ["--key-file"],
    ["-l", "-k"],
    # Errors writing the key.
    ["-l", "-k", "@D@/missing-dir/k"],
    ["-l", "-k", "@D@/adir"],
    ["-l", "-k", "@D@/adir/"],
    ["-l", "-k", ""],
    # Help: 2.4 added [-h] to the text; both accept it.
    ["-h"],
    ["--help"],
    ["--he"],
    ["-lh"],
    ["-h", "-x"],
    ["-x", "-h"],
]


def _env(version: str) -> Dict[str, str]:
    return {"COROKEY_COROSYNC": version}


@pytest.mark.parametrize("version", corosync2.VERSIONS)
@pytest.mark.parametrize("vector", VECTORS, ids=[" ".join(v) or "(none)" for v in VECTORS])
def test_same_behaviour_as_2x_keygen(version: str, vector: List[str], tmp_path: Path) -> None:
    build = corosync2.build_or_skip(version)
    theirs = observe(str(build.keygen), vector, tmp_path / "c")
    ours = observe(our_keygen(), vector, tmp_path / "py", env=_env(version))
    assert ours == theirs


def test_vector_table_is_large_enough() -> None:
    assert len(VECTORS) >= 30


@pytest.mark.parametrize("version", corosync2.VERSIONS)
def test_without_l_we_never_wait_and_say_so(version: str, tmp_path: Path) -> None:
    build = corosync2.build_or_skip(version)
    theirs = observe(str(build.keygen), ["-k", K], tmp_path / "c")
    ours = observe(our_keygen(), ["-k", K], tmp_path / "py", env=_env(version))
    # 2.x reads /dev/random and asks for keystrokes; we read the kernel CSPRNG, as -l does.
    expected = (
        str(theirs["stdout"])
        .replace("from /dev/random.", "from /dev/urandom.")
        .replace("Press keys on your keyboard to generate entropy.\n", "")
    )
    assert ours["stdout"] == expected
    assert "not waiting for keyboard entropy" in str(ours["stderr1"])
    assert theirs["stderr1"] == ""
    assert (ours["exit"], ours["size"], ours["mode"]) == (0, 128, 0o400)
    assert (theirs["exit"], theirs["size"], theirs["mode"]) == (0, 128, 0o400)


@pytest.mark.parametrize("version", corosync2.VERSIONS)
def test_existing_longer_file_is_replaced_whole(version: str, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        # Not root, the C tool cannot open its own 0400 key to write it (EACCES).
        pytest.skip("replacing an existing 0400 key is compared as root")
    build = corosync2.build_or_skip(version)
    vector = ["-l", "-k", "@D@/existing"]  # 280 bytes before
    theirs = observe(str(build.keygen), vector, tmp_path / "c")
    ours = observe(our_keygen(), vector, tmp_path / "py", env=_env(version))
    # 2.x opens without O_TRUNC: the old tail stays, and corosync 2.x ignores it.
    assert (theirs["size"], ours["size"]) == (280, 128)
    assert {k: v for k, v in ours.items() if k != "size"} == {
        k: v for k, v in theirs.items() if k != "size"
    }
