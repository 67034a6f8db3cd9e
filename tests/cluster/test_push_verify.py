"""corokey push and verify against real sshd on five test hosts (and a real cluster)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from corokey.key import generate_key
from tests.faults import FaultySsh
from tests.testhosts import Host, Network

KEY = "/etc/corosync/authkey"


@pytest.fixture(scope="module")
def five(testhosts_available: None) -> Iterator[Network]:
    net = Network()
    try:
        net.add_hosts(5, corosync=False)
        yield net
    finally:
        net.close()


@pytest.fixture
def fleet(five: Network) -> List[Host]:
    """The five hosts, each with the same starting key and no stray files."""
    old = generate_key()
    for host in five.hosts:
        for name in os.listdir(host.path("/etc/corosync")):
            if name != "corosync.conf":
                os.unlink(host.path(f"/etc/corosync/{name}"))
        host.write_key(old)
    return five.hosts


pytestmark = pytest.mark.usefixtures("own_ssh_connections")


def corokey(net: Network, *args: str, key: bytes = b"") -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "corokey", *args, "-F", str(net.ssh_config)]
    return net.run_admin(argv, input=key if key else None, env=dict(os.environ))


def nodes(hosts: List[Host]) -> str:
    return ",".join(h.name for h in hosts)


def state(hosts: List[Host]) -> Dict[str, Tuple[bytes, List[str]]]:
    return {h.name: (h.read_key(), sorted(os.listdir(h.path("/etc/corosync")))) for h in hosts}


def test_push_reaches_all_and_verify_agrees(five: Network, fleet: List[Host]) -> None:
    old = fleet[0].read_key()
    new = generate_key()
    result = corokey(five, "push", "-", "--nodes", nodes(fleet), "--json", key=new)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert {n["state"] for n in report["nodes"].values()} == {"committed"}
    for host in fleet:
        assert host.read_key() == new
        st = host.path(KEY).stat()
        assert (st.st_mode & 0o777, st.st_uid, st.st_gid, st.st_nlink) == (0o400, 0, 0, 1)
        assert host.path(KEY + ".old").read_bytes() == old
        assert [n for n in os.listdir(host.path("/etc/corosync")) if "corokey" in n] == []
    check = corokey(five, "verify", "--nodes", nodes(fleet))
    assert check.returncode == 0, check.stdout
    assert "all 5 nodes hold the same key" in check.stdout
    again = corokey(five, "push", "-", "--nodes", nodes(fleet), "--json", key=new)
    assert {n["state"] for n in json.loads(again.stdout)["nodes"].values()} == {"unchanged"}


def test_one_host_down_changes_nothing(five: Network, fleet: List[Host]) -> None:
    before = state(fleet)
    fleet[3].stop_sshd()
    try:
        result = corokey(five, "push", "-", "--nodes", nodes(fleet), key=generate_key())
    finally:
        fleet[3].start_sshd()
    assert result.returncode == 2
    assert "cannot reach node4" in result.stderr and "nothing was changed" in result.stderr
    assert state(fleet) == before


def test_skip_unreachable_pushes_to_the_rest_and_says_so(five: Network, fleet: List[Host]) -> None:
    old = fleet[0].read_key()
    new = generate_key()
    fleet[3].stop_sshd()
    try:
        result = corokey(
            five, "push", "-", "--nodes", nodes(fleet), "--skip-unreachable", "--json", key=new
        )
    finally:
        fleet[3].start_sshd()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "skipped unreachable node4" in result.stderr
    states = {n: v["state"] for n, v in json.loads(result.stdout)["nodes"].items()}
    assert states == {
        "node1": "committed",
        "node2": "committed",
        "node3": "committed",
        "node4": "skipped",
        "node5": "committed",
    }
    assert [h.read_key() == new for h in fleet] == [True, True, True, False, True]
    assert fleet[3].read_key() == old


def test_read_only_key_directory_on_one_host_changes_nothing(
    five: Network, fleet: List[Host]
) -> None:
    before = state(fleet)
    victim = fleet[2]
    victim.run(["mount", "-o", "remount,bind,ro", "/etc/corosync"])
    try:
        result = corokey(five, "push", "-", "--nodes", nodes(fleet), "--json", key=generate_key())
    finally:
        victim.run(["mount", "-o", "remount,bind,rw", "/etc/corosync"])
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["nodes"]["node3"]["state"] == "failed"
    assert {report["nodes"][h.name]["state"] for h in fleet if h is not victim} == {"aborted"}
    assert state(fleet) == before


def test_a_wrong_host_key_is_refused(five: Network, fleet: List[Host]) -> None:
    before = state(fleet)
    original = five.known_hosts.read_text()
    impostor = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(five.workdir / "impostor")],
        check=True,
    )
    assert impostor.returncode == 0
    fake = (five.workdir / "impostor.pub").read_text().split()
    lines = [
        f"{fleet[1].address} {fake[0]} {fake[1]}"
        if line.startswith(fleet[1].address + " ")
        else line
        for line in original.splitlines()
    ]
    five.known_hosts.write_text("\n".join(lines) + "\n")
    try:
        result = corokey(five, "push", "-", "--nodes", nodes(fleet), key=generate_key())
    finally:
        five.known_hosts.write_text(original)
        for name in ("impostor", "impostor.pub"):
            (five.workdir / name).unlink()
    assert result.returncode == 2 and "node2" in result.stderr
    assert state(fleet) == before


def test_verify_names_a_key_altered_behind_its_back(five: Network, fleet: List[Host]) -> None:
    fleet[4].write_key(generate_key())
    result = corokey(five, "verify", "--nodes", nodes(fleet), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["odd"] == ["node5"]
    assert report["fix"] == "corokey push --from node1 --nodes node5"
    fleet[1].path(KEY).chmod(0o644)
    text = corokey(five, "verify", "--nodes", nodes(fleet))
    assert "node5" in text.stdout and "readable" in text.stdout
    fleet[0].stop_sshd()
    try:
        down = corokey(five, "verify", "--nodes", nodes(fleet))
    finally:
        fleet[0].start_sshd()
    assert down.returncode == 2 and "UNREACHABLE" in down.stdout


def test_push_from_a_node_fixes_the_odd_one(five: Network, fleet: List[Host]) -> None:
    good = fleet[0].read_key()
    fleet[4].write_key(generate_key())
    result = corokey(five, "push", "--from", "node1", "--nodes", nodes(fleet))
    assert result.returncode == 0, result.stderr
    assert all(h.read_key() == good for h in fleet)
    assert corokey(five, "verify", "--nodes", nodes(fleet)).returncode == 0


def _kill_at(five: Network, fleet: List[Host], point: str, new: bytes) -> None:
    faulty = FaultySsh(five.workdir)
    if point == "staged":  # every node staged, its answer held: no commit sent yet
        faulty.add(at="from-node", line="corokey-result staged", stall=30)
    env = faulty.env()  # includes our XDG_RUNTIME_DIR
    process = five.popen_admin(
        [
            sys.executable,
            "-m",
            "corokey",
            "push",
            "--nodes",
            nodes(fleet),
            "-F",
            str(five.ssh_config),
            str(_keyfile(five, new)),
        ],
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        staged = [
            h
            for h in fleet
            if any(".corokey-push-" in n for n in os.listdir(h.path("/etc/corosync")))
        ]
        if len(staged) == len(fleet):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _wait_for_orphaned_sessions(five)


def _wait_for_orphaned_sessions(five: Network) -> None:
    """SIGKILL ends corokey alone: the ssh clients it started finish their session (a
    stage or a commit, milliseconds) on their own. An admin's rerun comes seconds later;
    the test waits for them too, or the rerun's staging races the killed run's."""
    marker = str(five.ssh_config).encode()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        clients = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read()
            except OSError:
                continue
            # mux clients only: the shared connection's master renames itself "ssh: ..."
            if argv.startswith(b"ssh\0") and marker in argv:
                clients.append(entry)
        if not clients:
            return
        time.sleep(0.05)
    raise AssertionError("ssh clients of the killed run did not finish")


def _keyfile(five: Network, data: bytes) -> os.PathLike[str]:
    path = five.workdir / "newkey"
    path.write_bytes(data)
    path.chmod(0o400)
    return path


def test_sigkill_mid_push_then_a_rerun_finishes(five: Network, fleet: List[Host]) -> None:
    old = fleet[0].read_key()
    new = generate_key()
    _kill_at(five, fleet, "staged", new)
    assert all(h.read_key() == old for h in fleet), "killed after staging: nothing committed"
    rng = random.Random(5)
    for _ in range(6):
        process = five.popen_admin(
            [
                sys.executable,
                "-m",
                "corokey",
                "push",
                "--nodes",
                nodes(fleet),
                "-F",
                str(five.ssh_config),
                str(_keyfile(five, new)),
            ]
        )
        time.sleep(rng.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait()
        _wait_for_orphaned_sessions(five)
        for host in fleet:
            assert host.read_key() in (old, new)
    rerun = corokey(five, "push", str(_keyfile(five, new)), "--nodes", nodes(fleet))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for host in fleet:
        assert host.read_key() == new
        assert [n for n in os.listdir(host.path("/etc/corosync")) if ".corokey-push-" in n] == []


def test_after_a_push_the_real_cluster_still_forms(network: Network) -> None:
    hosts = network.add_hosts(3)
    network.wait_for_membership()
    new = generate_key()
    result = network.run_admin(
        [
            sys.executable,
            "-m",
            "corokey",
            "push",
            "-",
            "--nodes",
            nodes(hosts),
            "-F",
            str(network.ssh_config),
        ],
        input=new,
    )
    assert result.returncode == 0, result.stderr
    for host in hosts:
        host.stop_corosync()
    for host in hosts:
        host.start_corosync()
    network.wait_for_membership()
    assert all(h.read_key() == new for h in hosts)


def _push_paused_before_commit_on(
    five: Network, fleet: List[Host], victim: Host, new: bytes, seconds: float
) -> subprocess.Popen[bytes]:
    """Start a push that pauses before committing on ``victim``; return once every other
    host holds the new key and ``victim`` holds a staged copy."""
    faulty = FaultySsh(five.workdir)
    faulty.add(node=victim.name, at="to-node", line="commit", stall=seconds)
    env = faulty.env()
    argv = [sys.executable, "-m", "corokey", "push", "--nodes", nodes(fleet), "--json"]
    argv += ["-F", str(five.ssh_config), str(_keyfile(five, new))]
    process = five.popen_admin(argv, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        others = all(h.read_key() == new for h in fleet if h is not victim)
        staged = any(".corokey-push-" in n for n in os.listdir(victim.path("/etc/corosync")))
        if others and staged:
            break
        time.sleep(0.02)
    else:
        process.kill()
        raise AssertionError("the push never reached the commit of " + victim.name)
    return process


def test_sigkill_between_commits_leaves_whole_keys_and_verify_names_the_rest(
    five: Network, fleet: List[Host]
) -> None:
    old = fleet[0].read_key()
    new = generate_key()
    victim = fleet[2]
    process = _push_paused_before_commit_on(five, fleet, victim, new, 30)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _wait_for_orphaned_sessions(five)
    assert victim.read_key() == old
    assert all(h.read_key() == new for h in fleet if h is not victim)
    report = json.loads(corokey(five, "verify", "--nodes", nodes(fleet), "--json").stdout)
    assert report["odd"] == [victim.name]
    rerun = corokey(five, "push", str(_keyfile(five, new)), "--nodes", nodes(fleet), "--json")
    assert rerun.returncode == 0, rerun.stderr
    states = {n: s["state"] for n, s in json.loads(rerun.stdout)["nodes"].items()}
    assert states == {h.name: "committed" if h is victim else "unchanged" for h in fleet}
    assert corokey(five, "verify", "--nodes", nodes(fleet)).returncode == 0
    assert [n for n in os.listdir(victim.path("/etc/corosync")) if ".corokey-push-" in n] == []


def test_a_phase_two_failure_names_the_command_that_finishes_it(
    five: Network, fleet: List[Host]
) -> None:
    old = fleet[0].read_key()
    new = generate_key()
    victim = fleet[1]
    process = _push_paused_before_commit_on(five, fleet, victim, new, 6)
    victim.run(["mount", "-o", "remount,bind,ro", "/etc/corosync"])
    try:
        out, _ = process.communicate(timeout=60)
    finally:
        victim.run(["mount", "-o", "remount,bind,rw", "/etc/corosync"])
    assert process.returncode == 2
    node = json.loads(out)["nodes"][victim.name]
    assert node["state"] == "failed" and victim.read_key() == old
    assert node["reference"] == "node-keep-old-failed", node
    # The finish command copies the key from a node that holds it, with the same options.
    assert node["finish"].startswith("corokey push --from node1 --nodes node2 -F ")
    assert str(five.ssh_config) in node["finish"]
    command = node["finish"].replace("corokey", f"{sys.executable} -m corokey", 1)
    finish = five.run_admin(["sh", "-c", command])
    assert finish.returncode == 0, finish.stdout + finish.stderr
    assert victim.read_key() == new
    assert victim.path(KEY + ".old").read_bytes() == old
    assert corokey(five, "verify", "--nodes", nodes(fleet)).returncode == 0


def test_push_from_a_node_whose_key_is_a_symlink_is_refused(
    five: Network, fleet: List[Host]
) -> None:
    before = state(fleet)
    decoy = fleet[0].path("/etc/corosync/decoy")
    decoy.write_bytes(generate_key())
    link = fleet[0].path(KEY)
    link.unlink()
    link.symlink_to("decoy")
    after_link = state(fleet)
    result = corokey(five, "push", "--from", "node1", "--nodes", nodes(fleet))
    assert result.returncode == 2 and "not a regular file" in result.stderr, result.stderr
    assert state(fleet) == after_link != before


class ProcessWatcher:
    """Reads every process's argv and environment, over and over, until stopped."""

    def __init__(self) -> None:
        import threading

        self.seen: Dict[Tuple[int, bytes], bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ProcessWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == me:
                    continue
                for part in ("cmdline", "environ"):
                    try:
                        with open(f"/proc/{entry}/{part}", "rb") as handle:
                            data = handle.read()
                    except OSError:
                        continue
                    if data:
                        self.seen[(int(entry), data[:64])] = data


def _encodings(key: bytes) -> List[bytes]:
    import base64

    return [key[:16], key[:16].hex().encode(), key[:16].hex().upper().encode()] + [
        base64.b64encode(key[offset : offset + 24])[:24] for offset in range(3)
    ]


def test_key_bytes_never_reach_argv_environment_or_stray_files(
    five: Network, fleet: List[Host]
) -> None:
    new = generate_key()
    started = time.time()
    # Every ssh client corokey starts goes through this shim, which logs its argv and
    # environment: a deterministic record, where the watcher below samples every process
    # (ssh sessions into the hosts last about 10 ms, too short to be sure to see them all).
    shim = Path(tempfile.mkdtemp(prefix="ckshim"))
    log = shim / "log"
    (shim / "ssh").write_text(
        f"#!/bin/sh\nprintf '%s\\0' \"$@\" >> {log}\nenv >> {log}\necho --end-- >> {log}\n"
        f'exec {shutil.which("ssh")} "$@"\n'
    )
    (shim / "ssh").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}

    def run(*args: str, key: Optional[bytes] = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "corokey", *args, "-F", str(five.ssh_config)]
        return five.run_admin(argv, input=key, env=env)

    with ProcessWatcher() as watcher:
        pushed = run("push", "-", "--nodes", nodes(fleet), key=new)
        spread = run("push", "--from", "node1", "--nodes", nodes(fleet))
        verified = run("verify", "--nodes", nodes(fleet))
    assert pushed.returncode == 0 and spread.returncode == 0 and verified.returncode == 0
    record = log.read_bytes()
    shutil.rmtree(shim)
    # Stage and commit on 5 nodes, read, inspect and stage on the rest, verify on 5.
    assert record.count(b"--end--") >= 15, record.count(b"--end--")
    # No ssh client, and no process the watcher saw, had the key (raw or encoded) in its
    # argv or environment.
    forms = _encodings(new)
    assert not any(f in record for f in forms)
    config = str(five.ssh_config).encode()
    assert any(config in d for d in watcher.seen.values()), "the watcher saw no ssh client"
    leaks = [d[:80] for d in watcher.seen.values() if any(f in d for f in forms)]
    assert leaks == []
    assert not any(
        f in pushed.stdout.encode("latin-1") + pushed.stderr.encode("latin-1") for f in forms
    )
    # No file written during the push holds the key, except the key files themselves.
    roots = ["/tmp", "/var/tmp", "/root", str(five.workdir)] + [
        str(h.path(d)) for h in fleet for d in ("/etc/corosync", "/run", "/var/log")
    ]
    # The hosts' directories are bind mounts of directories under the run's workdir,
    # so the key files are told apart by inode, not by path.
    expected = {(st.st_dev, st.st_ino) for st in (os.stat(h.path(KEY)) for h in fleet)}
    holders = []
    for root in roots:
        for directory, _, files in os.walk(root):
            for name in files:
                path = os.path.join(directory, name)
                try:
                    st = os.lstat(path)
                    if (
                        (st.st_dev, st.st_ino) in expected
                        or st.st_mtime < started - 1
                        or st.st_size > 1 << 20
                        or not os.path.isfile(path)
                    ):
                        continue
                    with open(path, "rb") as handle:
                        if new[:16] in handle.read():
                            holders.append(path)
                except OSError:
                    continue
    assert holders == []


