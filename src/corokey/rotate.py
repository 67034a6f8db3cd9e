"""Rotate the key of a running cluster without downtime.

corosync 3.1+ with knet 1.18+ loads a changed key online: once every node's key
file holds the new key, one ``corosync-cfgtool -R`` makes every member load it
into a spare crypto slot and switch to it.  Done on some nodes only, the cluster
splits (docs/rotate.md).  So rotate runs in steps, each a function with a typed
outcome: :func:`preflight` (everything checked, nothing changed), :func:`commit_everywhere`
(stage and commit exactly as push does), :func:`switch` (one ``-R``),
:func:`confirm` (reload status, membership, ring ids, fingerprints on every node),
and on any failure after the commit :func:`roll_back` (``.old`` back wherever the
key is not the old one, reload node by node, every fingerprint read back).
"""

import os
import time
from typing import Callable, Dict, List, Optional, Set, Tuple

from corokey.checks import ERROR, host_fips_enabled
from corokey.errors import CorokeyError
from corokey.exitcodes import EXIT_INTERRUPTED
from corokey.key import FIPS_KEY_LEN_MAX, fingerprint_hex
from corokey.keylocation import locate
from corokey.nodekey import NodeFailure, NodeView, live, look, reload, restore_old
from corokey.pacemaker import REFERENCE as PACEMAKER_REFERENCE
from corokey.pacemaker import refusal as pacemaker_refusal
from corokey.pacemaker import shares_corosync_key
from corokey.profiles import Profile
from corokey.push import PushError, push
from corokey.remote import Ssh
from corokey.verify import key_findings

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


class RotateReport:
    def __init__(self, old: "Optional[str]", new: str) -> None:
        self.old = old
        self.new = new
        self.path: Optional[str] = None
        self.steps: List[str] = []
        self.nodes: Dict[str, str] = {}
        self.result = "planned"
        self.seconds = 0.0
        #: ring id per node at preflight and at the end: the proof nobody left or joined.
        self.rings_before: Dict[str, Optional[str]] = {}
        self.rings_after: Dict[str, Optional[str]] = {}
        #: a node missed the cluster-wide switch and was reloaded on its own
        self.repaired = False
        #: rotate --restart: seconds from the first stop until the cluster formed again
        self.downtime: Optional[float] = None

    def to_json(self) -> "Dict[str, object]":
        return {
            "old_sha256": self.old,
            "new_sha256": self.new,
            "path": self.path,
            "result": self.result,
            "steps": self.steps,
            "nodes": self.nodes,
            "ring_ids_before": self.rings_before,
            "ring_ids_after": self.rings_after,
            "membership_changed": self.repaired,
            "downtime_seconds": None if self.downtime is None else round(self.downtime, 3),
            "seconds": round(self.seconds, 3),
        }


class RotateError(CorokeyError):
    """Rotation refused, rolled back or interrupted; ``report`` says what happened."""

    reference = "rotate"

    def __init__(
        self, message: str, hint: str, report: "RotateReport", reference: "Optional[str]" = None
    ) -> None:
        super().__init__(message, hint=hint, reference=reference)
        self.report = report


def _version_tuple(text: "Optional[str]") -> "Tuple[int, ...]":
    try:
        return tuple(int(p) for p in (text or "").split(".")[:2])
    except ValueError:
        return ()


# ---------------------------------------------------------------------------- preflight


class Preflight:
    """What every node said before anything changed, and the reasons to refuse."""

    def __init__(self) -> None:
        self.views: Dict[str, NodeView] = {}
        self.path: Optional[str] = None
        self.fingerprint: Optional[str] = None
        self.problems: List[str] = []
        #: the reference of the first problem, for the error
        self.reference = "rotate-refused"
        self.members: Set[int] = set()

    def refuse(self, problem: str, reference: "Optional[str]" = None) -> None:
        if not self.problems and reference:
            self.reference = reference
        self.problems.append(problem)

    def ring_ids(self) -> "Dict[str, Optional[str]]":
        return {n: v.live.ring_id if v.live else None for n, v in self.views.items()}


