"""corokey fingerprint / check start-up on a 256-byte key vs a bare interpreter.

Goal: each at most 1.3x `python -c pass` on the same interpreter.
Run: .venv/bin/python bench/cli_startup.py [ROUNDS]
"""

from __future__ import annotations

import compileall
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import alternate, report, time_once

GOAL = 1.3


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    python = sys.executable
    corokey = str(Path(python).parent / "corokey")
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "src"), quiet=1, force=True)
    with tempfile.TemporaryDirectory() as directory:
        key = os.path.join(directory, "authkey")
        with open(key, "wb") as handle:
            handle.write(os.urandom(256))
        os.chmod(key, 0o400)
        commands = {
            "python -c pass": lambda: time_once([python, "-c", "pass"]),
            "corokey fingerprint KEY": lambda: time_once([corokey, "fingerprint", key]),
            "corokey check KEY": lambda: time_once([corokey, "check", key]),
        }
        medians = report(alternate(commands, rounds), "python -c pass")
    for name in ("corokey fingerprint KEY", "corokey check KEY"):
        ratio = medians[name] / medians["python -c pass"]
        verdict = "meets" if ratio <= GOAL else "MISSES"
        print(f"{name}: {ratio:.2f}x ({verdict} the goal of {GOAL}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