@pytest.mark.parametrize("path", ["/etc/corosync/", "/etc/corosync/.", "/etc/corosync/.."])
def test_a_key_path_naming_a_directory_is_refused_before_anything_is_staged(
    five: Network, fleet: List[Host], path: str
) -> None:
    before = state(fleet)
    result = corokey(
        five, "push", "-", "--nodes", nodes(fleet), "--key-path", path, key=generate_key()
    )
    assert result.returncode == 2 and "names a directory" in result.stderr, result.stderr
    assert state(fleet) == before


def test_an_exposed_key_is_not_kept_exposed_as_old_and_verify_looks_at_old(
    five: Network, fleet: List[Host]
) -> None:
    fleet[0].path(KEY).chmod(0o644)
    pushed = corokey(five, "push", "-", "--nodes", nodes(fleet), key=generate_key())
    assert pushed.returncode == 0, pushed.stderr
    assert fleet[0].path(KEY + ".old").stat().st_mode & 0o777 == 0o600
    assert corokey(five, "verify", "--nodes", nodes(fleet)).returncode == 0
    fleet[3].path(KEY + ".old").chmod(0o644)
    flagged = corokey(five, "verify", "--nodes", nodes(fleet), "--json")
    assert flagged.returncode == 1
    found = {
        n["node"]: [f["reference"] for f in n["findings"]]
        for n in json.loads(flagged.stdout)["nodes"]
    }
    assert found["node4"] == ["old-mode-readable"] and found["node1"] == []


def test_verify_on_a_two_node_tie_sends_to_doctor_not_to_a_guess(
    five: Network, fleet: List[Host]
) -> None:
    fleet[1].write_key(generate_key())
    result = corokey(five, "verify", "--nodes", "node1,node2")
    assert result.returncode == 1
    assert "--from" not in result.stdout and "corokey doctor" in result.stdout, result.stdout