def preflight(
    ssh: "Ssh",
    nodes: "List[str]",
    profile: "Profile",
    key_path: "Optional[str]",
    key: bytes,
    online: bool = True,
) -> "Preflight":
    """Look at every node (one session each) and list every reason not to rotate;
    ``online``: the key is to be loaded by a running corosync (3.1 or newer)."""
    result = Preflight()
    first = key_path or profile.path

    def view_of(node: str, paths: "List[str]") -> "Optional[NodeFailure]":
        try:
            result.views[node] = look(ssh, node, paths, live=True)
        except NodeFailure as failure:
            return failure
        return None

    for node, failure in ssh.each(nodes, lambda n: view_of(n, [first])).items():
        if failure is not None and failure.unreachable:
            result.refuse(f"{node} is unreachable over ssh ({failure.message})", "unreachable")
        elif failure is not None:
            result.refuse(failure.message, failure.reference)
    try:
        result.path = locate(profile, key_path, result.views, allow_crypto_off=False)
    except CorokeyError as error:
        result.refuse(error.message, error.reference)
        return result
    path = result.path
    ssh.each(
        [n for n, v in result.views.items() if path not in v.keys], lambda n: view_of(n, [path])
    )
    if profile.corosync:
        _check_pacemaker(result, path)
    _check_keys(result, profile, path, key)
    _check_runtime(result, nodes, online)
    return result


def _check_pacemaker(result: "Preflight", path: str) -> None:
    """Where Pacemaker 2.x reads corosync's key as its Remote key, a new key cuts the
    remote nodes off (corokey.pacemaker)."""
    reasons = {n: shares_corosync_key(v.pacemaker, path) for n, v in result.views.items()}
    problem = pacemaker_refusal({n: r for n, r in reasons.items() if r}, path)
    if problem is not None:
        result.refuse(problem, PACEMAKER_REFERENCE)


def _check_keys(result: "Preflight", profile: "Profile", path: str, key: bytes) -> None:
    fips = host_fips_enabled()
    prints: Dict[str, List[str]] = {}
    for node, view in result.views.items():
        held = view.keys.get(path)
        if held is None:
            result.refuse(f"{node} did not show {path}")
            continue
        if held.sha256:
            prints.setdefault(held.sha256, []).append(node)
        errors = [
            f
            for f in key_findings(view, path, profile, fips, f"{node}:{path}")
            if f.severity == ERROR
        ]
        if errors:
            result.refuse(
                f"the current key is unsound on {node}: {errors[0].message}", "key-unsound"
            )
    if len(prints) > 1:
        groups = sorted(prints.values(), key=len, reverse=True)
        if len(groups[0]) > len(groups[1]):
            odd = [n for g in groups[1:] for n in g]
            fix = f"corokey push --from {groups[0][0]} --nodes {','.join(odd)}"
            problem = (
                f"the current key differs on {', '.join(odd)}: run corokey verify, and {fix} "
                "first if the majority's key is the one corosync runs"
            )
        else:
            problem = (
                "the current key differs between nodes with no majority ("
                + " / ".join(", ".join(g) for g in groups)
                + "): run corokey doctor on a member to learn which key corosync runs, and "
                "push that one first"
            )
        result.refuse(problem, "key-differs")
    elif prints:
        result.fingerprint = next(iter(prints))
    if result.fingerprint == fingerprint_hex(key):
        result.refuse("the new key is the key the cluster already uses", "key-unchanged")
    fips_nodes = [n for n, v in result.views.items() if v.fips]
    if fips_nodes and len(fips_nodes) != len(result.views):
        result.refuse(f"FIPS mode is on only on {', '.join(fips_nodes)}", "fips-differs")
    if fips_nodes and len(key) > FIPS_KEY_LEN_MAX:
        result.refuse(
            f"FIPS mode is on: the new key must be {FIPS_KEY_LEN_MAX} bytes or less",
            "fips-too-long",
        )


