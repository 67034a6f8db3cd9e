"""Push + verify to N = 1, 8 and 32 sshd-only test hosts, and the manual way at N = 32.

Goals: T(32) at most 2.5x T(1); at N = 32, at least 8x faster than a sequential loop
of `scp` and `ssh install -D ...` per node. Needs root (test hosts in namespaces).
Run: .venv/bin/python bench/push_verify.py [ROUNDS]
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.testhosts import Network, network

from corokey.key import generate_key


def _timed(net: Network, argv: list, key: bytes, env: Optional[dict] = None) -> float:  # type: ignore[type-arg]
    started = time.perf_counter()
    result = net.run_admin(argv, input=key, timeout=600, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed: {result.stdout}{result.stderr}")
    return elapsed


#: Diagnostic only (never a corokey default): the classic key exchange instead of OpenSSH
#: 9's post-quantum hybrid, to show how much of T(N) is key-exchange CPU on this machine.
CLASSIC_KEX = "-o KexAlgorithms=curve25519-sha256"


def _machine_busy_seconds() -> float:
    """CPU time all processors spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds of the N = 32 warm rounds: (wall, whole machine, admin side).
CPU_SAMPLES: List[tuple] = []  # type: ignore[type-arg]


def corokey_round(net: Network, count: int, cold: bool, options: str = "") -> float:
    """push then verify; cold: no ssh connection to reuse (a fresh ControlPath directory)."""
    env = dict(os.environ)
    if cold:
        env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="ckb")
    names = ",".join(h.name for h in net.hosts[:count])
    common = f"--nodes {names} -F {net.ssh_config} {options}"
    script = (
        f"{sys.executable} -m corokey push - {common} >/dev/null && "
        f"{sys.executable} -m corokey verify {common} >/dev/null"
    )
    machine, admin = _machine_busy_seconds(), _children_seconds()
    wall = _timed(net, ["sh", "-c", script], generate_key(), env)
    if count == 32 and not cold and not options:
        # The admin side is corokey and its ssh clients (waited-for children); the rest
        # is the nodes: sshd sessions, their shells and ssh's connection masters.
        CPU_SAMPLES.append((wall, _machine_busy_seconds() - machine, _children_seconds() - admin))
    return wall


def manual_round(net: Network, count: int) -> float:
    keyfile = net.workdir / "manual-key"
    keyfile.write_bytes(generate_key())
    keyfile.chmod(0o400)
    loop = "; ".join(
        f"scp -q -F {net.ssh_config} {keyfile} {h.name}:/root/authkey.new && "
        f"ssh -F {net.ssh_config} {h.name} "
        "'install -D --group=0 --owner=0 --mode=0400 /root/authkey.new /etc/corosync/authkey "
        "&& rm /root/authkey.new'"
        for h in net.hosts[:count]
    )
    return _timed(net, ["sh", "-c", f"set -e; {loop}"], b"")


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with network(private_home=True) as net:
        net.add_hosts(32, corosync=False)
        samples: Dict[str, List[float]] = {}
        for _ in range(rounds):
            for cold in (True, False):
                for count in (1, 8, 32):
                    name = f"push+verify N={count} {'cold' if cold else 'warm'}"
                    samples.setdefault(name, []).append(corokey_round(net, count, cold))
            for count in (1, 32):
                name = f"diag classic-kex N={count} cold"
                samples.setdefault(name, []).append(corokey_round(net, count, True, CLASSIC_KEX))
            samples.setdefault("manual scp+install N=32", []).append(manual_round(net, 32))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, median in medians.items():
        print(f"{name:<26} {median * 1000:9.0f} ms")
    for kind in ("cold", "warm"):
        scale = medians[f"push+verify N=32 {kind}"] / medians[f"push+verify N=1 {kind}"]
        speedup = medians["manual scp+install N=32"] / medians[f"push+verify N=32 {kind}"]
        print(
            f"{kind}: T(32)/T(1) = {scale:.2f} (goal <= 2.5); "
            f"manual/corokey at N=32 = {speedup:.1f}x (goal >= 8)"
        )
    diag = medians["diag classic-kex N=32 cold"] / medians["diag classic-kex N=1 cold"]
    print(f"diagnostic, classic kex, cold: T(32)/T(1) = {diag:.2f}")
    wall, machine, admin = (statistics.median(x) for x in zip(*CPU_SAMPLES))
    print(
        f"CPU at N=32 warm: {machine * 1000:.0f} ms busy in {wall * 1000:.0f} ms wall "
        f"({machine / wall:.2f} of {os.cpu_count()} cores); admin side {admin * 1000:.0f} ms, "
        f"nodes' side {(machine - admin) * 1000:.0f} ms"
    )
    print(f"rounds={rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
