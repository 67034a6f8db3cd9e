"""Rotate the key of a running cluster without downtime.

corosync 3.1+ with knet 1.18+ loads a changed key online: once every node's key
file holds the new key, one ``corosync-cfgtool -R`` makes every member load it
into a spare crypto slot and switch to it.  Done on some nodes only, the cluster
splits (docs/rotate.md).  So rotate runs in steps, each a function with a typed
outcome: :func:`corokey.preflight.preflight` (everything checked, nothing changed),
:func:`commit_everywhere` (stage and commit exactly as push does), one ``-R``,
:func:`confirm` (reload status, membership, ring ids, fingerprints on every node).
On any failure or interrupt once a commit was sent, :mod:`corokey.rollback` reads
every node back and puts the old key back from what is there.
"""

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from corokey.clusterwatch import fingerprints, settle, switch, wait_whole
from corokey.errors import CorokeyError
from corokey.exitcodes import EXIT_INTERRUPTED
from corokey.key import fingerprint_hex
from corokey.preflight import Preflight, preflight
from corokey.profiles import Profile
from corokey.push import PushError, push
from corokey.remote import Ssh
from corokey.rollback import Outcome, roll_back_online

#: Pause after ``-R`` before the first look at the nodes.
QUIET_SECONDS = 2.0

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
        #: per node that does not hold the agreed key at the end: the command that finishes it
        self.finish: Dict[str, str] = {}
        #: the run was interrupted (SIGINT, SIGTERM, SIGHUP)
        self.interrupted = False

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
            "finish": self.finish,
            "interrupted": self.interrupted,
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


def nothing_changed(report: "RotateReport", failed: "PushError") -> "RotateError":
    """The push failed before any commit was sent: no key file changed anywhere."""
    report.result = "refused"
    report.nodes = dict(failed.report.states)
    return RotateError(
        f"rotation stopped before any key changed: {failed.message}",
        "nothing was changed; fix the cause and run rotate again",
        report,
        failed.reference,
    )


def rollback_error(
    outcome: "Outcome", report: "RotateReport", reason: str, again: str
) -> "RotateError":
    """The error that says what the nodes hold after a rollback (``again``: the command to
    run once the cause is fixed); ``reason`` "interrupted" for an interrupted run (exit 130)."""
    error = _rollback_error(outcome, report, reason, again)
    if reason == "interrupted":
        report.interrupted = True
        error.exit_code = EXIT_INTERRUPTED
    return error


def _rollback_error(
    outcome: "Outcome", report: "RotateReport", reason: str, again: str
) -> "RotateError":
    for node, text in outcome.nodes.items():
        report.nodes[node] = text
    report.rings_after = dict(outcome.rings)
    report.finish = dict(outcome.finish)
    if outcome.problems:
        report.result = "rollback-incomplete"
        for node, problem in outcome.problems.items():
            report.nodes[node] = report.nodes.get(node, "") + f"; {problem}"
        detail = "; ".join(f"{n}: {p}" for n, p in sorted(outcome.problems.items()))
        if outcome.reload_withheld:
            detail += " (corosync-cfgtool -R not run: it would load the new key there)"
        finish = "; ".join(f"{n}: {c}" for n, c in sorted(outcome.finish.items()))
        return RotateError(
            f"{_failed(reason)} and the rollback did not bring every node back: {detail}",
            f"finish with: {finish}"
            if finish
            else "run corokey doctor on the nodes named, "
            "then corokey push --from a node that holds the old key",
            report,
            "rollback-incomplete",
        )
    report.result = "rolled-back"
    hint = f"fix the cause on the node named and run corokey {again} again"
    if reason == "interrupted":
        hint = f"nothing is left to do; run corokey {again} again when ready"
    if "reload failed" in reason:
        # corosync 3.x linked with a knet older than 1.18 fails the reload of crypto and
        # logs why; no tool says so beforehand (docs/rotate.md).
        hint += (
            "; if corosync logged 'Crypto reconfiguration is not supported by the linked "
            "version of knet', its knet cannot load a key online: use corokey rotate --restart"
        )
    return RotateError(
        f"{_failed(reason)}; every node is back on the old key with full membership",
        hint,
        report,
        "rolled-back",
    )


def _failed(reason: str) -> str:
    return "interrupted" if reason == "interrupted" else f"rotation failed ({reason})"


