"""Rotate the key of a cluster that cannot load one online, by restarting it whole.

corosync 2.x (and 3.x linked with a knet that cannot reconfigure crypto) reads
its key only at start.  A rolling restart cannot work: a node started with the
new key cannot join the nodes still running the old one.  So the whole cluster
stops, every key file changes, and the whole cluster starts:

1. preflight as for an online rotation, less the version rule;
2. stage the new key on every node (push's first phase, sessions kept open);
3. stop the stack on every node (the admin's command; systemd by default);
4. commit everywhere (push's second phase, ``.old`` kept);
5. start the stack on every node, wait for the full membership, read every
   fingerprint back.

If the stop fails, the nodes already stopped start again with their old key and
nothing changed.  If the cluster does not form with the new key, ``.old`` goes
back everywhere and the cluster starts again with it.
"""

import time
from typing import Dict, List, Optional

from corokey.nodekey import NodeFailure, run_command
from corokey.nodescripts import START_STACK, STOP_STACK
from corokey.profiles import Profile
from corokey.push import PushError, push
from corokey.remote import Ssh
from corokey.rotate import (
    Note,
    Preflight,
    RotateError,
    RotateReport,
    fingerprints,
    planned,
    restore_everywhere,
    rollback_outcome,
    wait_whole,
)

#: How long the restarted cluster may take to form before rotate gives up on the new key.
FORM_SECONDS = 60.0


class Stack:
    """How to stop and start the cluster stack on a node, and what was done."""

    def __init__(self, ssh: "Ssh", stop: str = STOP_STACK, start: str = START_STACK) -> None:
        self.ssh = ssh
        self.stop_command = stop
        self.start_command = start
        #: when the first node was told to stop: the cluster's downtime starts there
        self.stopped_at: Optional[float] = None

    def _run(self, nodes: "List[str]", command: str, what: str) -> "Dict[str, str]":
        def one(node: str) -> "Optional[str]":
            try:
                run_command(self.ssh, node, command, what)
            except NodeFailure as failure:
                return failure.message
            return None

        return {n: p for n, p in self.ssh.each(nodes, one).items() if p is not None}

    def stop(self, nodes: "List[str]") -> "Dict[str, str]":
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        return self._run(nodes, self.stop_command, "stop")

    def start(self, nodes: "List[str]") -> "Dict[str, str]":
        return self._run(nodes, self.start_command, "start")


def rotate_restart(
    ssh: "Ssh",
    nodes: "List[str]",
    key: bytes,
    profile: "Profile",
    key_path: "Optional[str]",
    note: "Note",
    stack: "Stack",
    dry_run: bool = False,
    form_seconds: float = FORM_SECONDS,
) -> "RotateReport":
    """Rotate to ``key`` by stopping and starting the whole cluster. Raises RotateError
    (its ``report`` says what happened and how long the cluster was down)."""
    started = time.monotonic()
    plan, report = planned(ssh, nodes, profile, key_path, key, note, online=False)

    def clock() -> None:
        report.seconds = time.monotonic() - started
        if stack.stopped_at is not None:
            report.downtime = time.monotonic() - stack.stopped_at

    if dry_run:
        report.result = "dry-run"
        report.steps += [
            f"would stage the new key at {plan.path} on {', '.join(nodes)}",
            f"would stop the cluster on every node: {stack.stop_command}",
            "would commit the new key everywhere (keeping .old)",
            f"would start the cluster on every node: {stack.start_command}",
            "would wait for the full membership and read every fingerprint back",
        ]
        clock()
        return report

    def stop_everywhere() -> "Optional[str]":
        note("every node staged the new key; stopping the cluster on every node")
        failed = stack.stop(nodes)
        if not failed:
            report.steps.append("cluster stopped on every node")
            return None
        # Nothing is committed yet: whoever stopped starts again with the old key.
        note("a stop failed: starting the cluster again with its old key")
        stack.start(nodes)
        return "stopping the cluster failed (" + "; ".join(failed.values()) + ")"

    note("staging the new key on every node")
    try:
        push(ssh, nodes, key, profile, plan.path, allow_crypto_off=False, between=stop_everywhere)
    except PushError as error:
        if not error.report.nodes_in("committed"):
            report.result = "refused"
            report.nodes = dict(error.report.states)
            if stack.stopped_at is not None:
                wait_whole(ssh, nodes, plan.members, timeout=form_seconds)
            clock()
            raise RotateError(
                f"rotation stopped before any key changed: {error.message}",
                "nothing was changed; fix the cause and run rotate again",
                report,
                error.reference,
            ) from None
        failure = _roll_back(ssh, nodes, plan, report, note, stack, form_seconds, error.message)
        clock()
        raise failure from None
    report.steps.append("new key committed on every node")
    note("starting the cluster on every node")
    problems = stack.start(nodes)
    if not problems:
        note("waiting for the full membership")
        problems, _ = wait_whole(ssh, nodes, plan.members, timeout=form_seconds)
    if not problems:
        for node, held in fingerprints(ssh, nodes, plan.path or "").items():
            if held != report.new:
                problems[node] = "does not hold the new key"
    if problems:
        reason = "; ".join(f"{n}: {p}" for n, p in sorted(problems.items()))
        failure = _roll_back(ssh, nodes, plan, report, note, stack, form_seconds, reason)
        clock()
        raise failure
    clock()
    report.result = "rotated"
    report.nodes = {n: "new key, restarted, member again" for n in nodes}
    report.steps.append(f"cluster formed again with every node: down {report.downtime:.1f} s")
    return report


def _roll_back(
    ssh: "Ssh",
    nodes: "List[str]",
    plan: "Preflight",
    report: "RotateReport",
    note: "Note",
    stack: "Stack",
    form_seconds: float,
    reason: str,
) -> "RotateError":
    """The cluster did not form with the new key: the old key back everywhere, every node
    stopped (whatever runs) and started again; the error that says what is true now."""
    note(f"rolling back: {reason}")
    report.steps.append(f"failed: {reason}")
    restore_everywhere(ssh, nodes, plan, report)
    stack.stop(nodes)  # nodes that did start run the new key: they must restart too
    failed = stack.start(nodes)
    problems, _ = wait_whole(ssh, nodes, plan.members, timeout=form_seconds)
    for node, problem in failed.items():
        problems.setdefault(node, problem)
    return rollback_outcome(ssh, nodes, plan, report, reason, problems, "rotate --restart")
