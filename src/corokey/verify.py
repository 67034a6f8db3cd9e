"""Do all nodes hold the same sound key where corosync reads it?  Fingerprints only."""

import shlex
from typing import Dict, List, Optional

from corokey.checks import ERROR, Finding, host_fips_enabled, mode_findings, size_findings
from corokey.exitcodes import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from corokey.key import KEY_LEN_MAX
from corokey.keylocation import locate
from corokey.nodekey import NodeFailure, NodeView, RemoteKey, look
from corokey.pacemaker import adjust_findings, shares_corosync_key
from corokey.profiles import Profile
from corokey.remote import Ssh
from corokey.secretfile import FileFacts


class NodeState:
    def __init__(self, node: str) -> None:
        self.node = node
        self.key: Optional[RemoteKey] = None
        self.old: Optional[RemoteKey] = None
        self.view: Optional[NodeView] = None
        self.unreachable: Optional[str] = None
        self.findings: List[Finding] = []


class VerifyReport:
    def __init__(self, path: str, states: "List[NodeState]") -> None:
        self.path = path
        self.states = states
        groups: Dict[str, List[str]] = {}
        for state in states:
            if state.key is not None and state.key.used:
                groups.setdefault(state.key.used, []).append(state.node)
        self.groups = groups
        sizes = sorted((len(members) for members in groups.values()), reverse=True)
        #: the largest groups are equally large: no majority says which key is right
        self.tie = len(sizes) > 1 and sizes[0] == sizes[1]
        # The key most nodes hold is the reference; the others are odd.
        self.reference = (
            None if self.tie else max(groups, key=lambda fp: len(groups[fp]), default=None)
        )
        self.odd = [
            s.node
            for s in states
            if s.key is not None
            and (s.key.used is None or self.tie or s.key.used != self.reference)
        ]
        self.unreachable = [s.node for s in states if s.unreachable is not None]
        self.unsound = [s.node for s in states if any(f.severity == ERROR for f in s.findings)]
        #: nodes whose corosync (2.x) uses only the first 128 bytes: compared on those
        self.corosync2 = [
            s.node for s in states if s.view is not None and s.view.effective < KEY_LEN_MAX
        ]

    @property
    def exit_code(self) -> int:
        if self.unreachable:
            return EXIT_ERROR
        if self.odd or self.unsound or len(self.groups) != 1:
            return EXIT_FINDINGS
        return EXIT_OK

    def fix(self) -> "Optional[str]":
        """The push that brings the odd nodes to the majority's key; None on a tie (no
        majority knows the right key: doctor on a member tells which key corosync runs)."""
        if self.tie:
            return None
        good = [
            s.node
            for s in self.states
            if s.key and s.key.used == self.reference and s.node not in self.unsound
        ]
        targets = [s.node for s in self.states if s.node in set(self.odd) | set(self.unsound)]
        if not targets or not good:
            return None
        argv = ["corokey", "push", "--from", good[0], "--nodes", ",".join(targets)]
        return " ".join(shlex.quote(a) for a in argv)

    def to_json(self) -> "Dict[str, object]":
        return {
            "path": self.path,
            "same": self.exit_code == 0,
            "reference_sha256": self.reference,
            "tie": self.tie,
            "odd": self.odd,
            "unreachable": self.unreachable,
            "fix": self.fix(),
            "nodes": [
                {
                    "node": s.node,
                    "unreachable": s.unreachable,
                    "kind": s.key.kind if s.key else None,
                    "sha256": s.key.sha256 if s.key else None,
                    "used_sha256": s.key.used if s.key else None,
                    "size": s.key.size if s.key else None,
                    "mode": f"{s.key.mode:04o}" if s.key else None,
                    "owner": f"{s.key.owner}:{s.key.group}" if s.key else None,
                    "old": _old_json(s.old),
                    "corosync_version": s.view.corosync_version if s.view else None,
                    "effective_bytes": s.view.effective if s.view else None,
                    "findings": [f.to_json() for f in s.findings],
                }
                for s in self.states
            ],
        }


def _old_json(old: "Optional[RemoteKey]") -> "Optional[Dict[str, object]]":
    if old is None or old.kind == "missing":
        return None
    return {"kind": old.kind, "mode": f"{old.mode:04o}", "nlink": old.nlink}


def verify(
    ssh: "Ssh", nodes: "List[str]", profile: "Profile", key_path: "Optional[str]" = None
) -> "VerifyReport":
    """Compare the key corosync reads on every node. Raises KeyLocationError when the
    nodes' corosync.conf do not name one key file."""
    fips = host_fips_enabled()
    states = {node: NodeState(node) for node in nodes}
    first = key_path or profile.path

    def view_of(node: str, paths: "List[str]") -> None:
        try:
            states[node].view = look(ssh, node, paths)
        except NodeFailure as failure:
            states[node].unreachable = failure.message

    ssh.each(nodes, lambda n: view_of(n, [first]))
    views = {n: s.view for n, s in states.items() if s.view is not None}
    path = locate(profile, key_path, views)
    # The conf named a key file the first look did not reach: look there.
    ssh.each([n for n, v in views.items() if path not in v.keys], lambda n: view_of(n, [path]))
    for state in states.values():
        if state.view is None or path not in state.view.keys:
            continue
        state.key = state.view.keys[path]
        state.old = state.view.olds.get(path)
        state.findings = key_findings(state.view, path, profile, fips, f"{state.node}:{path}")
    return VerifyReport(path, [states[n] for n in nodes])


def key_findings(
    view: "NodeView", path: str, profile: "Profile", fips: bool, label: str
) -> "List[Finding]":
    """What ``corokey check`` would say of the key at ``path`` on a node, and of the
    ``.old`` copy beside it (as secret as the key) and the directory holding both."""
    key = view.keys[path]
    findings = _file_findings(key, profile, label)
    if profile.corosync:
        reason = shares_corosync_key(view.pacemaker, path)
        findings = adjust_findings(findings, reason, label, key.mode)
    if key.kind == "regular":
        findings += size_findings(key.size, profile, fips, label)
    old = view.olds.get(path)
    if old is not None and old.kind != "missing":
        findings += [
            Finding(f.severity, "old-" + f.reference, f.message, f.fix)
            for f in _file_findings(old, profile, label + ".old", old=True)
        ]
    directory = path.rsplit("/", 1)[0] or "/"
    if directory in view.unsafe_dirs:
        findings.append(
            Finding(
                ERROR,
                "directory-writable",
                f"{label}: others can write to its directory ({view.unsafe_dirs[directory]})",
                f"chown root {shlex.quote(directory)} && chmod go-w {shlex.quote(directory)}",
            )
        )
    return findings


def _file_findings(
    key: "RemoteKey", profile: "Profile", label: str, old: bool = False
) -> "List[Finding]":
    if key.kind == "missing":
        return [Finding(ERROR, "missing", f"{label} does not exist")]
    if key.kind != "regular":
        return [Finding(ERROR, "not-regular", f"{label} is a {key.kind}, not a regular file")]
    findings = mode_findings(FileFacts(label, "regular", mode=key.mode), profile)
    if old:
        # .old only has to be as secret as the key: any mode without group/other bits.
        findings = [f for f in findings if f.reference in ("mode-readable", "mode-writable")]
    if key.owner != profile.owner:
        findings.append(
            Finding(ERROR, "owner", f"{label} is owned by {key.owner}, not {profile.owner}")
        )
    if key.nlink > 1:
        findings.append(Finding(ERROR, "hard-links", f"{label} has {key.nlink} hard links"))
    return findings
