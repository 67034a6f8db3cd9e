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


def _typical_duration(directory: Path) -> float:
    started = time.monotonic()
    for _ in range(3):
        subprocess.run(
            [our_keygen(), "-k", str(directory / "probe")], capture_output=True, check=True
        )
    return (time.monotonic() - started) / 3


def _one_run(directory: Path, delay: float) -> Tuple[bytes, int, List[Tuple[str, int]]]:
    key = directory / "authkey"
    process = subprocess.Popen(
        [our_keygen(), "-k", str(key)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    content = key.read_bytes()
    mode = stat.S_IMODE(key.stat().st_mode)
    leftovers = [(p.name, stat.S_IMODE(p.stat().st_mode)) for p in temp_files(directory)]
    return content, mode, leftovers


@pytest.mark.slow
def test_sigkill_at_any_instant_leaves_old_or_complete_new_key(tmp_path: Path) -> None:
    duration = _typical_duration(tmp_path)
    rng = random.Random(20261124)
    dirs = []
    for index in range(PARALLEL):
        directory = tmp_path / f"d{index}"
        directory.mkdir()
        dirs.append(directory)
    outcomes = {"old": 0, "new": 0}
    leftover_seen = 0
    with ThreadPoolExecutor(PARALLEL) as pool:
        for batch in range(RUNS // PARALLEL):
            for directory in dirs:
                key = directory / "authkey"
                if key.exists():
                    key.chmod(0o600)
                key.write_bytes(OLD_KEY)
                key.chmod(0o400)
            delays = [rng.uniform(0, duration * 1.3) for _ in dirs]
            for content, mode, leftovers in pool.map(_one_run, dirs, delays):
                if content == OLD_KEY:
                    outcomes["old"] += 1
                else:
                    assert len(content) == 256, f"torn key of {len(content)} bytes (batch {batch})"
                    assert mode == 0o400
                    outcomes["new"] += 1
                for name, leftover_mode in leftovers:
                    assert leftover_mode == 0o400, f"{name} left with mode {leftover_mode:o}"
                    leftover_seen += 1
    assert outcomes["old"] + outcomes["new"] == RUNS
    # The next complete run removes whatever the killed ones left.
    for directory in dirs:
        result = run_tool(our_keygen(), ["-k", str(directory / "authkey")], directory)
        assert result.returncode == 0
        assert temp_files(directory) == []
    print(f"outcomes {outcomes}, temp files left by killed runs: {leftover_seen}")


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