def _check_runtime(result: "Preflight", nodes: "List[str]", online: bool) -> None:
    ids: Dict[int, List[str]] = {}
    memberships = set()
    for node in nodes:  # in the order given: messages name nodes as the admin did
        view = result.views.get(node)
        if view is None:
            continue
        state = view.live
        if state is None or not state.running:
            result.refuse(f"corosync is not running on {node} (or does not answer)", "not-running")
            continue
        if online and _version_tuple(state.version) < MIN_VERSION:
            result.refuse(
                f"{node} runs corosync {state.version or 'of unknown version'}, which cannot "
                "load a new key while it runs (that needs 3.1 or newer); corokey rotate "
                "--restart stops the whole cluster, changes the key everywhere and starts it "
                "again",
                "version-too-old",
            )
        if state.quorate is not True:
            result.refuse(f"{node} is not quorate", "not-quorate")
        if state.reload_error or (
            view.reload_status is not None and view.reload_status != RELOAD_OK
        ):
            result.refuse(
                f"the last configuration reload failed on {node} "
                f"({state.reload_error or 'status ' + str(view.reload_status)}); fix it first",
                "reload-failed-before",
            )
        memberships.add(frozenset(state.members))
        if state.this_node is not None:
            ids.setdefault(state.this_node, []).append(node)
    versions = {v.live.version for v in result.views.values() if v.live and v.live.running}
    if len(versions) > 1:
        result.refuse(
            f"nodes run different corosync versions: {sorted(str(v) for v in versions)}",
            "versions-differ",
        )
    if len(memberships) > 1:
        result.refuse("nodes disagree about the membership: the cluster is split", "split")
    for nodeid, names in sorted(ids.items()):
        if len(names) > 1:
            result.refuse(
                f"{' and '.join(names)} are one corosync node (nodeid {nodeid}): name each "
                "node once",
                "same-node-twice",
            )
    if len(memberships) == 1 and len(ids) == len(result.views) == len(nodes):
        members = set(next(iter(memberships)))
        result.members = members
        given = set(ids)
        listed = {
            n.nodeid
            for v in result.views.values()
            if v.conf is not None
            for n in v.conf.nodes()
            if n.nodeid is not None
        }
        if given != members:
            result.refuse(
                f"the nodes named are nodeids {sorted(given)}, the running membership is "
                f"{sorted(members)}: every member must be named (and nothing else)",
                "nodes-not-members",
            )
        if listed and listed != members:
            result.refuse(
                f"the nodelist has nodeids {sorted(listed)}, the running membership is "
                f"{sorted(members)}: every node of the nodelist must be a member",
                "nodelist-not-members",
            )


# ---------------------------------------------------------------------------- steps


def commit_everywhere(
    ssh: "Ssh", nodes: "List[str]", key: bytes, profile: "Profile", path: str
) -> "Optional[PushError]":
    """Stage and commit on every node, exactly as push; the PushError when that failed."""
    try:
        push(ssh, nodes, key, profile, path, allow_crypto_off=False)
    except PushError as error:
        return error
    return None


def switch(ssh: "Ssh", node: str) -> "Optional[str]":
    """One ``corosync-cfgtool -R``: every member loads the key file. The problem, if any."""
    try:
        reload(ssh, node)
    except NodeFailure as failure:
        return failure.message
    return None


def _live_problem(
    ssh: "Ssh", node: str, members: "Set[int]"
) -> "Tuple[Optional[str], Optional[str]]":
    """(problem, ring id) of one node right now."""
    try:
        view = live(ssh, node)
    except NodeFailure as failure:
        return failure.message, None
    state = view.live
    if state is None or not state.running:
        return "corosync does not answer", None
    if view.reload_status is not None and view.reload_status != RELOAD_OK:
        return f"the reload failed there (config.reload_status {view.reload_status})", None
    if state.members != members:
        return f"sees members {sorted(state.members)} instead of {sorted(members)}", None
    return None, state.ring_id


