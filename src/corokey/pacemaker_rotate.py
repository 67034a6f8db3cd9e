"""``rotate --profile pacemaker``: a new Pacemaker Remote key on a running cluster, online.

Pacemaker before 3.0.2 reads its key at each TLS handshake through a 60 s cache per
process (docs/pacemaker.md); established connections are never re-keyed.  So:

1. preflight: every node of the CIB reachable and online (a node stopped on purpose is
   refused unless left out), no bundle (their containers hold a bind mount of the old
   file), Pacemaker below 3.0.2 everywhere, one PCMK_authkey_location, the current key
   identical and sound everywhere;
2. maintenance-mode on (unless the admin had it on): a connection that drops inside the
   window below is not recovered (a recovery would handshake, could fail, and a remote
   node whose connection cannot be recovered can be fenced);
3. the new key staged on every node, then committed on every node at once (push);
4. the window: a process that read the key just before its node's commit may use the old
   one until 60 s after (Pacemaker compares whole seconds), so corokey waits 61 s after
   the last commit;
5. maintenance-mode off; every remote and guest node read back online; on request a
   remote node's pacemaker-remoted restarted to prove a new handshake works.

A failure after a commit puts ``.old`` back on every node whose key changed, reads every
node back, and leaves maintenance-mode on only when the nodes still disagree.
"""

import contextlib
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

from corokey.cib import BUNDLE, CLUSTER, ONLINE
from corokey.errors import CorokeyError
from corokey.exitcodes import EXIT_INTERRUPTED
from corokey.key import WHOLE_FILE, fingerprint_hex
from corokey.nodekey import NodeFailure
from corokey.nodescripts import maintenance_script, own_script, pacemaker_facts_script
from corokey.pacemaker_access import owner_for
from corokey.pacemaker_nodes import Topology, run_script
from corokey.pacemaker_window import (
    CACHE_WINDOW_SECONDS,
    READS_ONCE_FROM,
    RESTART_PROCEDURE,
    STABLE_SECONDS,
    bundle_problem,
    version_tuple,
)
from corokey.pacemaker_window import watch as watch_states
from corokey.profiles import Profile
from corokey.remote import Ssh

Progress = Callable[[str, str], None]


class PacemakerRotateError(CorokeyError):
    """The rotation was refused or rolled back; ``report`` says where each node stands."""

    reference = "pacemaker-rotate"

    def __init__(
        self,
        message: str,
        hint: str,
        report: "PacemakerRotateReport",
        reference: "Optional[str]" = None,
    ) -> None:
        super().__init__(message, hint=hint, reference=reference)
        self.report = report


class NodeFacts:
    def __init__(self, version: "Optional[str]", role: str, maintenance: bool, location: str):
        self.version = version
        self.role = role
        self.maintenance = maintenance
        self.location = location

    @property
    def version_tuple(self) -> "Optional[tuple[int, ...]]":
        return version_tuple(self.version)


class PacemakerRotateReport:
    def __init__(self) -> None:
        self.outcome = "refused"
        self.states: Dict[str, str] = {}
        self.left_out: List[str] = []
        self.maintenance_set = False
        self.window_seconds = 0.0
        self.seconds = 0.0
        #: per remote/guest node: seconds it was seen offline while corokey watched
        self.offline: Dict[str, float] = {}
        self.proved_on: Optional[str] = None
        #: node -> user:group of the key where it is not the profile's (push's owners)
        self.owners: Dict[str, str] = {}

    def to_json(self) -> "Dict[str, object]":
        return {
            "outcome": self.outcome,
            "nodes": self.states,
            "left_out": self.left_out,
            "maintenance_mode_set": self.maintenance_set,
            "window_seconds": round(self.window_seconds, 1),
            "seconds": round(self.seconds, 1),
            "offline_seconds": {n: round(s, 1) for n, s in self.offline.items()},
            "proved_on": self.proved_on,
            "owners": self.owners,
        }


def node_facts(ssh: "Ssh", node: str) -> "NodeFacts":
    """Pacemaker's version, the node's part and PCMK_authkey_location. Raises NodeFailure."""
    for answer in run_script(ssh, node, pacemaker_facts_script())[1]:
        if answer.name == "pacemaker":
            version = answer.get("version")
            return NodeFacts(
                None if version in ("", "none") else version,
                answer.get("role"),
                answer.get("maintenance") == "true",
                answer.get("path"),
            )
    raise NodeFailure.lost(node, "reading Pacemaker's facts")


def set_maintenance(ssh: "Ssh", node: str, on: bool) -> None:
    """maintenance-mode on or off, through ``node``. Raises NodeFailure."""
    answers = run_script(ssh, node, maintenance_script(on))[1]
    if not any(a.name == "maintenance" for a in answers):
        raise NodeFailure.lost(node, "crm_attribute")


