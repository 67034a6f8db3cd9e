"""rotate's preflight: every node looked at in one session each, every reason to refuse
listed before anything changes (docs/rotate.md, "What corokey rotate does with this", 1)."""

from typing import Dict, List, Optional, Set, Tuple

from corokey.checks import host_fips_enabled
from corokey.clusterwatch import RELOAD_OK
from corokey.errors import CorokeyError
from corokey.findings import ERROR
from corokey.key import FIPS_KEY_LEN_MAX, fingerprint_hex
from corokey.keylocation import locate
from corokey.nodekey import NodeFailure, NodeView, look
from corokey.pacemaker import REFERENCE as PACEMAKER_REFERENCE
from corokey.pacemaker import refusal as pacemaker_refusal
from corokey.pacemaker import shares_corosync_key
from corokey.profiles import Profile
from corokey.remote import Ssh
from corokey.verify import key_findings

#: Online key change needs corosync 3.1 (cfgtool -R reloads crypto) with knet 1.18.
MIN_VERSION = (3, 1)


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
