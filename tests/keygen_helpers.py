"""Shared helpers for the corosync-keygen tests: where the tools are, how to run them."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent


def _corosyncs_keygen() -> str:
    """corosync's own C tool: under its diverted name where the corokey package is installed.

    Where /usr/sbin/corosync-keygen is corokey's (a script, not an ELF file) and corosync is
    not installed, the diverted name does not exist and the tests that need the C tool skip.
    """
    for path in ("/usr/sbin/corosync-keygen", "/usr/sbin/corosync-keygen.corosync"):
        try:
            with open(path, "rb") as tool:
                if tool.read(4) == b"\x7fELF":
                    return path
        except OSError:
            continue
    return "/usr/sbin/corosync-keygen.corosync"


C_KEYGEN = _corosyncs_keygen()


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
    env: Optional[Dict[str, str]] = None,
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
        env={**os.environ, **env} if env else None,
        check=False,
    )


def temp_files(directory: Path) -> List[Path]:
    """Temp files our writer leaves (``.NAME.corokey-PID-RAND.tmp``)."""
    return sorted(p for p in directory.iterdir() if ".corokey-" in p.name)


def prepare_workdir(workdir: Path) -> None:
    (workdir / "rand").write_bytes(os.urandom(8192))
    (workdir / "adir").mkdir()
    existing = workdir / "existing"
    existing.write_bytes(b"old key" * 40)
    existing.chmod(0o400)


def observe(
    tool: str, vector: List[str], workdir: Path, env: Optional[Dict[str, str]] = None
) -> Dict[str, object]:
    """Run ``tool`` on ``vector`` in a fresh ``workdir``: exit, stdout, stderr line 1, key."""
    workdir.mkdir()
    prepare_workdir(workdir)
    args = [arg.replace("@D@", str(workdir)) for arg in vector]
    result = run_tool(tool, args, workdir, env=env)
    target: Optional[Path] = None
    for index, arg in enumerate(vector):
        if arg in ("-k", "-lk", "--key-file", "--k", "--key") and index + 1 < len(vector):
            target = Path(vector[index + 1].replace("@D@", str(workdir)))
        elif arg.startswith(("-k@", "--key-file=", "--key=")):
            target = Path(
                arg.split("=", 1)[-1].replace("-k@D@", "@D@").replace("@D@", str(workdir))
            )
    size = mode = None
    if target is not None and target.is_file():
        st = target.stat()
        size, mode = st.st_size, stat.S_IMODE(st.st_mode)
    stderr_lines = result.stderr.decode(errors="replace").splitlines()
    return {
        "exit": result.returncode,
        "stdout": result.stdout.decode(errors="replace").replace(str(workdir), "@D@"),
        "stderr1": (stderr_lines[0] if stderr_lines else "").replace(str(workdir), "@D@"),
        "size": size,
        "mode": mode,
    }
