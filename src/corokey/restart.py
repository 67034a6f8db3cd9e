"""Rotate the key of a cluster that cannot load one online, by restarting it whole.

corosync 2.x (and 3.x linked with a knet that cannot reconfigure crypto) reads
its key only at start.  A rolling restart cannot work: a node started with the
new key cannot join the nodes still running the old one.  So the whole cluster
stops, every key file changes, and the whole cluster starts:

1. preflight as for an online rotation, less the version rule;
2. stage the new key on every node (push's first phase, sessions kept open);
3. stop the stack on every node (the admin's command; systemd by default, under a
   time limit of its own), then confirm that corosync answers nowhere;
4. commit everywhere (push's second phase, ``.old`` kept);
5. start the stack on every node, wait for the full membership, read every
   fingerprint back.

Once a stop was sent, every failure ends with the stack started again wherever it
was stopped: if no commit was sent, on the keys the nodes hold (unchanged); if one
was, ``.old`` goes back wherever the key file is not the old key (read from the
node, whatever its commit answered), and every node holding the old key starts
with it.  A node whose file cannot be brought back is left stopped and named, with
the commands that finish it.
"""

import shlex
import time
from typing import Dict, List, Optional, Sequence, Set

from corokey.clusterwatch import STILL_ANSWERS, fingerprints, still_running, wait_whole
from corokey.exitcodes import EXIT_INTERRUPTED
from corokey.nodekey import NodeFailure, run_command
from corokey.nodescripts import PACEMAKER_ACTIVE, START_PACEMAKER, START_STACK, STOP_STACK
from corokey.preflight import Preflight
from corokey.profiles import Profile
from corokey.push import PushError, push
from corokey.remote import Ssh
from corokey.rollback import (
    Outcome,
    finish_commands,
    read_back,
    reload_argv,
    restore_everywhere,
    standing,
)
from corokey.rotate import (
    Note,
    RotateError,
    RotateReport,
    nothing_changed,
    planned,
    rollback_error,
)

#: How long the restarted cluster may take to form before rotate gives up on the new key.
FORM_SECONDS = 60.0
#: How long a stop or start command may take on a node: stopping pacemaker moves or stops
#: every resource, which may take minutes.
STACK_SECONDS = 600.0


class Stack:
    """How to stop and start the cluster stack on a node, and what was done."""

    def __init__(
        self,
        ssh: "Ssh",
        stop: str = STOP_STACK,
        start: str = START_STACK,
        seconds: float = STACK_SECONDS,
    ) -> None:
        import copy

        self.ssh = copy.copy(ssh)
        self.ssh.timeout = seconds
        self.stop_command = stop
        self.start_command = start
        #: the default commands: pacemaker starts again where it ran before the stop
        self.default = stop == STOP_STACK and start == START_STACK
        self.pacemaker: Dict[str, bool] = {}
        #: nodes told to stop (whatever they answered): they are started again
        self.stopped: List[str] = []
        #: nodes whose stop gave no answer: it may still be under way there
        self.unfinished: Set[str] = set()
        #: when the first node was told to stop: the cluster's downtime starts there
        self.stopped_at: Optional[float] = None

    def _run(self, nodes: "List[str]", command: "Dict[str, str]", what: str) -> "Dict[str, str]":
        def one(node: str) -> "Optional[NodeFailure]":
            try:
                run_command(self.ssh, node, command[node], what)
            except NodeFailure as failure:
                return failure
            return None

        failures = {n: f for n, f in self.ssh.each(nodes, one).items() if f is not None}
        if what == "stop":
            # No answer is not a failed stop: the node may be stopping still (a start there
            # waits for it, see nodescripts._RUN).
            self.unfinished |= {
                n for n, f in failures.items() if f.reference != "node-command-failed"
            }
        return {n: f.message for n, f in failures.items()}

    def probe(self, nodes: "List[str]") -> "Optional[str]":
        """With the default commands: where pacemaker runs now (to start it there again).
        The problem, when a node cannot tell."""
        if not self.default:
            return None

        def one(node: str) -> "Optional[str]":
            try:
                run_command(self.ssh, node, PACEMAKER_ACTIVE, "pacemaker probe")
            except NodeFailure as failure:
                if failure.reference != "node-command-failed":
                    return failure.message
                self.pacemaker[node] = False
                return None
            self.pacemaker[node] = True
            return None

        problems = [p for p in self.ssh.each(nodes, one).values() if p is not None]
        return "; ".join(problems) or None

    def start_command_for(self, node: str) -> str:
        if self.default and self.pacemaker.get(node):
            return f"{self.start_command} && {START_PACEMAKER}"
        return self.start_command

    def stop(self, nodes: "List[str]") -> "Dict[str, str]":
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        self.stopped += [n for n in nodes if n not in self.stopped]
        return self._run(nodes, {n: self.stop_command for n in nodes}, "stop")

    def start(self, nodes: "List[str]") -> "Dict[str, str]":
        return self._run(nodes, {n: self.start_command_for(n) for n in nodes}, "start")


