"""SIGKILL at a random instant while replacing a key: the key is old or new, never torn."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Tuple

import pytest

from tests.keygen_helpers import our_keygen, run_tool, temp_files

RUNS = 200
PARALLEL = 4
OLD_KEY = b"\xa5" * 200 + b"old-key!" * 7
WRITING = b"Writing corosync key to "  # printed once the temp file exists, before the key


def _start(key: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [our_keygen(), "-k", str(key)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the line must arrive when printed
    )


def _wait_for_writing(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(WRITING):
            return
    raise AssertionError("corosync-keygen never said it was writing")


def _write_window(directory: Path) -> float:
    """Median time from the 'Writing' line to the exit: temp file written, synced, renamed."""
    windows = []
    for _ in range(5):
        process = _start(directory / "probe")
        _wait_for_writing(process)
        started = time.monotonic()
        process.wait()
        windows.append(time.monotonic() - started)
    return sorted(windows)[2]


class Outcome:
    def __init__(self, mid_write: bool, content: bytes, mode: int, temps: List[Tuple[str, int]]):
        self.mid_write = mid_write  # the temp file existed when the kill landed
        self.content = content
        self.mode = mode
        self.temps = temps


def _one_run(directory: Path, delay: float) -> Outcome:
    """Stop the writer ``delay`` s after it said 'Writing', look, then SIGKILL it.

    Stopped, it cannot move on: what the directory shows is the state the kill
    lands in, so a temp file seen there proves the kill came in the middle of
    the write.
    """
    key = directory / "authkey"
    process = _start(key)
    _wait_for_writing(process)
    time.sleep(delay)
    os.kill(process.pid, signal.SIGSTOP)  # not send_signal: its poll() could reap the child
    _, status = os.waitpid(process.pid, os.WUNTRACED)
    mid_write = False
    if os.WIFSTOPPED(status):
        mid_write = temp_files(directory) != []
        os.kill(process.pid, signal.SIGKILL)
        os.waitpid(process.pid, 0)
    process.returncode = -9  # reaped above
    assert process.stdout is not None
    process.stdout.close()
    temps = [(p.name, stat.S_IMODE(p.stat().st_mode)) for p in temp_files(directory)]
    return Outcome(mid_write, key.read_bytes(), stat.S_IMODE(key.stat().st_mode), temps)


@pytest.mark.slow
def test_sigkill_in_the_middle_of_the_write_leaves_the_old_or_the_complete_new_key(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261124)
    dirs = []
    for index in range(PARALLEL):
        directory = tmp_path / f"d{index}"
        directory.mkdir()
        dirs.append(directory)
    window = _write_window(dirs[0])
    counts = {"mid-write, old key": 0, "after the rename, new key": 0}
    with ThreadPoolExecutor(PARALLEL) as pool:
        for batch in range(RUNS // PARALLEL):
            for directory in dirs:
                key = directory / "authkey"
                if key.exists():
                    key.chmod(0o600)
                key.write_bytes(OLD_KEY)
                key.chmod(0o400)
            delays = [rng.uniform(0, window * 0.75) for _ in dirs]
            for outcome in pool.map(_one_run, dirs, delays):
                if outcome.mid_write:
                    # Not renamed yet: the key must still be the old one, whole.
                    assert outcome.content == OLD_KEY, f"key changed mid-write (batch {batch})"
                    assert [mode for _, mode in outcome.temps] == [0o400], outcome.temps
                    counts["mid-write, old key"] += 1
                else:
                    # No temp file after 'Writing': the rename happened; all of the new key.
                    assert outcome.content != OLD_KEY and len(outcome.content) == 256, (
                        f"torn key of {len(outcome.content)} bytes (batch {batch})"
                    )
                    assert outcome.mode == 0o400 and outcome.temps == []
                    counts["after the rename, new key"] += 1
    print(f"write window {window * 1000:.2f} ms; {counts}")
    # The runs must really probe the write: a good share of kills lands inside it (a tenth:
    # a parallel run once had 39 of 200, under the fifth asked before).
    assert counts["mid-write, old key"] >= RUNS // 10, counts
    # The next complete run removes whatever the killed ones left.
    for directory in dirs:
        result = run_tool(our_keygen(), ["-k", str(directory / "authkey")], directory)
        assert result.returncode == 0
        assert temp_files(directory) == []


def test_killed_while_waiting_for_the_random_source_touches_nothing(tmp_path: Path) -> None:
    """The key is read before any file is created: a kill there leaves no trace."""
    key = tmp_path / "authkey"
    key.write_bytes(OLD_KEY)
    source = tmp_path / "slow-random"
    os.mkfifo(source)
    # The writer blocks reading the FIFO before creating anything: kill it there first.
    process = subprocess.Popen(
        [our_keygen(), "-r", str(source), "-k", str(key)], stdout=subprocess.DEVNULL
    )
    time.sleep(0.3)
    process.kill()
    process.wait()
    assert key.read_bytes() == OLD_KEY
    assert temp_files(tmp_path) == []
