"""Push against real peers under added latency: round trips on the critical path (issue 11).

Every tool of bench/push_tools.py puts the same key on N sshd-only test hosts, through one
shared ssh_config whose ProxyCommand is the latency relay (bench/latency_relay.py), cold (no
connection open) and warm (a ControlMaster per host opened beforehand, for every tool).  Per
tool and N, wall time is fitted as a + k x RTT over the RTTs: k is the number of round trips
on the critical path, a the CPU and fixed cost.  After every run every host is checked (the
key's bytes, mode 0400, owner root, nothing else new in the directory).

CPU is read from cpuacct cgroups (v1): one holds the tool and all it starts, the daemonised
ssh masters included (getrusage of children would miss those); the relays move themselves
into another, so their CPU is reported apart.

Needs root (namespaces, cgroups), pssh and clustershell (apt-get install pssh clustershell)
and the bench extra (pip install -e '.[bench]': ansible-core, matplotlib).
Run:  .venv/bin/python bench/push_latency.py --quick       (N = 8, RTT 40 and 160 ms)
      .venv/bin/python bench/push_latency.py               (N = 1, 8, 32; RTT 40-320 ms)
Options: --rounds R, --tools 'NAME;NAME', --sizes 1,8,32, --rtts 40,80, --json FILE (save the
samples), --from-json FILE,FILE (report saved runs together), --plot FILE, --priority P (run at
nice -P, default 5).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.testhosts import Host, Network, network  # noqa: E402

from bench import push_tools  # noqa: E402
from bench.push_tools import DEST, SSH_TRUE, TOOLS, Job, Tool  # noqa: E402
from corokey.key import generate_key  # noqa: E402

FULL_SIZES = (1, 8, 32)
FULL_RTTS = (40, 80, 160, 320)
QUICK_SIZES = (8,)
QUICK_RTTS = (40, 160)


# ---------------------------------------------------------------------------- CPU accounting


class Cgroups:
    """cpuacct groups of this run: the admin side (tools, ssh, masters), the relays, and the
    nodes (the hosts' sshd and all it starts, which on a real cluster run on other machines).

    The cpuacct hierarchy is mounted again outside /sys: ``ip netns exec`` gives the admin
    namespace a /sys of its own, where the relays would not find /sys/fs/cgroup.
    """

    def __init__(self) -> None:
        self.mount = Path(tempfile.mkdtemp(prefix="ckcg"))
        subprocess.run(
            ["mount", "-t", "cgroup", "-o", "cpuacct", "cpuacct", str(self.mount)], check=True
        )
        base = self.mount / f"corokey-bench-{os.getpid()}"
        self.admin = base / "admin"
        self.relay = base / "relay"
        self.nodes = base / "nodes"
        self.base = base
        for group in (base, self.admin, self.relay, self.nodes):
            group.mkdir()

    def join_nodes(self, pids: Sequence[int]) -> None:
        for pid in pids:
            (self.nodes / "cgroup.procs").write_text(str(pid))

    @staticmethod
    def usage(group: Path) -> float:
        return int((group / "cpuacct.usage").read_text()) / 1e9

    def join_admin(self) -> None:
        """For preexec_fn: the child and all it starts are counted on the admin side."""
        (self.admin / "cgroup.procs").write_text(str(os.getpid()))

    @staticmethod
    def pids(group: Path) -> Set[int]:
        return {int(p) for p in (group / "cgroup.procs").read_text().split()}

    def end(self, keep: Set[int], timeout: float = 5) -> None:
        """End what the runs left in both groups (ssh masters and their relays), except
        ``keep``: only processes this benchmark started, by their PID."""
        deadline = time.monotonic() + timeout
        sent: Set[int] = set()
        while time.monotonic() < deadline:
            left = (self.pids(self.admin) | self.pids(self.relay)) - keep
            if not left:
                return
            for pid in left - sent:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            sent |= left
            time.sleep(0.05)
        for pid in (self.pids(self.admin) | self.pids(self.relay)) - keep:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        self.end(set())
        for pid in self.pids(self.nodes):  # back to the root group; teardown ends them
            with contextlib.suppress(OSError):
                (self.mount / "cgroup.procs").write_text(str(pid))
        for group in (self.admin, self.relay, self.nodes, self.base):
            with contextlib.suppress(OSError):
                group.rmdir()
        subprocess.run(["umount", str(self.mount)], check=False)
        with contextlib.suppress(OSError):
            self.mount.rmdir()


# ---------------------------------------------------------------------------- hosts


CONF = "corosync.conf"


def reset_host(host: Host, old_key: bytes) -> None:
    """The key directory holds corosync.conf (crypto on, the key at DEST, as on a cluster
    node) and the previous key (0400 root), as before a rotation."""
    directory = host.path(os.path.dirname(DEST))
    if not (directory / CONF).exists():
        host.write_corosync_conf(host.network.hosts)
    for entry in directory.iterdir():
        if entry.name != CONF:
            entry.unlink()
    host.write_key(old_key, DEST, 0o400)


def check_host(host: Host, key: bytes, old_key: bytes) -> Optional[str]:
    """What is wrong on ``host`` after a run, or None: the new bytes, 0400, root:root, and
    nothing new besides the key (and a .old that holds exactly the previous key)."""
    path = host.path(DEST)
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        return f"{host.name}: {exc.strerror}"
    if data != key:
        return f"{host.name}: the key's bytes differ"
    if st.st_mode & 0o7777 != 0o400 or (st.st_uid, st.st_gid) != (0, 0):
        return f"{host.name}: mode {st.st_mode & 0o7777:04o} owner {st.st_uid}:{st.st_gid}"
    name = os.path.basename(DEST)
    expected = (name, name + ".old", CONF)
    extra = sorted(e.name for e in path.parent.iterdir() if e.name not in expected)
    if extra:
        return f"{host.name}: left {', '.join(extra)}"
    old = path.parent / (name + ".old")
    if old.exists() and old.read_bytes() != old_key:
        return f"{host.name}: {old.name} is not the previous key"
    return None


def keeps_old(host: Host) -> bool:
    return host.path(DEST + ".old").exists()


# ---------------------------------------------------------------------------- one run


class Bench:
    def __init__(self, net: Network, cgroups: Cgroups) -> None:
        self.net = net
        self.cgroups = cgroups
        self.base = Path(tempfile.mkdtemp(prefix="ckl"))  # short: socket paths under it
        self.base.chmod(0o700)
        self.configs: Dict[Tuple[int, bool], Path] = {}
        self.masters: Set[int] = set()
        self.run_index = 0

    def control_base(self, rtt: int) -> Path:
        """XDG_RUNTIME_DIR of the warm runs at ``rtt``: corokey looks for its masters under
        it, and the warm ssh_config names the same sockets for the other tools."""
        return self.base / f"masters{rtt}"

    def control_dir(self, rtt: int) -> Path:
        directory = self.control_base(rtt) / "corokey" / "ssh"
        if not directory.exists():
            directory.mkdir(parents=True)
            for path in (directory, directory.parent, directory.parent.parent):
                path.chmod(0o700)
        return directory

    def config(self, rtt: int, warm: bool) -> Path:
        if (rtt, warm) not in self.configs:
            path = self.base / f"ssh_config-{rtt}-{'warm' if warm else 'cold'}"
            path.write_text(
                push_tools.ssh_config(
                    [(h.name, h.address) for h in self.net.hosts],
                    self.net.identity,
                    self.net.known_hosts,
                    rtt,
                    self.cgroups.relay,
                    self.control_dir(rtt) if warm else None,
                )
            )
            self.configs[(rtt, warm)] = path
        return self.configs[(rtt, warm)]

    def open_masters(self, rtts: Sequence[int], hosts: Sequence[Host]) -> None:
        """A ControlMaster per host and RTT, in the admin group, before the warm runs."""
        script = " ".join(
            f"ssh -F {self.config(rtt, True)} -o ControlMaster=yes -f -N {h.name} & "
            'pids="$pids $!";'
            for rtt in rtts
            for h in hosts
        )
        result = self._admin_run(
            f'pids=""; {script} rc=0; for p in $pids; do wait "$p" || rc=1; done; exit $rc', {}
        )
        if result.returncode != 0:
            raise SystemExit(f"cannot open the ssh masters: {result.stderr.strip()}")
        self.masters = self.cgroups.pids(self.cgroups.admin) | self.cgroups.pids(self.cgroups.relay)

    def close_masters(self) -> None:
        self.cgroups.end(set())
        self.masters = set()
        for path in self.base.glob("masters*/corokey/ssh/*"):
            path.unlink()

    def _admin_run(self, script: str, env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.net.admin_command(["sh", "-c", script]),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1800,
            preexec_fn=self.cgroups.join_admin,
            check=False,
        )

    def run(self, tool: Tool, rtt: int, hosts: Sequence[Host], warm: bool) -> Dict[str, Any]:
        self.run_index += 1
        workdir = self.base / f"run{self.run_index}"
        workdir.mkdir(mode=0o700)
        (workdir / "ansible.cfg").write_text("")
        key, old_key = generate_key(), generate_key()
        keyfile = workdir / "authkey"
        keyfile.write_bytes(key)
        keyfile.chmod(0o400)
        for host in self.net.hosts:
            reset_host(host, old_key)
        job = Job(
            hosts=[h.name for h in hosts],
            ssh_config=self.config(rtt, warm),
            keyfile=keyfile,
            workdir=workdir,
            warm=warm,
            control_base=self.control_base(rtt),
            python=sys.executable,
        )
        script = tool.command(job)
        env = tool.env(job)
        # The key also on stdin (corokey push -): the other tools read the file.
        script = f"exec <{keyfile}; {script}"
        groups = (self.cgroups.admin, self.cgroups.relay, self.cgroups.nodes)
        before = [self.cgroups.usage(group) for group in groups]
        started = time.perf_counter()
        result = self._admin_run(script, env)
        wall = time.perf_counter() - started
        admin, relay, nodes = (self.cgroups.usage(g) - b for g, b in zip(groups, before))
        self.cgroups.end(self.masters)  # what a cold run left: its ssh masters, their relays
        problems = (
            []
            if result.returncode == 0
            else [f"exit {result.returncode}: {(result.stderr or result.stdout).strip()[-300:]}"]
        )
        if tool is not SSH_TRUE:
            problems += [p for p in (check_host(h, key, old_key) for h in hosts) if p]
            untouched = [h for h in self.net.hosts if h not in hosts]
            problems += [f"{h.name} changed" for h in untouched if h.read_key() != old_key]
        return {
            "tool": tool.name,
            "rtt_ms": rtt,
            "n": len(hosts),
            "warm": warm,
            "wall": wall,
            "admin_cpu": admin,
            "relay_cpu": relay,
            "nodes_cpu": nodes,
            "ok": not problems,
            "problems": problems[:3],
            "keeps_old": tool is not SSH_TRUE and keeps_old(hosts[0]),
        }

    def close(self) -> None:
        with contextlib.suppress(OSError):
            subprocess.run(["rm", "-rf", str(self.base)], check=False)


# ---------------------------------------------------------------------------- the matrix


def matrix(
    bench: Bench, tools: Sequence[Tool], sizes: Sequence[int], rtts: Sequence[int], rounds: int
) -> Iterator[Dict[str, Any]]:
    """Cold then warm runs of every tool per N, the RTTs innermost (drift on this shared
    machine then moves a tool's a, not its k); rounds repeat the whole matrix."""
    for round_number in range(rounds):
        for n in sizes:
            hosts = bench.net.hosts[:n]
            for warm in (False, True):
                if warm:
                    bench.open_masters(rtts, hosts)
                for tool in tools:
                    if n > tool.max_hosts:
                        continue
                    for rtt in rtts:
                        sample = bench.run(tool, rtt, hosts, warm)
                        sample["round"] = round_number
                        yield sample
                if warm:
                    bench.close_masters()


def fit(points: Sequence[Tuple[float, float]]) -> Tuple[float, float]:
    """Least squares wall = a + k x rtt (rtt in seconds): (k, a)."""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    k = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return k, mean_y - k * mean_x


def summarise(samples: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per tool, N and mode: the fit over the RTTs of the fastest wall of the rounds (other
    work on the machine only ever adds time), and the median CPU per node."""
    groups: Dict[Tuple[str, int, bool], List[Dict[str, Any]]] = {}
    for sample in samples:
        groups.setdefault((sample["tool"], sample["n"], sample["warm"]), []).append(sample)
    rows = []
    for (tool, n, warm), group in groups.items():
        by_rtt: Dict[int, List[Dict[str, Any]]] = {}
        for sample in group:
            by_rtt.setdefault(sample["rtt_ms"], []).append(sample)
        medians = {rtt: min(s["wall"] for s in runs) for rtt, runs in sorted(by_rtt.items())}
        k, a = (
            fit([(rtt / 1000, wall) for rtt, wall in medians.items()])
            if len(medians) > 1
            else (float("nan"), float("nan"))
        )
        rows.append(
            {
                "tool": tool,
                "n": n,
                "warm": warm,
                "k": k,
                "a": a,
                "walls": medians,
                "admin_cpu_per_node": statistics.median(s["admin_cpu"] for s in group) / n,
                "relay_cpu_per_node": statistics.median(s["relay_cpu"] for s in group) / n,
                "nodes_cpu_per_node": _median_or(
                    -1.0, [s["nodes_cpu"] for s in group if "nodes_cpu" in s]
                )
                / n,
                "ok": all(s["ok"] for s in group),
                "problems": sorted({p for s in group for p in s["problems"]})[:3],
                "keeps_old": any(s["keeps_old"] for s in group),
            }
        )
    return rows


def _median_or(default: float, values: Sequence[float]) -> float:
    return statistics.median(values) if values else default


def print_table(rows: Sequence[Dict[str, Any]], tools: Sequence[Tool]) -> None:
    order = {t.name: i for i, t in enumerate([SSH_TRUE, *tools])}
    print(
        "| tool | N | mode | k | a (s) | wall by RTT (s) | admin CPU/node (ms) "
        "| relay CPU/node (ms) | node's CPU (ms) | check |"
    )
    print("| --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |")
    for row in sorted(rows, key=lambda r: (r["n"], r["warm"], order.get(r["tool"], 99))):
        walls = " ".join(f"{rtt}:{wall:.2f}" for rtt, wall in row["walls"].items())
        check = "pass" if row["ok"] else "FAIL: " + "; ".join(row["problems"])
        if row["keeps_old"]:
            check += " (keeps .old)"
        print(
            f"| {row['tool']} | {row['n']} | {'warm' if row['warm'] else 'cold'} "
            f"| {row['k']:.1f} | {row['a']:.2f} | {walls} "
            f"| {row['admin_cpu_per_node'] * 1000:.0f} | {row['relay_cpu_per_node'] * 1000:.0f} "
            f"| {_ms(row['nodes_cpu_per_node'])} | {check} |"
        )


def print_headline(rows: Sequence[Dict[str, Any]], tools: Sequence[Tool]) -> None:
    """Per tool: k and a cold and warm at each N, wall at the largest N and RTT 80 ms (or the
    nearest), admin-side and relay CPU per node there, verified, atomic, the check."""
    index = {(r["tool"], r["n"], r["warm"]): r for r in rows}
    sizes = sorted({r["n"] for r in rows if r["tool"] != SSH_TRUE.name})
    big = sizes[-1]
    rtts = sorted({int(rtt) for r in rows for rtt in r["walls"]})
    at = min(rtts, key=lambda rtt: abs(rtt - 80))
    head = " | ".join(f"N={n} k / a cold | N={n} k / a warm" for n in sizes)
    print(
        f"| tool | {head} | wall N={big} RTT={at} cold / warm (s) "
        f"| admin CPU/node N={big} cold / warm (ms) | relay CPU/node (ms) | verified | atomic "
        "| check |"
    )
    print("| --- " * (2 * len(sizes) + 7) + "|")

    def ka(row: Optional[Dict[str, Any]]) -> str:
        return f"{row['k']:.1f} / {row['a']:.2f}" if row else "-"

    for tool in tools:
        cells = []
        for n in sizes:
            cells += [ka(index.get((tool.name, n, False))), ka(index.get((tool.name, n, True)))]
        cold, warm = index.get((tool.name, big, False)), index.get((tool.name, big, True))
        if cold is None or warm is None:
            cold = index.get((tool.name, max(n for n in sizes if n <= tool.max_hosts), False))
            warm = index.get((tool.name, max(n for n in sizes if n <= tool.max_hosts), True))
        if cold is None or warm is None:
            continue
        wall = f"{_wall_at(cold, at):.2f} / {_wall_at(warm, at):.2f}"
        if cold["n"] != big:
            wall += f" (N={cold['n']})"
        cpu = f"{cold['admin_cpu_per_node'] * 1000:.0f} / {warm['admin_cpu_per_node'] * 1000:.0f}"
        relay = f"{cold['relay_cpu_per_node'] * 1000:.0f} / {warm['relay_cpu_per_node'] * 1000:.0f}"
        group = [r for r in rows if r["tool"] == tool.name]
        check = "pass" if all(r["ok"] for r in group) else "FAIL"
        if any(r["keeps_old"] for r in group):
            check += ", keeps .old"
        print(
            f"| {tool.name} | {' | '.join(cells)} | {wall} | {cpu} | {relay} | {tool.verified} "
            f"| {tool.atomic} | {check} |"
        )


def _wall_at(row: Dict[str, Any], rtt: int) -> float:
    walls = {int(k): v for k, v in row["walls"].items()}
    return float(walls[rtt])


def _ms(seconds: float) -> str:
    return "-" if seconds < 0 else f"{seconds * 1000:.0f}"


def plot(rows: Sequence[Dict[str, Any]], path: Path, tools: Sequence[Tool]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["n"] for r in rows})
    figure, axes = plt.subplots(
        len(sizes), 2, figsize=(12, 4.2 * len(sizes)), squeeze=False, sharex=True
    )
    names = [t.name for t in tools]
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    for row_index, n in enumerate(sizes):
        for column, warm in enumerate((False, True)):
            axis = axes[row_index][column]
            for row in rows:
                if row["n"] != n or row["warm"] != warm or row["tool"] not in colours:
                    continue
                rtts = list(row["walls"])
                axis.plot(
                    rtts,
                    list(row["walls"].values()),
                    marker="o",
                    color=colours[row["tool"]],
                    label=f"{row['tool']} (k={row['k']:.1f})",
                    linestyle="-" if row["ok"] else ":",
                )
            axis.set_title(f"N = {n}, {'warm' if warm else 'cold'}")
            axis.set_xlabel("RTT (ms)")
            axis.set_ylabel("wall time (s)")
            # Linear axes show k as the slope; the sequential loop (N times the others) would
            # flatten every other line, so it runs off the top (its k is in the legend).
            shown = [
                wall
                for row in rows
                if row["n"] == n and row["warm"] == warm and "sequential" not in row["tool"]
                for wall in row["walls"].values()
            ]
            if shown:
                axis.set_ylim(0, 1.1 * max(shown))
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize=7)
    figure.suptitle("Putting one key on N hosts through a latency relay (dotted: check failed)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


# ---------------------------------------------------------------------------- main


def _option(argv: List[str], name: str, default: str) -> str:
    if name in argv:
        index = argv.index(name)
        return argv[index + 1]
    return default


def _numbers(text: str) -> List[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: List[str]) -> int:
    quick = "--quick" in argv
    sizes = _numbers(
        _option(argv, "--sizes", ",".join(map(str, QUICK_SIZES if quick else FULL_SIZES)))
    )
    rtts = _numbers(_option(argv, "--rtts", ",".join(map(str, QUICK_RTTS if quick else FULL_RTTS))))
    rounds = int(_option(argv, "--rounds", "1"))
    wanted = _option(argv, "--tools", "")
    tools = [push_tools.by_name(n.strip()) for n in wanted.split(";")] if wanted else list(TOOLS)
    json_path = _option(argv, "--json", "")
    plot_path = Path(_option(argv, "--plot", str(ROOT / "docs" / "push-latency.png")))
    # Other work on this shared 2-core machine stretches every run by its CPU share; a
    # higher priority for the benchmark and all it starts (hosts' sshd included) keeps the
    # walls closer to what round trips and the tools' own CPU make them.
    os.nice(-int(_option(argv, "--priority", "5")))
    missing = push_tools.check_installed(sys.executable)
    if missing and "--from-json" not in argv:
        raise SystemExit("missing: " + "; ".join(missing))
    if "--from-json" in argv:  # summarise, table and plot from saved runs: FILE,FILE
        samples = [
            sample
            for name in _option(argv, "--from-json", "").split(",")
            for sample in json.loads(Path(name).read_text())["samples"]
        ]
        report(samples, tools, plot_path)
        return 0
    started = time.monotonic()
    samples = []
    with network(private_home=True) as net:
        net.add_hosts(max(sizes), corosync=False)
        cgroups = Cgroups()
        cgroups.join_nodes([h.sshd_process.pid for h in net.hosts if h.sshd_process])
        bench = Bench(net, cgroups)
        try:
            calibration = [SSH_TRUE] if 1 in sizes or quick else []
            for sample in matrix(bench, calibration, [1], rtts, rounds):
                samples.append(sample)
                _progress(sample)
            for sample in matrix(bench, tools, sizes, rtts, rounds):
                samples.append(sample)
                _progress(sample)
        finally:
            bench.close()
            cgroups.close()
    elapsed = time.monotonic() - started
    if json_path:
        Path(json_path).write_text(json.dumps({"samples": samples}, indent=1))
    report(samples, tools, plot_path)
    print(
        f"sizes={sizes} rtts={rtts} rounds={rounds}; run time {elapsed:.0f} s; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    return 0


def report(samples: Sequence[Dict[str, Any]], tools: Sequence[Tool], plot_path: Path) -> None:
    rows = summarise(samples)
    tools = [t for t in tools if any(r["tool"] == t.name for r in rows)]
    print_table(rows, tools)
    print()
    print_headline(rows, tools)
    if len({s["rtt_ms"] for s in samples}) > 1:
        plot(rows, plot_path, [SSH_TRUE, *tools])
        print(f"plot: {plot_path}")


def _progress(sample: Dict[str, Any]) -> None:
    print(
        f"# {sample['tool']:<26} N={sample['n']:<2} {'warm' if sample['warm'] else 'cold'} "
        f"RTT={sample['rtt_ms']:<3} wall {sample['wall']:6.2f} s  admin CPU "
        f"{sample['admin_cpu']:5.2f} s  relays {sample['relay_cpu']:5.2f} s  nodes "
        f"{sample['nodes_cpu']:5.2f} s  "
        f"{'ok' if sample['ok'] else 'FAIL ' + '; '.join(sample['problems'])}",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