class _Restart:
    """One rotation by restart: the stack, and what the nodes are to be brought back to."""

    def __init__(
        self,
        ssh: "Ssh",
        nodes: "List[str]",
        plan: "Preflight",
        report: "RotateReport",
        note: "Note",
        stack: "Stack",
        form_seconds: float,
        options: "Sequence[str]",
    ) -> None:
        self.ssh, self.nodes, self.plan, self.report = ssh, nodes, plan, report
        self.note, self.stack, self.form_seconds, self.options = note, stack, form_seconds, options

    def stop_everywhere(self) -> "Optional[str]":
        """push's ``between``: stop every node and confirm corosync is gone; the problem."""
        problem = self.stack.probe(self.nodes)
        if problem is not None:
            return f"cannot tell where pacemaker runs ({problem})"
        self.note("every node staged the new key; stopping the cluster on every node")
        failed = self.stack.stop(self.nodes)
        if not failed:
            failed = still_running(self.ssh, self.nodes)
        if failed:
            return "stopping the cluster failed (" + "; ".join(failed.values()) + ")"
        self.report.steps.append("cluster stopped on every node: corosync answers nowhere")
        return None

    def members_of(self, nodes: "List[str]") -> "Set[int]":
        ids = set()
        for node in nodes:
            view = self.plan.views.get(node)
            if view is not None and view.live is not None and view.live.this_node is not None:
                ids.add(view.live.this_node)
        return ids

    def recover(self, reason: str, committed: bool) -> "RotateError":
        """Back to the old key and running, from what the nodes hold; ``committed``: a
        commit was sent (else only the stop was)."""
        plan, ssh, nodes, stack = self.plan, self.ssh, self.nodes, self.stack
        assert plan.path is not None and plan.fingerprint is not None  # noqa: S101
        self.note(f"rolling back: {reason}")
        self.report.steps.append(f"failed: {reason}")
        outcome = Outcome()
        path, old = plan.path, plan.fingerprint
        if committed:
            restore_everywhere(ssh, nodes, path, old, outcome)
            # Nodes that did start run the new key: every node stops before any starts.
            stack.stop(nodes)
        else:
            outcome.held = fingerprints(ssh, nodes, path)
        answering = [n for n, p in still_running(ssh, nodes).items() if p == STILL_ANSWERS]
        if committed:
            for node in answering:  # it may run the new key: the others cannot join it
                outcome.problems[node] = STILL_ANSWERS
        good = [n for n in stack.stopped if outcome.held[n] == plan.fingerprint]
        astray = [n for n in nodes if outcome.held[n] != plan.fingerprint]
        self.note("starting the cluster on every node that holds the old key")
        # Where corosync still answers it is not started again, unless its stop may still be
        # under way there (that start waits for it).
        starting = [n for n in good if n not in answering or n in stack.unfinished]
        for node, problem in stack.start(starting).items():
            outcome.problems[node] = problem
        problems, outcome.rings = wait_whole(ssh, good, self.members_of(good), self.form_seconds)
        for node, problem in problems.items():
            outcome.problems.setdefault(node, problem)
        for node in astray:
            held = standing(outcome.held[node], plan.fingerprint, self.report.new)
            outcome.problems.setdefault(node, f"{held}; not started")
        outcome.finish = finish_commands(
            ssh, outcome.held, plan.fingerprint, astray, False, self.options
        )
        for node in outcome.finish:
            start = " ".join(shlex.quote(a) for a in reload_argv(ssh, node)[:-2])
            outcome.finish[node] += f" && {start} {shlex.quote(stack.start_command_for(node))}"
        return rollback_error(outcome, self.report, reason, "rotate --restart")

    def where_each_stands(self) -> "RotateError":
        """An interrupt: no further step; what each node's file holds and whether corosync
        runs there, read from the nodes."""
        plan, report = self.plan, self.report
        report.interrupted = True
        report.result = "interrupted"
        try:
            held = read_back(self.ssh, self.nodes, plan.path or "", plan.fingerprint, report.new)
            running = still_running(self.ssh, self.nodes)
        except KeyboardInterrupt:
            held, running = {}, {}
        for node in self.nodes:
            state = running.get(node, "corosync does not answer") if held else "not read"
            if state == STILL_ANSWERS:
                state = "corosync runs"
            report.nodes[node] = f"{held.get(node, 'not read')}; {state}"
        start = " ".join(shlex.quote(a) for a in reload_argv(self.ssh, "NODE")[:-2])
        error = RotateError(
            "interrupted during a rotation by restart: "
            + "; ".join(f"{n}: {s}" for n, s in report.nodes.items()),
            "put one key in every file first (corokey push --from a node that holds the key "
            f"to keep), then start the stack where corosync does not answer: {start} "
            f"{shlex.quote(self.stack.start_command)}",
            report,
            "rotate-interrupted",
        )
        error.exit_code = EXIT_INTERRUPTED
        return error


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
    options: "Sequence[str]" = (),
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
    run = _Restart(ssh, nodes, plan, report, note, stack, form_seconds, options)
    try:
        try:
            _forward(run, key, profile)
        except KeyboardInterrupt:
            raise run.where_each_stands() from None
    finally:
        clock()
    report.result = "rotated"
    report.nodes = {n: "new key, restarted, member again" for n in nodes}
    report.steps.append(f"cluster formed again with every node: down {report.downtime:.1f} s")
    return report