def settle(
    ssh: "Ssh", nodes: "List[str]", members: "Set[int]", seconds: float = SETTLE_SECONDS
) -> "Tuple[Dict[str, str], Dict[str, Optional[str]]]":
    """Watch every node for ``seconds``: problems by node (empty when all stayed whole)
    and the last ring ids seen."""
    problems: Dict[str, str] = {}
    rings: Dict[str, Optional[str]] = {}
    deadline = time.monotonic() + seconds
    while True:
        for node, (problem, ring) in ssh.each(
            nodes, lambda n: _live_problem(ssh, n, members)
        ).items():
            rings[node] = ring
            if problem and node not in problems:
                problems[node] = problem
        if problems or time.monotonic() >= deadline:
            return problems, rings
        time.sleep(1.0)


def wait_whole(
    ssh: "Ssh", nodes: "List[str]", members: "Set[int]", timeout: float = 30.0
) -> "Tuple[Dict[str, str], Dict[str, Optional[str]]]":
    """Wait until every node sees ``members`` again, then settle briefly."""
    deadline = time.monotonic() + timeout
    while True:
        problems, rings = settle(ssh, nodes, members, seconds=0)
        if not problems:
            return settle(ssh, nodes, members, seconds=SETTLE_SECONDS / 2)
        if time.monotonic() >= deadline:
            return problems, rings
        time.sleep(1.0)


def fingerprints(ssh: "Ssh", nodes: "List[str]", path: str) -> "Dict[str, Optional[str]]":
    def one(node: str) -> "Optional[str]":
        try:
            held = look(ssh, node, [path]).keys.get(path)
        except NodeFailure:
            return None
        return held.sha256 if held else None

    return ssh.each(nodes, one)


def confirm(
    ssh: "Ssh", nodes: "List[str]", plan: "Preflight", report: "RotateReport", note: "Note"
) -> "Dict[str, str]":
    """After ``-R``: every node reloaded, kept the members and its ring id, and holds the
    new key. Problems by node (empty: rotated)."""
    assert plan.path is not None  # noqa: S101 - a refused preflight never gets here
    members = plan.members
    rings_before = plan.ring_ids()
    problems, rings = settle(ssh, nodes, members)
    if problems and not any("reload failed" in p for p in problems.values()):
        # Every key file holds the new key, so a node that missed the cluster-wide reload
        # (out of the membership for a moment, under load) needs only its own reload.
        note("membership changed: reloading node by node, " + ", ".join(sorted(problems)))
        report.steps.append(
            "some node missed the reload: "
            + "; ".join(f"{n}: {p}" for n, p in sorted(problems.items()))
        )
        for node in nodes:
            switch(ssh, node)
        problems, rings = wait_whole(ssh, nodes, members)
        if not problems:
            report.steps.append("reloaded node by node: membership whole again")
            report.repaired = True
            rings_before = dict(rings)
    report.rings_after = dict(rings)
    for node in nodes:
        if node not in problems and rings.get(node) != rings_before.get(node):
            problems[node] = f"ring id changed from {rings_before.get(node)} to {rings.get(node)}"
    for node, held in fingerprints(ssh, nodes, plan.path).items():
        if held != report.new:
            problems.setdefault(node, "does not hold the new key")
    return problems


def restore_everywhere(
    ssh: "Ssh", nodes: "List[str]", plan: "Preflight", report: "RotateReport"
) -> None:
    """``.old`` back on every node whose key is not the old one (whatever corokey believes
    it committed there), only where ``.old`` is the old key; the outcome per node."""
    assert plan.path is not None and plan.fingerprint is not None  # noqa: S101
    path, old = plan.path, plan.fingerprint

    def restore(node: str) -> str:
        try:
            held = restore_old(ssh, node, path, old)
        except NodeFailure as failure:
            return f"restore failed: {failure.message}"
        return "old key restored" if held.sha256 == old else "restore did not take"

    report.nodes.update(ssh.each(nodes, restore))