def interrupted_rollback(
    report: "RotateReport", nodes: "List[str]", reloaded: bool, ssh: "Ssh"
) -> "RotateError":
    """A second interrupt, during the rollback: say so, and never advise a lone -R."""
    from corokey.rollback import reload_argv

    report.interrupted = True
    report.result = "interrupted"
    report.steps.append("interrupted during the rollback")
    hint = (
        f"run corokey verify --nodes {','.join(nodes)}; copy the old key to every node that "
        "does not hold it (corokey push --from a node that does)"
    )
    if reloaded:
        hint += ", then once every node holds it: " + " ".join(reload_argv(ssh, nodes[0]))
    error = RotateError(
        "interrupted during the rollback: key files may hold the old key on some nodes and "
        "the new one on others",
        hint,
        report,
        "rotate-interrupted",
    )
    error.exit_code = EXIT_INTERRUPTED
    return error


class _Rotation:
    """One online rotation's state, as far as the nodes were told (what they hold is read
    from them): whether a commit and whether a ``-R`` were sent."""

    def __init__(
        self,
        ssh: "Ssh",
        nodes: "List[str]",
        plan: "Preflight",
        report: "RotateReport",
        note: "Note",
        options: "Sequence[str]",
    ) -> None:
        self.ssh, self.nodes, self.plan, self.report = ssh, nodes, plan, report
        self.note = note
        self.options = options
        self.reloaded = False

    def forward(self, key: bytes, profile: "Profile") -> "Dict[str, str]":
        """Commit, reload, confirm: the problems by node (empty: rotated). Raises
        RotateError when nothing was sent that could change a node."""
        ssh, nodes, plan, report = self.ssh, self.nodes, self.plan, self.report
        self.note("staging and committing the new key on every node")
        failed = commit_everywhere(ssh, nodes, key, profile, plan.path or "")
        if failed is not None and not failed.report.commit_sent:
            raise nothing_changed(report, failed)
        if failed is not None:
            # A commit was sent: whatever came back, read the nodes (in the rollback).
            return {"commit": failed.message}
        report.steps.append("new key committed on every node")
        self.note(f"corosync-cfgtool -R on {nodes[0]}")
        self.reloaded = True  # from here on, the reload may have run
        problem = switch(ssh, nodes[0])
        if problem:
            return {nodes[0]: problem}
        # Stay quiet while the nodes pass the ACTIVATE and CLEANUP phases of the switch: a
        # node starved of CPU in between can miss the switch and drop out (docs/rotate.md).
        time.sleep(QUIET_SECONDS)
        self.note("verifying reload, membership and ring id on every node")
        return confirm(ssh, nodes, plan, report, self.note)

    def back(self, reason: str) -> "RotateError":
        """Roll back from what the nodes hold; the error that says what is true now."""
        plan = self.plan
        assert plan.path is not None and plan.fingerprint is not None  # noqa: S101
        self.note(f"rolling back: {reason}")
        self.report.steps.append(f"failed: {reason}")
        try:
            outcome = roll_back_online(
                self.ssh,
                self.nodes,
                plan.path,
                plan.fingerprint,
                self.report.new,
                plan.members,
                self.reloaded,
                self.note,
                self.options,
            )
        except KeyboardInterrupt:
            return interrupted_rollback(self.report, self.nodes, self.reloaded, self.ssh)
        return rollback_error(outcome, self.report, reason, "rotate")


def rotate(
    ssh: "Ssh",
    nodes: "List[str]",
    key: bytes,
    profile: "Profile",
    key_path: "Optional[str]",
    note: "Note",
    dry_run: bool = False,
    options: "Sequence[str]" = (),
) -> "RotateReport":
    """Rotate to ``key``; raises RotateError (its ``report`` says what happened) on
    refusal, failure or interruption. ``options``: the admin's own command-line options
    that reach the nodes (for the finish commands a report may name)."""
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
    run = _Rotation(ssh, nodes, plan, report, note, options)
    try:
        try:
            problems = run.forward(key, profile)
        except KeyboardInterrupt:
            # Every ssh child finished its step (they are deaf to the terminal's signals);
            # whatever the nodes hold now is read back and put back in order.
            raise run.back("interrupted") from None
        if problems:
            reason = "; ".join(f"{n}: {p}" for n, p in sorted(problems.items()))
            raise run.back(reason)
    finally:
        clock()
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
    return report
