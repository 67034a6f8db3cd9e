"""Wall time of `corokey rotate` on 3 and 5 test hosts, and membership changes during it.

Goal: 0 membership changes. A watcher polls every host's members (cmap) every second from
before the rotation starts until after it ends, and counts each time a host sees anything
but the full membership; ring ids are compared before and after. Needs root.
Run: .venv/bin/python bench/rotate.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.testhosts import Network, network


def one_rotation(net: Network) -> tuple[float, int, bool, str]:
    hosts = net.corosync_hosts()
    everyone = {h.nodeid for h in hosts}
    changes = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal changes
        while not stop.is_set():
            for host in hosts:
                if host.members() != everyone:
                    changes += 1
            time.sleep(1.0)

    rings = net.ring_ids()
    watcher = threading.Thread(target=watch)
    watcher.start()
    env = {**os.environ, "XDG_RUNTIME_DIR": tempfile.mkdtemp(prefix="ckr")}
    argv = [
        sys.executable,
        "-m",
        "corokey",
        "rotate",
        "--yes",
        "-F",
        str(net.ssh_config),
        "--nodes",
        ",".join(h.name for h in hosts),
    ]
    started = time.perf_counter()
    result = net.run_admin(argv, env=env, timeout=300)
    elapsed = time.perf_counter() - started
    time.sleep(3)  # a node left behind would drop out within about 3 s
    stop.set()
    watcher.join()
    outcome = "rotated" if result.returncode == 0 else result.stderr.strip().splitlines()[-1]
    if result.returncode != 0:
        print(f"rotation failed: {outcome}", file=sys.stderr)
        net.wait_for_membership()
        net.wait_for_stable_ring(seconds=5)
    return elapsed, changes, net.ring_ids() == rings, outcome


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rows: Dict[int, List[tuple[float, int, bool, str]]] = {}
    for count in (3, 5):
        with network() as net:
            net.add_hosts(count)
            net.wait_for_membership()
            # Longer than a token timeout plus consensus: a fresh cluster can re-form once.
            net.wait_for_stable_ring(seconds=5)
            rows[count] = [one_rotation(net) for _ in range(rounds)]
    print(
        f"{'hosts':>5} {'median s':>9} {'max s':>6} {'membership changes':>19} "
        f"{'ring ids kept':>13} {'failed':>6}"
    )
    for count, samples in rows.items():
        times = [s[0] for s in samples]
        print(
            f"{count:>5} {statistics.median(times):>9.2f} {max(times):>6.2f} "
            f"{sum(s[1] for s in samples):>19} {all(s[2] for s in samples)!s:>13} "
            f"{sum(s[3] != 'rotated' for s in samples):>6}"
        )
    print(f"rounds={rounds} per size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