def roll_back(
    ssh: "Ssh",
    nodes: "List[str]",
    plan: "Preflight",
    report: "RotateReport",
    note: "Note",
    reason: str,
) -> "RotateError":
    """Put the old key back on every node whose key is not the old one (its ``.old``,
    only if that is the old key), reload node by node, wait for the members, then read
    every fingerprint back: the error that says what is true now."""
    note(f"rolling back: {reason}")
    report.steps.append(f"failed: {reason}")
    restore_everywhere(ssh, nodes, plan, report)
    # One node at a time: a node that switched alone is reached only by its own reload.
    for node in nodes:
        problem = switch(ssh, node)
        if problem:
            report.nodes[node] += f"; reload failed: {problem}"
    problems, rings = wait_whole(ssh, nodes, plan.members)
    report.rings_after = dict(rings)
    return rollback_outcome(ssh, nodes, plan, report, reason, problems, "rotate")


def rollback_outcome(
    ssh: "Ssh",
    nodes: "List[str]",
    plan: "Preflight",
    report: "RotateReport",
    reason: str,
    problems: "Dict[str, str]",
    again: str,
) -> "RotateError":
    """Read every fingerprint back after a rollback; the error that says what is true now
    (``again``: the command to run once the cause is fixed)."""
    for node, held in fingerprints(ssh, nodes, plan.path or "").items():
        if held != plan.fingerprint:
            problems.setdefault(node, "does not hold the old key" if held else "cannot be read")
    if problems:
        report.result = "rollback-incomplete"
        for node, problem in problems.items():
            report.nodes[node] = report.nodes.get(node, "") + f"; {problem}"
        detail = "; ".join(f"{n}: {p}" for n, p in sorted(problems.items()))
        return RotateError(
            f"rotation failed ({reason}) and the rollback did not bring every node back: {detail}",
            "run corokey doctor on the nodes named, then corokey push --from a good node",
            report,
            "rollback-incomplete",
        )
    report.result = "rolled-back"
    hint = f"fix the cause on the node named and run corokey {again} again"
    if "reload failed" in reason:
        # corosync 3.x linked with a knet older than 1.18 fails the reload of crypto and
        # logs why; no tool says so beforehand (docs/rotate.md).
        hint += (
            "; if corosync logged 'Crypto reconfiguration is not supported by the linked "
            "version of knet', its knet cannot load a key online: use corokey rotate --restart"
        )
    return RotateError(
        f"rotation failed ({reason}); every node is back on the old key with full membership",
        hint,
        report,
        "rolled-back",
    )


def _pause_for_tests(point: str) -> None:
    # Fault injection for the tests: stop at a named point (then change or kill things).
    if os.environ.get("COROKEY_TEST_PAUSE_AT") == point:
        time.sleep(float(os.environ.get("COROKEY_TEST_PAUSE_SECONDS", "30")))


def planned(
    ssh: "Ssh",
    nodes: "List[str]",
    profile: "Profile",
    key_path: "Optional[str]",
    key: bytes,
    note: "Note",
    online: bool,
) -> "Tuple[Preflight, RotateReport]":
    """The preflight, and the report it starts; RotateError (nothing changed) when it
    found a reason to refuse."""
    started = time.monotonic()
    note("preflight: " + ", ".join(nodes))
    plan = preflight(ssh, nodes, profile, key_path, key, online)
    report = RotateReport(plan.fingerprint, fingerprint_hex(key))
    report.path = plan.path
    if plan.problems:
        report.result = "refused"
        report.seconds = time.monotonic() - started
        raise RotateError(
            "refusing to rotate: " + "; ".join(plan.problems),
            "nothing was changed; fix the above and run rotate again",
            report,
            plan.reference,
        )
    report.steps.append(
        f"preflight ok: {len(nodes)} nodes, members {sorted(plan.members)}, key {plan.path}"
    )
    return plan, report


