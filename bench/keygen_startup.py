"""corosync-keygen start-up: ours vs corosync's C tool vs a bare interpreter.

Goal: ours at most 1.2x `python -c pass` on the same interpreter.
Run: .venv/bin/python bench/keygen_startup.py [ROUNDS]
"""

from __future__ import annotations

import compileall
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import alternate, report, time_once

GOAL = 1.2


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    python = sys.executable
    # An installed package has its bytecode compiled by pip; an editable checkout
    # under PYTHONDONTWRITEBYTECODE=1 would otherwise compile on every run.
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "src"), quiet=1)
    ours = str(Path(python).parent / "corosync-keygen")
    theirs = shutil.which("corosync-keygen", path="/usr/sbin")
    with tempfile.TemporaryDirectory() as directory:
        key = os.path.join(directory, "authkey")
        commands = {
            "python -c pass": lambda: time_once([python, "-c", "pass"]),
            "corokey corosync-keygen -k FILE": lambda: time_once([ours, "-k", key]),
        }
        if theirs:
            commands["corosync 3.1 corosync-keygen -k FILE"] = lambda: time_once(
                [theirs, "-k", key]
            )
        medians = report(alternate(commands, rounds), "python -c pass")
    ratio = medians["corokey corosync-keygen -k FILE"] / medians["python -c pass"]
    verdict = "meets" if ratio <= GOAL else "MISSES"
    print(f"rounds={rounds}; ours/python = {ratio:.2f} ({verdict} the goal of {GOAL}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
