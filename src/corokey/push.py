"""Two-phase, all-or-nothing push of a key to every node.

One ssh session per node carries both phases (:class:`corokey.nodekey.PushSession`):
the node shows its corosync.conf, so the key goes where corosync reads it; then it
stages a copy next to the key (owner and mode of the profile, fsynced, read back
by fingerprint; the pacemaker profile's owner is the node's own, from its user
database: corokey.pacemaker_access.owner_for) and waits.  Only when every node
staged the right copy does each get ``commit``: keep the current key as ``.old``
and rename the staged copy over it.  If any node fails phase 1, every session is
closed, every node removes its staged copy, and nothing changes.  A node failing in
phase 2 is reported with the command that finishes it; rerunning push completes it.

Round trips on a fresh connection (OpenSSH): 7 to connect and authenticate, 2 to
open the session and start the script (sshd opens the session's window only once
exec is accepted, and the node shows its corosync.conf in the same round trip), 1
to send the key and hear "staged", 1 to commit and read the key back: 11.  On an
open connection (ControlMaster): 4.  docs/benchmarks.md measures them.
"""

import shlex
import time
from typing import Callable, Dict, List, Optional, Tuple

from corokey.errors import CorokeyError
from corokey.key import fingerprint_hex
from corokey.keylocation import locate
from corokey.nodekey import NodeFailure, NodeView, PushSession
from corokey.pacemaker import REFERENCE as PACEMAKER_REFERENCE
from corokey.pacemaker import SHARED_MODE, SHARED_OWNER, push_plan, shares_corosync_key
from corokey.pacemaker_access import accounts_to_ask, owner_for
from corokey.profiles import Profile
from corokey.remote import Ssh

Progress = Callable[[str, str], None]  # (node, state)


class PushReport:
    """Per node: ``unchanged``, ``committed``, ``unreachable``, ``skipped``, ``aborted``,
    ``failed``; with the reason, and for phase-2 failures the node to copy from."""

    def __init__(self, fingerprint: str, size: int) -> None:
        self.fingerprint = fingerprint
        self.size = size
        self.path: Optional[str] = None
        self.states: Dict[str, str] = {}
        self.reasons: Dict[str, str] = {}
        self.references: Dict[str, str] = {}
        #: a node that holds the new key, from which ``push --from`` finishes the rest
        self.finish_from: Optional[str] = None
        #: nodes whose corosync (2.x) uses only the first 128 bytes of the key
        self.corosync2: List[str] = []
        #: nodes told to commit: whatever they answered, their key file may have changed
        self.commit_sent: List[str] = []
        #: nodes where Pacemaker reads corosync's key: written root:haclient 0440 there
        self.pacemaker: List[str] = []
        #: node -> user:group written there where it is not the profile's (the pacemaker
        #: profile on a node without user hacluster: root:root)
        self.owners: Dict[str, str] = {}
        self.seconds = 0.0

    def set(self, node: str, state: str, failure: "Optional[NodeFailure]" = None) -> None:
        self.states[node] = state
        if failure is not None:
            self.reasons[node] = failure.message
            self.references[node] = failure.reference

    def nodes_in(self, *states: str) -> "List[str]":
        return [n for n, s in self.states.items() if s in states]

    def to_json(self, finish: "Optional[Callable[[str], str]]" = None) -> "Dict[str, object]":
        return {
            "fingerprint": self.fingerprint,
            "size": self.size,
            "path": self.path,
            "corosync2_nodes": self.corosync2,
            "pacemaker_nodes": self.pacemaker,
            "owners": self.owners,
            "seconds": round(self.seconds, 3),
            "nodes": {
                node: {
                    "state": state,
                    "reason": self.reasons.get(node),
                    "reference": self.references.get(node),
                    "finish": finish(node) if finish and state == "failed" else None,
                }
                for node, state in self.states.items()
            },
        }


class PushError(CorokeyError):
    """The push did not complete; ``report`` says what happened on each node."""

    def __init__(self, message: str, hint: str, report: "PushReport") -> None:
        super().__init__(message, hint=hint, reference="push-failed")
        self.report = report


