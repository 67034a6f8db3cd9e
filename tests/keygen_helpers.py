"""Shared helpers for the corosync-keygen tests: where the tools are, how to run them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

C_KEYGEN = "/usr/sbin/corosync-keygen"
REPO = Path(__file__).resolve().parent.parent


def our_keygen() -> str:
    """The installed console script next to the interpreter running the tests."""
    candidate = Path(sys.executable).parent / "corosync-keygen"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("corosync-keygen")
    assert found, "corosync-keygen console script not installed (pip install -e .)"
    return found


def is_root() -> bool:
    return os.geteuid() == 0


def run_tool(
    tool: str,
    args: List[str],
    workdir: Path,
    timeout: float = 20,
    umask: Optional[int] = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``tool`` as ``./corosync-keygen ARGS`` from ``workdir``.

    Both the C tool and ours see the same argv[0], so getopt's messages (which
    quote argv[0]) and err(3)'s (which quote its base name) can be compared.
    """
    link = workdir / "corosync-keygen"
    if not link.exists():
        link.symlink_to(tool)

    def set_umask() -> None:
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        ["./corosync-keygen", *args],
        cwd=workdir,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        preexec_fn=set_umask if umask is not None else None,
        check=False,
    )


def temp_files(directory: Path) -> List[Path]:
    """Temp files our writer leaves (``.NAME.corokey-PID-RAND.tmp``)."""
    return sorted(p for p in directory.iterdir() if ".corokey-" in p.name)
