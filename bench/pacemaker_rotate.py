"""Wall time of `corokey rotate --profile pacemaker` on 3 cluster + 2 remote test hosts
(Pacemaker 2.1.5), and how long the remote nodes were offline during it.

Goal: 0 s offline. A watcher independent of corokey polls crm_mon on node1 every second from
before the rotation until after it ends and adds up, per remote node, the time it was not
shown online. Needs root. Run: .venv/bin/python bench/pacemaker_rotate.py [ROUNDS]
"""

from __future__ import annotations

import json
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


def one_rotation(net: Network) -> tuple[float, Dict[str, float], str]:
    remotes = [h.name for h in net.remote_hosts()]
    offline = {name: 0.0 for name in remotes}
    stop = threading.Event()

    def watch() -> None:
        last = time.monotonic()
        while not stop.is_set():
            status = net.cluster_status()
            now = time.monotonic()
            for name in remotes:
                node = status.nodes.get(name) if status else None
                if node is None or not node.online:
                    offline[name] += now - last
            last = now
            time.sleep(1.0)

    watcher = threading.Thread(target=watch)
    watcher.start()
    env = {**os.environ, "XDG_RUNTIME_DIR": tempfile.mkdtemp(prefix="ckp")}
    argv = [
        sys.executable,
        "-m",
        "corokey",
        "rotate",
        "--profile",
        "pacemaker",
        "--yes",
        "--json",
        "-F",
        str(net.ssh_config),
        "--cib-from",
        "node1",
    ]
    started = time.perf_counter()
    result = net.run_admin(argv, env=env, timeout=600)
    elapsed = time.perf_counter() - started
    time.sleep(3)
    stop.set()
    watcher.join()
    try:
        outcome = json.loads(result.stdout)["outcome"]
    except (ValueError, KeyError):
        outcome = result.stderr.strip().splitlines()[-1] if result.stderr else "no answer"
    if result.returncode != 0:
        print(f"rotation failed: {outcome}\n{result.stderr}", file=sys.stderr)
    return elapsed, offline, outcome


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with network() as net:
        net.add_hosts(3, pacemaker=True)
        net.wait_for_pacemaker()
        net.add_remote_hosts(2)
        samples: List[tuple[float, Dict[str, float], str]] = [
            one_rotation(net) for _ in range(rounds)
        ]
    times = [s[0] for s in samples]
    worst = max(max(s[1].values()) for s in samples)
    print(
        f"{'nodes':>12} {'median s':>9} {'max s':>6} {'remote offline s (max)':>23} {'failed':>6}"
    )
    print(
        f"{'3 + 2 remote':>12} {statistics.median(times):>9.1f} {max(times):>6.1f} "
        f"{worst:>23.1f} {sum(s[2] != 'rotated' for s in samples):>6}"
    )
    print(f"rounds={rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