def push(
    ssh: "Ssh",
    nodes: "List[str]",
    key: bytes,
    profile: "Profile",
    key_path: "Optional[str]" = None,
    skip_unreachable: bool = False,
    progress: "Optional[Progress]" = None,
    allow_crypto_off: bool = True,
    between: "Optional[Callable[[], Optional[str]]]" = None,
    pacemaker_source: bool = False,
) -> "PushReport":
    """Put ``key`` on every node, all or nothing. Raises PushError with the report, or
    KeyLocationError when the nodes do not agree on where corosync reads its key.

    ``between`` runs once every node has staged, before any commit (rotate --restart stops
    the cluster there); a problem it returns aborts the push with nothing committed.
    ``pacemaker_source``: the key comes from a node whose Pacemaker reads it as Pacemaker
    Remote's key (push --from), so nodes where Pacemaker reads corosync's key may get it."""
    started = time.monotonic()
    report = PushReport(_fingerprint(key), len(key))
    note = progress or (lambda node, state: None)
    for node in nodes:  # the report lists nodes in the order given
        report.set(node, "waiting")

    accounts = accounts_to_ask(profile.name)
    sessions = {node: PushSession(ssh, node, accounts) for node in nodes}

    def conf_of(node: str) -> "Optional[NodeFailure]":
        note(node, "connecting")
        try:
            sessions[node].read_conf()
        except NodeFailure as failure:
            return failure
        return None

    failures = {n: f for n, f in ssh.each(nodes, conf_of).items() if f is not None}
    reachable = [n for n in nodes if n not in failures]
    try:
        path = locate(profile, key_path, {n: sessions[n].view for n in reachable}, allow_crypto_off)
    except CorokeyError:
        _close_all(sessions, reachable)
        raise
    report.path = path
    report.corosync2 = [n for n in reachable if sessions[n].view.effective < len(key)]
    for node, failure in failures.items():
        report.set(node, "unreachable" if failure.unreachable else "failed", failure)
        note(node, report.states[node])
    if failures and not (skip_unreachable and all(f.unreachable for f in failures.values())):
        _close_all(sessions, reachable)
        for node in reachable:
            report.set(node, "aborted")
        raise _phase_one_error(report, list(failures), failures)
    for node in failures:
        report.set(node, "skipped", failures[node])
    if profile.corosync:
        _pacemaker_plan(report, sessions, reachable, path, key, pacemaker_source)
    if accounts:
        report.owners = _owners(profile, {n: sessions[n].view for n in reachable})

    def stage_one(node: str) -> "Optional[NodeFailure]":
        note(node, "staging")
        owner, mode = report.owners.get(node, profile.owner_label()), profile.mode
        if node in report.pacemaker:
            owner, mode = SHARED_OWNER, SHARED_MODE
        try:
            staged = sessions[node].stage(path, key, owner, mode)
        except NodeFailure as failure:
            report.set(node, "unreachable" if failure.unreachable else "failed", failure)
            note(node, report.states[node])
            return failure
        report.set(node, "staged" if staged else "unchanged")
        note(node, report.states[node])
        return None

    staging = {n: f for n, f in ssh.each(reachable, stage_one).items() if f is not None}
    todo = report.nodes_in("staged")
    if staging:
        ssh.each(todo, lambda n: sessions[n].abort())
        for node in todo:
            report.set(node, "aborted")
        report.seconds = time.monotonic() - started
        raise _phase_one_error(report, list(staging), staging)
    problem = between() if between is not None else None
    if problem is not None:
        ssh.each(todo, lambda n: sessions[n].abort())
        for node in todo:
            report.set(node, "aborted")
        report.seconds = time.monotonic() - started
        error = PushError(f"{problem}: nothing was committed on any node", "", report)
        error.hint = "fix the cause and run again"
        raise error

    def commit_one(node: str) -> bool:
        report.commit_sent.append(node)
        try:
            held = sessions[node].commit()
        except NodeFailure as failure:
            report.set(node, "failed", failure)
            note(node, "failed")
            return False
        if held.sha256 != fingerprint_hex(key):
            report.set(node, "failed")
            report.reasons[node] = f"{node}: the key does not read back as the new one"
            return False
        report.set(node, "committed")
        note(node, "committed")
        return True

    results = ssh.each(todo, commit_one)
    report.seconds = time.monotonic() - started
    failed = [n for n in todo if not results[n]]
    if failed:
        report.finish_from = next(iter(report.nodes_in("committed", "unchanged")), None)
        raise PushError(
            f"the new key is committed on {len(todo) - len(failed)} node(s) but not on "
            f"{', '.join(failed)}",
            "run the finish command reported for each node (or push again: it completes "
            "what is missing)",
            report,
        )
    return report