def _forward(run: "_Restart", key: bytes, profile: "Profile") -> None:
    """Stage, stop, commit, start, confirm; RotateError on any failure."""
    ssh, nodes, plan, report, stack = run.ssh, run.nodes, run.plan, run.report, run.stack
    run.note("staging the new key on every node")
    try:
        push(
            ssh, nodes, key, profile, plan.path, allow_crypto_off=False, between=run.stop_everywhere
        )
    except PushError as error:
        if error.report.commit_sent:
            raise run.recover(error.message, committed=True) from None
        if not stack.stopped:
            raise nothing_changed(report, error) from None
        failure = run.recover(error.message, committed=False)
        if failure.reference == "rolled-back":
            failure.message = (
                f"rotation stopped before any key changed: {error.message}; the cluster was "
                "started again on its old key"
            )
            failure.reference = error.reference
        raise failure from None
    report.steps.append("new key committed on every node")
    run.note("starting the cluster on every node")
    problems = stack.start(nodes)
    if not problems:
        run.note("waiting for the full membership")
        problems, _ = wait_whole(ssh, nodes, plan.members, timeout=run.form_seconds)
    if not problems:
        for node, held in fingerprints(ssh, nodes, plan.path or "").items():
            if held != report.new:
                problems[node] = "does not hold the new key"
    if problems:
        reason = "; ".join(f"{n}: {p}" for n, p in sorted(problems.items()))
        raise run.recover(reason, committed=True)