def rotate(
    ssh: "Ssh",
    nodes: "List[str]",
    key: bytes,
    profile: "Profile",
    key_path: "Optional[str]",
    note: "Note",
    dry_run: bool = False,
) -> "RotateReport":
    """Rotate to ``key``; raises RotateError (its ``report`` says what happened) on
    refusal, failure or interruption."""
    started = time.monotonic()
    plan, report = planned(ssh, nodes, profile, key_path, key, note, online=True)

    def clock() -> None:
        report.seconds = time.monotonic() - started

    report.rings_before = plan.ring_ids()
    if dry_run:
        report.result = "dry-run"
        report.steps += [
            f"would stage and commit the new key at {plan.path} on {', '.join(nodes)} "
            "(keeping .old)",
            f"would run corosync-cfgtool -R on {nodes[0]}",
            "would check reload status, membership and ring id on every node",
        ]
        clock()
        return report
    phase = "commit"
    try:
        note("staging and committing the new key on every node")
        failed = commit_everywhere(ssh, nodes, key, profile, plan.path or "")
        if failed is not None:
            if not failed.report.nodes_in("committed"):
                report.result = "refused"
                report.nodes = dict(failed.report.states)
                clock()
                raise RotateError(
                    f"rotation stopped before any change: {failed.message}",
                    "nothing was changed; fix the cause and run rotate again",
                    report,
                    failed.reference,
                )
            error = roll_back(ssh, nodes, plan, report, note, failed.message)
            clock()
            raise error
        report.steps.append("new key committed on every node")
        phase = "switch"
        _pause_for_tests("committed")
        note(f"corosync-cfgtool -R on {nodes[0]}")
        problem = switch(ssh, nodes[0])
        if problem:
            error = roll_back(ssh, nodes, plan, report, note, problem)
            clock()
            raise error
        phase = "confirm"
        _pause_for_tests("reloaded")
        # Stay quiet while the nodes pass the ACTIVATE and CLEANUP phases of the switch: a
        # node starved of CPU in between can miss the switch and drop out (docs/rotate.md).
        time.sleep(QUIET_SECONDS)
        note("verifying reload, membership and ring id on every node")
        problems = confirm(ssh, nodes, plan, report, note)
    except KeyboardInterrupt:
        report.result = "interrupted"
        clock()
        raise _interrupted(phase, nodes, report) from None
    if problems:
        reason = "; ".join(f"{n}: {p}" for n, p in sorted(problems.items()))
        error = roll_back(ssh, nodes, plan, report, note, reason)
        clock()
        raise error
    report.result = "rotated"
    detail = (
        # Honest about what happened: the key is rotated and the cluster whole, but a node
        # dropped out for a few seconds during the switch (docs/rotate.md).
        "new key, reloaded; membership changed during the switch and was restored"
        if report.repaired
        else "new key, reloaded, membership and ring id unchanged"
    )
    report.nodes = {n: detail for n in nodes}
    report.steps.append("reloaded and verified on every node")
    clock()
    return report


def _interrupted(phase: str, nodes: "List[str]", report: "RotateReport") -> "RotateError":
    import shlex

    reload_cmd = f"ssh {shlex.quote(nodes[0])} corosync-cfgtool -R"
    if phase == "commit":
        message = (
            "interrupted while the new key was being committed: some key files may hold "
            "the new key while corosync runs the old one"
        )
        hint = "run corokey verify, then corokey rotate again (it puts every node in order)"
    elif phase == "switch":
        message = (
            "interrupted after the new key was committed on every node and before "
            "corosync-cfgtool -R: the key files are ahead of the key corosync runs"
        )
        hint = (
            f"finish with: {reload_cmd} (then corokey verify), or run corokey rotate again "
            "(a fresh key)"
        )
    else:
        message = "interrupted after corosync-cfgtool -R, before every node was confirmed"
        hint = "run corokey verify and corokey doctor on a member; corokey rotate again if needed"
    error = RotateError(message, hint, report, "rotate-interrupted")
    error.exit_code = EXIT_INTERRUPTED
    return error