def _pacemaker_plan(
    report: "PushReport",
    sessions: "Dict[str, PushSession]",
    nodes: "List[str]",
    path: str,
    key: bytes,
    pacemaker_source: bool,
) -> None:
    """Where Pacemaker reads corosync's key (corokey.pacemaker), keep it readable for
    Pacemaker, and refuse a new key there before anything is staged."""
    facts = {n: sessions[n].view.pacemaker for n in nodes}
    report.pacemaker, problem = push_plan(facts, path, fingerprint_hex(key), pacemaker_source)
    if problem is not None:
        _close_all(sessions, nodes)
        for node in nodes:
            report.set(node, "aborted")
        message, hint = problem
        error = PushError(f"{message}: nothing was changed on any node", hint, report)
        error.reference = PACEMAKER_REFERENCE
        raise error


def _owners(profile: "Profile", views: "Dict[str, NodeView]") -> "Dict[str, str]":
    """The nodes where the pacemaker profile's key gets another owner than the profile's,
    from their user database (corokey.pacemaker_access.owner_for)."""
    owners = {n: owner_for(v.accounts) for n, v in views.items()}
    return {n: owner for n, owner in owners.items() if owner != profile.owner_label()}


def _close_all(sessions: "Dict[str, PushSession]", nodes: "List[str]") -> None:
    for node in nodes:
        sessions[node].abort()


def _phase_one_error(
    report: "PushReport", broken: "List[str]", failures: "Dict[str, NodeFailure]"
) -> "PushError":
    unreachable = all(failures[n].unreachable for n in broken)
    first = failures[broken[0]]
    hint = (
        "fix the connection (ssh NODE true) and push again; --skip-unreachable leaves "
        "unreachable nodes out"
        if unreachable
        else first.hint
    )
    error = PushError(
        f"{'cannot reach' if unreachable else 'staging failed on'} {', '.join(broken)} "
        f"({first.message}): nothing was changed on any node",
        hint,
        report,
    )
    error.reference = "unreachable" if unreachable else first.reference
    return error


def finish_command(report: "PushReport", node: str, options: "List[str]") -> "Optional[str]":
    """The command that finishes a node that failed in phase 2: copy the key from a node
    that holds it (``options`` are the push's own ssh and path options)."""
    if report.finish_from is None:
        return None
    argv = ["corokey", "push", "--from", report.finish_from, "--nodes", node, *options]
    return " ".join(shlex.quote(a) for a in argv)


def read_from(
    ssh: "Ssh", node: str, profile: "Profile", key_path: "Optional[str]"
) -> "Tuple[bytes, str, bool]":
    """push --from: the key ``node``'s corosync reads, into memory, its label, and whether
    ``node``'s Pacemaker reads it as Pacemaker Remote's key (then it is the remote nodes'
    key, and push may bring other nodes to it)."""
    from corokey.nodekey import look, read_key

    first = key_path or profile.path
    try:
        view = look(ssh, node, [first])
        path = locate(profile, key_path, {node: view})
        key = read_key(ssh, node, path)
    except NodeFailure as failure:
        raise CorokeyError(
            f"cannot read the key on {node}: {failure.message}",
            hint=failure.hint,
            reference=failure.reference,
        ) from None
    shared = profile.corosync and shares_corosync_key(view.pacemaker, path) is not None
    return key, f"{node}:{path}", shared


def reload_each(ssh: "Ssh", nodes: "List[str]") -> "Dict[str, str]":
    """``corosync-cfgtool -R`` on each node, one at a time (each reload reaches only that
    node's membership); what failed, by node."""
    from corokey.nodekey import reload

    failed = {}
    for node in nodes:
        try:
            reload(ssh, node)
        except NodeFailure as failure:
            failed[node] = failure.message
    return failed


def _fingerprint(key: bytes) -> str:
    from corokey.key import fingerprint

    return fingerprint(key)