def topology_problems(topology: "Topology", leave_out: "Sequence[str]") -> "List[str]":
    """Why the nodes of ``topology`` cannot be rotated online (empty: they can)."""
    problems: List[str] = []
    left = set(leave_out)
    bundles = sorted(
        {m.node.resource or m.node.name for m in topology.members if m.node.kind == BUNDLE}
    )
    if bundles:
        problems.append(bundle_problem(bundles))
    known = {m.node.name for m in topology.members} | {m.ssh_name for m in topology.members}
    unknown = sorted(left - known)
    if unknown:
        problems.append(f"--leave-out names {', '.join(unknown)}, which the CIB does not")
    if not any(
        m.node.kind == CLUSTER and m.node.name not in left and m.ssh_name not in left
        for m in topology.members
    ):
        problems.append("no cluster node is left to run the rotation through")
    if not topology.states_known:
        problems.append(f"crm_mon did not answer on {topology.source}: node states unknown")
        return problems
    for member in topology.members:
        node = member.node
        if node.kind == BUNDLE or node.name in left or member.ssh_name in left:
            continue
        if node.state == ONLINE:
            continue
        if node.stopped:
            problems.append(
                f"{node.name} ({node.kind}) is stopped on purpose (target-role Stopped): "
                f"leave it out with --leave-out {node.name}; it must then get the new key "
                "before it starts"
            )
        else:
            problems.append(f"{node.name} ({node.kind}) is {node.state}")
    return problems


def facts_problems(facts: "Dict[str, NodeFacts]", path: str, topology: "Topology") -> "List[str]":
    problems: List[str] = []
    members = topology.by_ssh_name()
    for node, fact in facts.items():
        version = fact.version_tuple
        if version is None:
            problems.append(f"{node}: Pacemaker not found (no pacemakerd or pacemaker-remoted)")
        elif version >= READS_ONCE_FROM:
            problems.append(f"{node}: Pacemaker {fact.version}. {RESTART_PROCEDURE}")
        if fact.location and fact.location != path:
            problems.append(
                f"{node}: PCMK_authkey_location is {fact.location}, not {path}: give "
                "--key-path when every node uses that location"
            )
        member = members.get(node)
        expected = "cluster" if member and member.node.kind == CLUSTER else "remote"
        if member is not None and fact.role not in (expected, "cluster"):
            problems.append(
                f"{node}: {member.node.name} is a {expected} node but runs no "
                f"{'pacemakerd' if expected == 'cluster' else 'pacemaker-remoted'}"
            )
    return problems


def rotate_pacemaker(
    ssh: "Ssh",
    topology: "Topology",
    profile: "Profile",
    new_key: bytes,
    key_path: "Optional[str]" = None,
    leave_out: "Sequence[str]" = (),
    window: float = CACHE_WINDOW_SECONDS,
    online_timeout: float = 120.0,
    prove: "Optional[Callable[[], Optional[str]]]" = None,
    progress: "Optional[Progress]" = None,
    dry_run: bool = False,
) -> "PacemakerRotateReport":
    """Rotate Pacemaker Remote's key online. Raises PacemakerRotateError (refused, or
    rolled back with every node read back)."""
    from corokey.push import PushError, push
    from corokey.verify import verify

    note = progress or (lambda node, state: None)
    started = time.monotonic()
    report = PacemakerRotateReport()
    targets = topology.targets(leave_out)
    report.left_out = [
        m.node.name for m in topology.members if m.reached and m.ssh_name not in targets
    ]
    path = key_path or profile.path
    problems = topology_problems(topology, leave_out)
    roles = {
        m.ssh_name: ("cluster" if m.node.kind == CLUSTER else "remote")
        for m in topology.members
        if m.reached
    }
    before = verify(ssh, targets, profile, key_path, roles)
    if before.unreachable:
        problems.append("unreachable: " + ", ".join(before.unreachable))
    elif before.exit_code != 0:
        problems.append(
            "the current key is not the same sound key on every node"
            + (f" (odd: {', '.join(before.odd)})" if before.odd else "")
            + "; run corokey verify --profile pacemaker and fix that first"
        )
    facts: Dict[str, NodeFacts] = {}
    reachable = [n for n in targets if n not in before.unreachable]
    for node, result in ssh.each(reachable, lambda n: _facts_or_failure(ssh, n)).items():
        if isinstance(result, NodeFailure):
            problems.append(result.message)
        else:
            facts[node] = result
    problems += facts_problems(facts, path, topology)
    for node in targets:
        report.states[node] = "old key"
    if problems:
        raise PacemakerRotateError(
            "refusing to rotate Pacemaker Remote's key: " + "; ".join(problems),
            "fix the cause (or leave a node stopped on purpose out with --leave-out NAME) and "
            "run again; nothing was changed",
            report,
            reference="pacemaker-rotate-refused",
        )
    if dry_run:
        report.outcome = "preflight passed"
        return report
    old_sha = before.reference
    assert old_sha is not None  # noqa: S101 - exit code 0 means one key everywhere
    cluster_node = next(n for n in targets if roles.get(n) == "cluster")
    already = any(f.maintenance for f in facts.values())
    if not already:
        note(cluster_node, "maintenance-mode on")
        _maintenance(ssh, cluster_node, True, report)
        report.maintenance_set = True
    try:
        report.owners = push(ssh, targets, new_key, profile, key_path, progress=note).owners
    except PushError as error:
        _roll_back(ssh, targets, profile, key_path, roles, old_sha, report, cluster_node, window)
        raise PacemakerRotateError(
            f"the new key could not be put on every node ({error.message}); " + _where(report),
            "run corokey verify --profile pacemaker; then rotate again",
            report,
        ) from None
    for node in targets:
        report.states[node] = "new key"
    try:
        return _after_commit(
            ssh,
            topology,
            profile,
            new_key,
            key_path,
            leave_out,
            window,
            online_timeout,
            prove,
            note,
            report,
            targets,
            roles,
            cluster_node,
            started,
        )
    except KeyboardInterrupt:
        left_on = report.maintenance_set
        stopped = PacemakerRotateError(
            "interrupted after the new key was committed on every node"
            + ("; the cluster is still in maintenance-mode" if left_on else ""),
            "wait 60 s (Pacemaker's key caches), then "
            + (
                f"on {cluster_node}: crm_attribute --type crm_config --name maintenance-mode "
                "--update false, and "
                if left_on
                else ""
            )
            + "corokey verify --profile pacemaker",
            report,
            reference="interrupted",
        )
        stopped.exit_code = EXIT_INTERRUPTED
        raise stopped from None


