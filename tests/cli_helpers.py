"""Run the real corokey entry point and take snapshots of what it may touch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple, Union


def corokey(
    *args: str, input: Optional[bytes] = None, cwd: Optional[Path] = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "corokey", *args],
        input=input.decode("latin-1") if input is not None else None,
        capture_output=True,
        text=True,
        encoding="latin-1",
        cwd=cwd,
        check=False,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    return result


def corokey_bytes(*args: str, input: Optional[bytes] = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "corokey", *args],
        input=input,
        capture_output=True,
        check=False,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


Snapshot = Dict[str, Tuple[int, int, int, int, Union[bytes, str]]]


def snapshot(directory: Path) -> Snapshot:
    """Every entry below ``directory``: inode, mode, owner, mtime and content (or link)."""
    result: Snapshot = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(root) / name
            st = path.lstat()
            if path.is_symlink():
                content: Union[bytes, str] = os.readlink(path)
            elif path.is_file():
                content = path.read_bytes()
            else:
                content = "dir"
            result[str(path.relative_to(directory))] = (
                st.st_ino,
                st.st_mode,
                st.st_uid,
                st.st_mtime_ns,
                content,
            )
    return result


def write_key(path: Path, data: bytes, mode: int = 0o400) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def compile_getopt_oracle(source: str, directory: Path) -> Path:
    """Build a C program around glibc's getopt_long, to compare our parsers with;
    skips the calling test when there is no C compiler."""
    import pytest

    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build the glibc getopt_long oracle")
    (directory / "oracle.c").write_text(source)
    binary = directory / "oracle"
    subprocess.run([compiler, "-O0", "-o", str(binary), str(directory / "oracle.c")], check=True)
    return binary
