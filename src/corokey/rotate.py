"""Rotate the key of a running cluster without downtime.

corosync 3.1+ with knet 1.18+ loads a changed key online: once every node's
key file holds the new key, one ``corosync-cfgtool -R`` makes every member load
it into a spare crypto slot and switch to it.  Done on some nodes only, the
cluster splits (docs/rotate.md).  So: preflight everything, stage and commit
everywhere exactly as push does, reload once, verify on every node, and on any
failure after the commit put ``.old`` back everywhere and reload again.
"""

import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from corokey.errors import CorokeyError
from corokey.profiles import Profile
from corokey.push import PushError, push
from corokey.remote import RemoteResult, Ssh, quote
from corokey.runtime import LiveState, Runner, cmap_values, live_state
from corokey.verify import verify

#: Online key change needs corosync 3.1 (cfgtool -R reloads crypto) with knet 1.18.
MIN_VERSION = (3, 1)
#: How long membership must stay whole after a reload before we call it done:
#: a node left on the other key drops out within about 3 s (docs/rotate.md).
SETTLE_SECONDS = 6.0
#: Pause after ``-R`` before the first look at the nodes.
QUIET_SECONDS = 2.0
#: cmap config.reload_status after a successful reload (CS_OK).
RELOAD_OK = "1"

Note = Callable[[str], None]


class RotateError(CorokeyError):
    reference = "rotate"


def _runner(ssh: "Ssh", node: str) -> "Runner":
    def run(argv: "Sequence[str]") -> "Tuple[int, str]":
        result = ssh.run(node, " ".join(quote(a) for a in argv))
        return result.status, result.stdout

    return run


def _version_tuple(text: "Optional[str]") -> "Tuple[int, ...]":
    try:
        return tuple(int(p) for p in (text or "").split(".")[:2])
    except ValueError:
        return ()


class Preflight:
    """What every node said before anything changed, and the reasons to refuse."""

    def __init__(self) -> None:
        self.states: Dict[str, LiveState] = {}
        self.fips: Dict[str, bool] = {}
        self.fingerprint: Optional[str] = None
        self.size: Optional[int] = None
        self.problems: List[str] = []

    def members(self) -> "Set[int]":
        return next(iter(self.states.values())).members if self.states else set()

    def ring_ids(self) -> "Dict[str, Optional[str]]":
        return {node: state.ring_id for node, state in self.states.items()}


def preflight(ssh: "Ssh", nodes: "List[str]", profile: "Profile", path: str) -> "Preflight":
    result = Preflight()
    report = verify(ssh, nodes, profile, path)
    for state in report.states:
        if state.unreachable is not None:
            result.problems.append(f"{state.node} is unreachable over ssh: {state.unreachable}")
    if report.odd:
        result.problems.append(
            f"the current key differs on {', '.join(report.odd)}: run corokey verify, and "
            f"{report.fix() or 'corokey push'} first"
        )
    if report.unsound:
        result.problems.append(f"the current key is unsound on {', '.join(report.unsound)}")
    reachable = [s.node for s in report.states if s.unreachable is None]
    if report.reference:
        first = next(s for s in report.states if s.key and s.key.sha256 == report.reference)
        result.fingerprint = report.reference
        result.size = first.key.size if first.key else None

    def look(node: str) -> "Tuple[LiveState, bool, Optional[str]]":
        run = _runner(ssh, node)
        state = live_state(run)
        status, fips = run(["cat", "/proc/sys/crypto/fips_enabled"])
        reload = (cmap_values("config.reload_status", run) or {}).get("config.reload_status")
        return state, status == 0 and fips.strip() == "1", reload

    for node, (live, fips, reload) in ssh.each(reachable, look).items():
        result.states[node] = live
        result.fips[node] = fips
        if not live.running:
            result.problems.append(f"corosync is not running on {node} (or does not answer)")
            continue
        if _version_tuple(live.version) < MIN_VERSION:
            result.problems.append(
                f"{node} runs corosync {live.version or 'of unknown version'}; online key "
                "change needs 3.1 or newer (restart the cluster with the new key instead)"
            )
        if live.quorate is not True:
            result.problems.append(f"{node} is not quorate")
        if len(live.members) != len(nodes):
            result.problems.append(
                f"{node} sees {len(live.members)} members, the nodelist has {len(nodes)}"
            )
        if live.reload_error or (reload is not None and reload != RELOAD_OK):
            result.problems.append(
                f"the last configuration reload failed on {node} "
                f"({live.reload_error or 'status ' + str(reload)}); fix it first"
            )
    versions = {s.version for s in result.states.values() if s.running}
    if len(versions) > 1:
        result.problems.append(
            f"nodes run different corosync versions: {sorted(str(v) for v in versions)}"
        )
    memberships = {frozenset(s.members) for s in result.states.values() if s.running}
    if len(memberships) > 1:
        result.problems.append("nodes disagree about the membership: the cluster is split")
    if len(set(result.fips.values())) > 1:
        on = [n for n, f in result.fips.items() if f]
        result.problems.append(f"FIPS mode is on only on {', '.join(on)}")
    return result