def _after_commit(
    ssh: "Ssh",
    topology: "Topology",
    profile: "Profile",
    new_key: bytes,
    key_path: "Optional[str]",
    leave_out: "Sequence[str]",
    window: float,
    online_timeout: float,
    prove: "Optional[Callable[[], Optional[str]]]",
    note: "Progress",
    report: "PacemakerRotateReport",
    targets: "List[str]",
    roles: "Dict[str, str]",
    cluster_node: str,
    started: float,
) -> "PacemakerRotateReport":
    """The window, maintenance-mode off, every remote node back, the proof, the read-back."""
    from corokey.verify import verify

    committed = time.monotonic()
    note(cluster_node, f"waiting {window:g} s for every key cache to expire")
    offline = watch(ssh, topology, cluster_node, leave_out, committed + window, until_online=False)
    report.window_seconds = time.monotonic() - committed
    if report.maintenance_set:
        note(cluster_node, "maintenance-mode off")
        _maintenance(ssh, cluster_node, False, report)
    deadline = time.monotonic() + online_timeout
    after_window = watch(ssh, topology, cluster_node, leave_out, deadline, until_online=True)
    report.offline = {
        name: -1.0 if after_window[name] < 0 else offline[name] + after_window[name]
        for name in offline
    }
    still = [n for n, s in report.offline.items() if s < 0]
    if still:
        report.outcome = "rotated, not all online"
        raise PacemakerRotateError(
            f"the new key is on every node, but {', '.join(still)} did not come back online "
            f"within {online_timeout:g} s",
            "run corokey doctor --profile pacemaker on those nodes and on a cluster node",
            report,
            reference="pacemaker-remote-offline",
        )
    if prove is not None:
        problem = prove()
        if problem:
            report.outcome = "rotated, proof failed"
            raise PacemakerRotateError(
                problem,
                "run corokey doctor --profile pacemaker there",
                report,
                reference="pacemaker-proof-failed",
            )
    after = verify(ssh, targets, profile, key_path, roles)
    if after.reference != fingerprint_hex(new_key) or after.exit_code != 0:
        report.outcome = "rotated, read-back differs"
        raise PacemakerRotateError(
            "the nodes do not all read back the new key",
            "run corokey verify --profile pacemaker",
            report,
            reference="pacemaker-rotate-readback",
        )
    report.outcome = "rotated"
    report.seconds = time.monotonic() - started
    return report


def _facts_or_failure(ssh: "Ssh", node: str) -> "Union[NodeFacts, NodeFailure]":
    try:
        return node_facts(ssh, node)
    except NodeFailure as failure:
        return failure


def _maintenance(ssh: "Ssh", node: str, on: bool, report: "PacemakerRotateReport") -> None:
    try:
        set_maintenance(ssh, node, on)
    except NodeFailure as failure:
        raise PacemakerRotateError(
            failure.message, failure.hint, report, reference=failure.reference
        ) from None


