"""No line of a file in the source package is longer than lintian allows (512 bytes:
very-long-line-length-in-source-file).  The package test finds it too, but only after a
build and a lintian run in its slow tier; this check takes a fraction of a second."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIMIT = 512
#: Captured from a real Pacemaker and kept as it was; lintian does not report it (its
#: line-length check passes XML data by), as the package test shows.
CAPTURED = {"tests/data/pacemaker/cib-cluster.xml"}


def _tracked() -> list[Path]:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout (the packaged tests): the package test checks this")
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True
    ).stdout
    names = [name for name in listed.decode().split("\0") if name]
    return [REPO / name for name in names if name not in CAPTURED]


def test_no_source_line_is_longer_than_lintian_allows() -> None:
    long_lines = []
    for path in _tracked():
        data = path.read_bytes() if path.is_file() else b""
        if b"\0" in data[:8192]:
            continue  # binary (a PNG); lintian does not measure those
        for number, line in enumerate(data.split(b"\n"), 1):
            if len(line) + 1 > LIMIT:  # lintian counts the newline (a 512-byte line: "513")
                long_lines.append(f"{path.relative_to(REPO)}:{number}: {len(line) + 1} bytes")
    assert long_lines == []
