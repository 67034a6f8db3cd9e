"""Processes that hold key bytes cannot dump core (RLIMIT_CORE 0, soft and hard).

Each command is started with core dumps allowed (soft and hard unlimited), kept
waiting for its key on a pipe, and its limits are read from /proc while it waits.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from tests.keygen_helpers import our_keygen

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/syscall").exists(), reason="needs /proc/PID/syscall"
)


def _allow_core_dumps() -> None:
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def _core_limits(pid: int) -> List[str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return line.split()[4:6]
    raise AssertionError(f"no core limit in /proc/{pid}/limits")


def _wait_until_reading(process: subprocess.Popen[bytes], pipe_inode: str) -> None:
    """Until the process blocks in read(2) on our pipe: past start-up, holding no key yet."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        fields = Path(f"/proc/{process.pid}/syscall").read_text().split()
        if fields and fields[0] == "0" and len(fields) > 1:  # read(fd, ...)
            fd = int(fields[1], 16)
            try:
                if os.readlink(f"/proc/{process.pid}/fd/{fd}") == pipe_inode:
                    return
            except FileNotFoundError:
                pass
        time.sleep(0.01)
    raise AssertionError("the process never waited on its input pipe")


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "corokey", "fingerprint", "-"],
        [sys.executable, "-m", "corokey", "install", "-", "DEST"],
        ["KEYGEN", "-r", "/dev/stdin", "-k", "KEY"],
    ],
    ids=["corokey-fingerprint", "corokey-install", "corosync-keygen"],
)
def test_a_process_waiting_for_key_bytes_cannot_dump_core(tmp_path: Path, argv: List[str]) -> None:
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0:
        pytest.skip("core dumps are already forbidden (hard limit 0) for this test run")
    named = {"DEST": str(tmp_path / "dest"), "KEY": str(tmp_path / "key"), "KEYGEN": our_keygen()}
    argv = [named.get(a, a) for a in argv]
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            argv,
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_allow_core_dumps,
        )
        os.close(read_end)
        try:
            _wait_until_reading(process, f"pipe:[{os.fstat(write_end).st_ino}]")
            assert _core_limits(process.pid) == ["0", "0"]
        finally:
            process.kill()
            process.wait()
    finally:
        os.close(write_end)