def _roll_back(
    ssh: "Ssh",
    targets: "List[str]",
    profile: "Profile",
    key_path: "Optional[str]",
    roles: "Dict[str, str]",
    old_sha: str,
    report: "PacemakerRotateReport",
    cluster_node: str,
    window: float,
) -> None:
    """``.old`` back on every node whose key is not the old one; every node read back;
    maintenance-mode off only when all hold the old key again, a cache window after the
    last node held the new one."""
    from corokey.nodekey import restore_old
    from corokey.verify import verify

    path = key_path or profile.path
    now = verify(ssh, targets, profile, key_path, roles)
    changed = {
        s.node: owner_for(s.view.accounts if s.view else None)
        for s in now.states
        if s.key is not None and s.key.sha256 != old_sha
    }
    for node, owner in changed.items():
        with contextlib.suppress(NodeFailure):  # every node is read back below
            restore_old(ssh, node, path, old_sha)
            # .old was kept 0600 (no group bits); pacemaker-controld (hacluster) must read
            # it; root:root where hacluster does not exist (corokey.pacemaker_access).
            run_script(ssh, node, own_script(path, owner, profile.mode, old_sha, WHOLE_FILE))
    back = verify(ssh, targets, profile, key_path, roles)
    if changed and report.maintenance_set:
        # A process may have cached the new key while it was there: the window again
        # before the cluster may reconnect anything.
        time.sleep(window)
    for state in back.states:
        if state.unreachable is not None:
            report.states[state.node] = "unknown (unreachable)"
        elif state.key is not None and state.key.sha256 == old_sha:
            report.states[state.node] = "old key"
        else:
            report.states[state.node] = "NOT the old key"
    report.outcome = (
        "rolled back"
        if all(s == "old key" for s in report.states.values())
        else "rollback incomplete"
    )
    if report.maintenance_set and report.outcome == "rolled back":
        try:
            set_maintenance(ssh, cluster_node, False)
            report.maintenance_set = False
        except NodeFailure:
            pass


def _where(report: "PacemakerRotateReport") -> str:
    if report.outcome == "rolled back":
        return "every node holds the old key again (read back)"
    by_state = ", ".join(f"{n}: {s}" for n, s in report.states.items())
    kept = " maintenance-mode stays on." if report.maintenance_set else ""
    return f"rollback incomplete ({by_state}).{kept}"


def watch(
    ssh: "Ssh",
    topology: "Topology",
    cluster_node: str,
    leave_out: "Sequence[str]",
    until: float,
    until_online: bool,
    interval: float = 1.0,
    stable: float = STABLE_SECONDS,
) -> "Dict[str, float]":
    """Per remote and guest node, the seconds crm_mon on ``cluster_node`` showed it offline,
    polling until the monotonic time ``until`` (with ``until_online``: or until every one
    has been online for ``stable`` seconds in a row; then -1 for a node not so at
    ``until``)."""
    from corokey.cib import states_from_crm_mon
    from corokey.pacemaker_nodes import ask_cib

    left = set(leave_out)
    watched = [
        m.node.name
        for m in topology.members
        if m.node.kind not in (CLUSTER, BUNDLE)
        and m.node.name not in left
        and m.ssh_name not in left
    ]

    def states() -> "Dict[str, str]":
        try:
            _, crm_mon = ask_cib(ssh, cluster_node)
            return states_from_crm_mon(crm_mon) if crm_mon else {}
        except (NodeFailure, ValueError):
            return {}

    return watch_states(states, watched, until, until_online, interval, stable)


def prove_by_restart(
    ssh: "Ssh",
    topology: "Topology",
    cluster_node: str,
    remote: str,
    command: str,
    timeout: float = 120.0,
) -> "Optional[str]":
    """Restart pacemaker-remoted on the remote node ``remote`` (ssh name) with ``command``
    and wait until crm_mon shows it online again: a new handshake with the new key. What
    went wrong, or None."""
    from corokey.nodekey import run_command

    member = topology.by_ssh_name().get(remote)
    if member is None or member.node.kind == CLUSTER:
        return f"{remote} is not a remote or guest node of the CIB"
    try:
        run_command(ssh, remote, command, "restart")
    except NodeFailure as failure:
        return failure.message
    time.sleep(2.0)  # let the cluster notice the connection drop before watching
    others = [m.node.name for m in topology.members if m.ssh_name != remote]
    seen = watch(ssh, topology, cluster_node, others, time.monotonic() + timeout, True)
    if seen.get(member.node.name, 0.0) < 0:
        return (
            f"{member.node.name} did not come back online within {timeout:g} s after its "
            "pacemaker-remoted restarted"
        )
    return None
