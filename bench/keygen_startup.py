"""corosync-keygen start-up: ours vs corosync's C tool vs a bare interpreter.

Goal: ours at most 1.2x `python -c pass` on the same interpreter: the CLI adds
almost nothing to interpreter start-up.  Start-up is measured with FILE on a
tmpfs (/dev/shm), where writing costs no storage latency.  The same command
with FILE on the disk of the checkout is reported beside it: there the two
fsyncs (file, then directory) that make the key durable add the disk's flush
latency, which is a property of the storage, not of the CLI, and which the C
tool (it does not fsync) never pays.
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
TMPFS = "/dev/shm"
BASELINE = "python -c pass"
OURS_TMPFS = "ours -k FILE (tmpfs)"
OURS_DISK = "ours -k FILE (disk, 2 fsyncs)"
THEIRS = "C tool -k FILE (tmpfs, no fsync)"


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    python = sys.executable
    root = Path(__file__).resolve().parent.parent
    # An installed package has its bytecode compiled by pip; an editable checkout
    # under PYTHONDONTWRITEBYTECODE=1 would otherwise compile on every run.
    compileall.compile_dir(str(root / "src"), quiet=1, force=True)
    ours = str(Path(python).parent / "corosync-keygen")
    theirs = shutil.which("corosync-keygen", path="/usr/sbin")
    if not os.path.isdir(TMPFS):
        print(f"{TMPFS} is missing: no tmpfs to measure start-up on", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory(dir=TMPFS) as memory,
        tempfile.TemporaryDirectory(dir=root) as disk,
    ):
        in_memory = os.path.join(memory, "authkey")
        on_disk = os.path.join(disk, "authkey")
        commands = {
            BASELINE: lambda: time_once([python, "-c", "pass"]),
            OURS_TMPFS: lambda: time_once([ours, "-k", in_memory]),
            OURS_DISK: lambda: time_once([ours, "-k", on_disk]),
        }
        if theirs:
            commands[THEIRS] = lambda: time_once([theirs, "-k", in_memory])
        medians = report(alternate(commands, rounds), BASELINE)
    ratio = medians[OURS_TMPFS] / medians[BASELINE]
    verdict = "meets" if ratio <= GOAL else "MISSES"
    fsync_ms = (medians[OURS_DISK] - medians[OURS_TMPFS]) * 1000
    print(f"rounds={rounds}; start-up, ours/python = {ratio:.2f} ({verdict} the goal of {GOAL}x)")
    print(
        f"on disk: {medians[OURS_DISK] / medians[BASELINE]:.2f}x; "
        f"durable write on this disk adds {fsync_ms:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