class RotateReport:
    def __init__(self, old: "Optional[str]", new: str) -> None:
        self.old = old
        self.new = new
        self.steps: List[str] = []
        self.nodes: Dict[str, str] = {}
        self.result = "planned"
        self.seconds = 0.0
        #: ring id per node at preflight and at the end: the proof nobody left or joined.
        self.rings_before: Dict[str, Optional[str]] = {}
        self.rings_after: Dict[str, Optional[str]] = {}
        #: a node missed the cluster-wide switch and was reloaded on its own
        self.repaired = False

    def to_json(self) -> "Dict[str, object]":
        return {
            "old_sha256": self.old,
            "new_sha256": self.new,
            "result": self.result,
            "steps": self.steps,
            "nodes": self.nodes,
            "ring_ids_before": self.rings_before,
            "ring_ids_after": self.rings_after,
            "membership_changed": self.repaired,
            "seconds": round(self.seconds, 3),
        }


def _pause_for_tests(point: str) -> None:
    # Fault injection for the tests: stop at a named point (then change or kill things).
    if os.environ.get("COROKEY_TEST_PAUSE_AT") == point:
        time.sleep(float(os.environ.get("COROKEY_TEST_PAUSE_SECONDS", "30")))


def reload_on(ssh: "Ssh", node: str) -> "RemoteResult":
    return ssh.run(node, "corosync-cfgtool -R")


def settle(
    ssh: "Ssh", nodes: "List[str]", members: "Set[int]", seconds: float = SETTLE_SECONDS
) -> "Dict[str, str]":
    """Watch every node for ``seconds``: problems by node (empty when all stayed whole)."""
    problems: Dict[str, str] = {}
    deadline = time.monotonic() + seconds
    while True:

        def look(node: str) -> "Optional[str]":
            run = _runner(ssh, node)
            values = cmap_values("config.reload_status", run)
            if values is None:
                return "corosync does not answer"
            status = values.get("config.reload_status")
            if status is not None and status != RELOAD_OK:
                return f"the reload failed there (config.reload_status {status})"
            from corokey.runtime import members as members_of

            seen = members_of(run)
            if seen != members:
                return f"sees members {sorted(seen or [])} instead of {sorted(members)}"
            return None

        for node, problem in ssh.each(nodes, look).items():
            if problem and node not in problems:
                problems[node] = problem
        if problems or time.monotonic() >= deadline:
            return problems
        time.sleep(1.0)


