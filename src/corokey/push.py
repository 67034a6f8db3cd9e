"""Two-phase, all-or-nothing push of a key to every node.

Phase 1 stages a copy next to the key on every node that needs it (owner and
mode of the profile, fsynced, read back by fingerprint).  Only when every node
staged the right copy does phase 2 commit: keep the current key as ``.old``
and rename the staged copy over it.  If any node fails phase 1, the staged
copies are removed everywhere and nothing changes.  A node failing in phase 2
is reported with the command that finishes it; rerunning push completes it.
"""

import hashlib
import os
import time
from typing import Callable, Dict, List, Optional

from corokey.errors import CorokeyError
from corokey.nodekey import NodeKeyError, RemoteKey, commit, commit_command, stage
from corokey.nodekey import abort as abort_stage
from corokey.profiles import Profile
from corokey.remote import Ssh

Progress = Callable[[str, str], None]  # (node, state)


class PushError(CorokeyError):
    """The push did not complete; ``report`` says what happened on each node."""

    def __init__(self, message: str, hint: str, report: "PushReport") -> None:
        super().__init__(message, hint=hint, reference="push-failed")
        self.report = report


class PushReport:
    """Per node: ``unchanged``, ``committed``, ``unreachable``, ``skipped``, ``aborted``,
    ``failed``; with the reason and (for phase-2 failures) the command that finishes it."""

    def __init__(self, fingerprint: str, size: int) -> None:
        self.fingerprint = fingerprint
        self.size = size
        self.states: Dict[str, str] = {}
        self.reasons: Dict[str, str] = {}
        self.finish: Dict[str, str] = {}
        self.seconds = 0.0

    def set(self, node: str, state: str, reason: "Optional[str]" = None) -> None:
        self.states[node] = state
        if reason:
            self.reasons[node] = reason

    def to_json(self) -> "Dict[str, object]":
        return {
            "fingerprint": self.fingerprint,
            "size": self.size,
            "seconds": round(self.seconds, 3),
            "nodes": {
                node: {
                    "state": state,
                    "reason": self.reasons.get(node),
                    "finish": self.finish.get(node),
                }
                for node, state in self.states.items()
            },
        }


def holds(remote: "RemoteKey", sha256: str, size: int, profile: "Profile") -> bool:
    """Whether a node already holds this key with the profile's owner and mode."""
    return (
        remote.kind == "regular"
        and remote.sha256 == sha256
        and remote.size == size
        and remote.nlink == 1
        and remote.mode == profile.mode
        and remote.owner == profile.owner
        and remote.group == profile.group
    )


def _pause_for_tests(point: str) -> None:
    # Fault injection for the kill tests: stop at a named point so SIGKILL lands there.
    if os.environ.get("COROKEY_TEST_PAUSE_AT") == point:
        time.sleep(float(os.environ.get("COROKEY_TEST_PAUSE_SECONDS", "30")))


def push(
    ssh: "Ssh",
    nodes: "List[str]",
    key: bytes,
    profile: "Profile",
    key_path: "Optional[str]" = None,
    skip_unreachable: bool = False,
    progress: "Optional[Progress]" = None,
) -> "PushReport":
    """Put ``key`` on every node, all or nothing. Raises PushError with the report."""
    started = time.monotonic()
    path = key_path or profile.path
    sha256 = hashlib.sha256(key[:4096]).hexdigest()
    report = PushReport(_fingerprint(key), len(key))
    note = progress or (lambda node, state: None)
    for node in nodes:  # the report lists nodes in the order given
        report.set(node, "waiting")

    owner = profile.owner_label()
    unchanged = "unchanged"

    def stage_one(node: str) -> "Optional[str]":
        note(node, "staging")
        try:
            staged = stage(ssh, node, path, key, owner, profile.mode)
        except NodeKeyError as exc:
            state = "unreachable" if exc.result.unreachable else "failed"
            report.set(node, state, str(exc))
            note(node, state)
            return None
        note(node, "staged" if staged else unchanged)
        return staged or unchanged

    staged = ssh.each(nodes, stage_one)
    for node in nodes:
        if staged[node] == unchanged:
            report.set(node, unchanged)
    broken = [n for n in nodes if staged[n] is None]
    if broken and skip_unreachable and all(report.states[n] == "unreachable" for n in broken):
        for node in broken:
            report.set(node, "skipped", report.reasons.get(node))
        broken = []
    todo = [n for n in nodes if staged[n] not in (None, unchanged)]
    _pause_for_tests("staged")
    if broken:
        ssh.each(todo, lambda n: abort_stage(ssh, n, path, staged[n] or ""))
        for node in todo:
            report.set(node, "aborted")
        report.seconds = time.monotonic() - started
        unreachable = all(report.states[n] == "unreachable" for n in broken)
        raise PushError(
            f"{'cannot reach' if unreachable else 'staging failed on'} {', '.join(broken)} "
            f"({report.reasons[broken[0]]}): nothing was changed on any node",
            "fix the connection (ssh NODE true) and push again; --skip-unreachable leaves "
            "unreachable nodes out"
            if unreachable
            else "fix the cause on those nodes and push again",
            report,
        )

    def commit_one(node: str) -> bool:
        name = staged[node] or ""
        _pause_for_tests(f"commit:{node}")
        try:
            commit(ssh, node, path, name, sha256)
        except NodeKeyError as exc:
            report.set(node, "failed", str(exc))
            report.finish[node] = ssh.command_line(
                node, commit_command(path, name, sha256, for_admin=True)
            )
            note(node, "failed")
            return False
        report.set(node, "committed")
        note(node, "committed")
        return True

    results = ssh.each(todo, commit_one)
    report.seconds = time.monotonic() - started
    failed = [n for n in todo if not results[n]]
    if failed:
        raise PushError(
            f"the new key is committed on {len(todo) - len(failed)} node(s) but not on "
            f"{', '.join(failed)}",
            "run push again to finish (it completes what is missing), or run the command "
            "reported for each node",
            report,
        )
    return report


def _fingerprint(key: bytes) -> str:
    from corokey.key import fingerprint

    return fingerprint(key)
