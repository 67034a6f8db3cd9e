"""Timing helpers shared by the benchmarks: alternate the commands, report medians."""

from __future__ import annotations

import statistics
import subprocess
import time
from typing import Callable, Dict, List, Sequence


def time_once(argv: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def alternate(commands: Dict[str, Callable[[], float]], rounds: int) -> Dict[str, List[float]]:
    """Run each command once per round, in turn, so drift hits all of them alike."""
    samples: Dict[str, List[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            samples[name].append(command())
    return samples


def report(samples: Dict[str, List[float]], baseline: str) -> Dict[str, float]:
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians[baseline]
    print(f"{'command':<44} {'median ms':>10} {'x baseline':>11}")
    for name, median in medians.items():
        print(f"{name:<44} {median * 1000:>10.2f} {median / base:>11.2f}")
    return medians