def wait_whole(
    ssh: "Ssh", nodes: "List[str]", members: "Set[int]", timeout: float = 30.0
) -> "Dict[str, str]":
    """Wait until every node sees ``members`` again; problems by node at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        problems = settle(ssh, nodes, members, seconds=0)
        if not problems:
            return settle(ssh, nodes, members, seconds=SETTLE_SECONDS / 2)
        if time.monotonic() >= deadline:
            return problems
        time.sleep(1.0)


_RESTORE = r"""
set -u
d=%(dir)s; n=%(name)s
cd "$d" || exit 20
if [ -L "$n.old" ] || [ ! -f "$n.old" ]; then echo "no $d/$n.old to restore" >&2; exit 40; fi
# A copy, not a hard link: the key must end with one name (check refuses two). The
# rename replaces whatever is at the key path (a broken link included) without following
# it; -T keeps it from moving into a directory there.
t=.$n.restore.corokey
rm -f -- "$t" && cp -p -- "$n.old" "$t" && sync -- "$t" && mv -f -T -- "$t" "$n" \
  || { rm -f -- "$t"; echo "cannot restore $d/$n from $n.old" >&2; exit 41; }
sync -- . ; echo restored
"""


def restore_old(ssh: "Ssh", node: str, path: str) -> "RemoteResult":
    directory, name = os.path.split(path)
    return ssh.run(node, _RESTORE % {"dir": quote(directory), "name": quote(name)})


def rotate(
    ssh: "Ssh",
    nodes: "List[str]",
    key: bytes,
    profile: "Profile",
    path: str,
    note: "Note",
    dry_run: bool = False,
) -> "RotateReport":
    """Rotate to ``key``; raises RotateError (with ``report`` attached) on refusal or failure."""
    import hashlib

    started = time.monotonic()
    new = hashlib.sha256(key[:4096]).hexdigest()
    note("preflight: " + ", ".join(nodes))
    checked = preflight(ssh, nodes, profile, path)
    report = RotateReport(checked.fingerprint, new)
    if any(checked.fips.values()) and len(key) > 256:
        checked.problems.append("FIPS mode is on: the new key must be 256 bytes or less")
    if checked.fingerprint == new:
        checked.problems.append("the new key is the key the cluster already uses")
    if checked.problems:
        report.result = "refused"
        report.seconds = time.monotonic() - started
        error = RotateError(
            "refusing to rotate: " + "; ".join(checked.problems),
            hint="nothing was changed; fix the above and run rotate again",
        )
        error.report = report  # type: ignore[attr-defined]
        raise error
    members = checked.members()
    rings = checked.ring_ids()
    report.rings_before = dict(rings)
    report.steps.append(f"preflight ok: {len(nodes)} nodes, members {sorted(members)}")
    if dry_run:
        report.result = "dry-run"
        report.steps += [
            f"would stage and commit the new key on {', '.join(nodes)} (keeping .old)",
            f"would run corosync-cfgtool -R on {nodes[0]}",
            "would check reload status, membership and ring id on every node",
        ]
        report.seconds = time.monotonic() - started
        return report
    note("staging and committing the new key on every node")
    committed: List[str] = list(nodes)
    try:
        push(ssh, nodes, key, profile, path)
    except PushError as exc:
        committed = [n for n, s in exc.report.states.items() if s == "committed"]
        if not committed:
            report.result = "refused"
            report.nodes = dict(exc.report.states)
            report.seconds = time.monotonic() - started
            raise RotateError(
                f"rotation stopped before any change: {exc.message}",
                hint="nothing was changed; fix the cause and run rotate again",
            ) from None
        return _roll_back(ssh, nodes, committed, path, members, report, note, started, exc.message)
    report.steps.append("new key committed on every node")
    _pause_for_tests("committed")
    note(f"corosync-cfgtool -R on {nodes[0]}")
    reloaded = reload_on(ssh, nodes[0])
    if reloaded.status != 0:
        return _roll_back(
            ssh,
            nodes,
            committed,
            path,
            members,
            report,
            note,
            started,
            f"corosync-cfgtool -R failed on {nodes[0]}: {reloaded.why()}",
        )
    _pause_for_tests("reloaded")
    # Stay quiet while the nodes pass the ACTIVATE and CLEANUP phases of the switch: a node
    # starved of CPU in between can miss the switch and drop out (docs/rotate.md).
    time.sleep(QUIET_SECONDS)
    note("verifying reload, membership and ring id on every node")
    problems = settle(ssh, nodes, members)
    if problems and not any("reload failed" in p for p in problems.values()):
        # Every key file holds the new key, so a node that missed the cluster-wide reload
        # (out of the membership for a moment, under load) needs only its own reload.
        note("membership changed: reloading node by node, " + ", ".join(sorted(problems)))
        report.steps.append(
            "some node missed the reload: "
            + "; ".join(f"{n}: {p}" for n, p in sorted(problems.items()))
        )
        for node in nodes:
            reload_on(ssh, node)
        problems = wait_whole(ssh, nodes, members)
        if not problems:
            report.steps.append("reloaded node by node: membership whole again")
            report.repaired = True
            rings = {n: live_state(_runner(ssh, n)).ring_id for n in nodes}
    after = {n: live_state(_runner(ssh, n)).ring_id for n in nodes}
    report.rings_after = dict(after)
    for node in nodes:
        if not problems.get(node) and after.get(node) != rings.get(node):
            problems[node] = f"ring id changed from {rings.get(node)} to {after.get(node)}"
    final = verify(ssh, nodes, profile, path)
    for state in final.states:
        if state.key is None or state.key.sha256 != new:
            problems.setdefault(state.node, "does not hold the new key")
    if problems:
        reason = "; ".join(f"{n}: {p}" for n, p in sorted(problems.items()))
        return _roll_back(ssh, nodes, committed, path, members, report, note, started, reason)
    report.result = "rotated"
    if report.repaired:
        # Honest about what happened: the key is rotated and the cluster whole, but a node
        # dropped out for a few seconds during the switch (docs/rotate.md).
        report.nodes = {
            n: "new key, reloaded; membership changed during the switch and was restored"
            for n in nodes
        }
    else:
        report.nodes = {n: "new key, reloaded, membership and ring id unchanged" for n in nodes}
    report.steps.append("reloaded and verified on every node")
    report.seconds = time.monotonic() - started
    return report


def _roll_back(
    ssh: "Ssh",
    nodes: "List[str]",
    committed: "List[str]",
    path: str,
    members: "Set[int]",
    report: "RotateReport",
    note: "Note",
    started: float,
    reason: str,
) -> "RotateReport":
    note(f"rolling back: {reason}")
    report.steps.append(f"failed: {reason}")
    restored = ssh.each(committed, lambda n: restore_old(ssh, n, path))
    for node, result in restored.items():
        report.nodes[node] = (
            "old key restored" if result.status == 0 else f"restore failed: {result.why()}"
        )
    # One node at a time: a node that switched alone is reached only by its own reload.
    for node in nodes:
        result = reload_on(ssh, node)
        if result.status != 0:
            report.nodes[node] = report.nodes.get(node, "") + f"; reload failed: {result.why()}"
    problems = wait_whole(ssh, nodes, members)
    report.seconds = time.monotonic() - started
    if problems:
        report.result = "rollback-incomplete"
        for node, problem in problems.items():
            report.nodes[node] = report.nodes.get(node, "") + f"; {problem}"
        detail = "; ".join(f"{n}: {p}" for n, p in sorted(problems.items()))
        error = RotateError(
            f"rotation failed ({reason}) and the rollback did not bring every node back: {detail}",
            hint="run corokey doctor on the nodes named, then corokey push --from a good node",
        )
    else:
        report.result = "rolled-back"
        error = RotateError(
            f"rotation failed ({reason}); every node is back on the old key with full membership",
            hint="fix the cause on the node named and run rotate again",
        )
    error.report = report  # type: ignore[attr-defined]
    raise error
