"""Differential tests: our corosync-keygen against the real one from Debian's corosync.

For each argument vector both tools run from their own work directory (``@D@``
in a vector stands for it) with the same argv[0]; exit code, stdout, the first
line of stderr, and the key's size and mode must be the same.  Deliberate
differences (README, "Where corosync-keygen deliberately differs") are tested
on ours alone in test_keygen_cli.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest

from tests.keygen_helpers import C_KEYGEN, observe, our_keygen

pytestmark = pytest.mark.skipif(
    not os.path.exists(C_KEYGEN), reason=f"{C_KEYGEN} not installed (apt-get install corosync)"
)

K = "@D@/k"
VECTORS: List[List[str]] = [
    ["-k", K],
    ["-l", "-k", K],
    ["-lk", K],
    ["-k@D@/k"],
    ["--key-file=@D@/k"],
    ["--key-file", K],
    ["--key=@D@/k"],
    ["--k", K],
    ["-k", K, "-s", "128"],
    ["-k", K, "-s", "4096"],
    ["-k", K, "-s", "127"],
    ["-k", K, "-s", "4097"],
    ["-k", K, "-s", " 256"],
    ["-k", K, "-s", "+256"],
    ["-k", K, "-s", "256x"],
    ["-k", K, "-s", "0x100"],
    ["-k", K, "-s", ""],
    ["-k", K, "-s", "-256"],
    ["-k", K, "-s", "99999999999999999999"],
    ["-k", K, "--size=300"],
    ["-k", K, "--s", "300"],
    ["-k", K, "-s300"],
    ["-k", K, "-s", "256", "-s", "128"],
    ["operand", "-k", K],
    ["-k", K, "-"],
    ["-k", K, "--", "-x"],
    ["-k", K, "-l", "--less-secure", "--less"],
    ["-x"],
    ["-lx"],
    ["-k", K, "-x"],
    ["--foo"],
    ["--foo=bar"],
    ["--help=x"],
    ["-k"],
    ["--key-file"],
    ["-k", K, "-s"],
    ["-s", "12", "-x"],
    ["-x", "-s", "12"],
    ["-k", K, "-r", "@D@/rand"],
    ["-k", K, "--random-file=@D@/rand", "-s", "4096"],
    ["-k", K, "-r", "/nonexistent/random"],
    ["-k", "@D@/missing-dir/k"],
    ["-k", "@D@/adir"],
    ["-k", "@D@/adir/"],
    ["-k", ""],
    ["-k", "@D@/existing/k"],
    ["-k", "@D@/existing"],
]


@pytest.mark.parametrize("vector", VECTORS, ids=[" ".join(v) or "(none)" for v in VECTORS])
def test_same_behaviour_as_corosync_keygen(vector: List[str], tmp_path: Path) -> None:
    theirs = observe(C_KEYGEN, vector, tmp_path / "c")
    ours = observe(our_keygen(), vector, tmp_path / "py")
    assert ours == theirs


def test_vector_table_is_large_enough() -> None:
    assert len(VECTORS) >= 30


@pytest.mark.parametrize("vector", [["-h"], ["--help"], ["--he"], ["-lh"], ["-h", "-x"]])
def test_help_exits_like_corosync_keygen(vector: List[str], tmp_path: Path) -> None:
    theirs = observe(C_KEYGEN, vector, tmp_path / "c")
    ours = observe(our_keygen(), vector, tmp_path / "py")
    assert ours["exit"] == theirs["exit"] == 0
    assert "Usage: corosync-keygen" in str(ours["stdout"])
