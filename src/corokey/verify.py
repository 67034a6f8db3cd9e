"""Do all nodes hold the same sound key?  Fingerprints only: the key never travels."""

from typing import Dict, List, Optional

from corokey.checks import ERROR, Finding, host_fips_enabled, mode_findings, size_findings
from corokey.nodekey import NodeKeyError, RemoteKey, inspect
from corokey.profiles import Profile
from corokey.remote import Ssh
from corokey.secretfile import FileFacts


class NodeState:
    def __init__(self, node: str) -> None:
        self.node = node
        self.key: Optional[RemoteKey] = None
        self.unreachable: Optional[str] = None
        self.findings: List[Finding] = []


class VerifyReport:
    def __init__(self, path: str, states: "List[NodeState]") -> None:
        self.path = path
        self.states = states
        groups: Dict[str, List[str]] = {}
        for state in states:
            if state.key is not None and state.key.sha256:
                groups.setdefault(state.key.sha256, []).append(state.node)
        self.groups = groups
        # The key most nodes hold is the reference; the others are odd.
        self.reference = max(groups, key=lambda fp: len(groups[fp]), default=None)
        self.odd = [
            s.node
            for s in states
            if s.key is not None and (s.key.sha256 is None or s.key.sha256 != self.reference)
        ]
        self.unreachable = [s.node for s in states if s.unreachable is not None]
        self.unsound = [s.node for s in states if any(f.severity == ERROR for f in s.findings)]

    @property
    def exit_code(self) -> int:
        if self.unreachable:
            return 2
        if self.odd or self.unsound or len(self.groups) != 1:
            return 1
        return 0

    def fix(self) -> "Optional[str]":
        good = [s.node for s in self.states if s.key and s.key.sha256 == self.reference]
        targets = sorted(set(self.odd) | set(self.unsound))
        if not targets or not good:
            return None
        return f"corokey push --from {good[0]} --nodes {','.join(targets)}"

    def to_json(self) -> "Dict[str, object]":
        return {
            "path": self.path,
            "same": self.exit_code == 0,
            "reference_sha256": self.reference,
            "odd": self.odd,
            "unreachable": self.unreachable,
            "fix": self.fix(),
            "nodes": [
                {
                    "node": s.node,
                    "unreachable": s.unreachable,
                    "kind": s.key.kind if s.key else None,
                    "sha256": s.key.sha256 if s.key else None,
                    "size": s.key.size if s.key else None,
                    "mode": f"{s.key.mode:04o}" if s.key else None,
                    "owner": f"{s.key.owner}:{s.key.group}" if s.key else None,
                    "findings": [f.to_json() for f in s.findings],
                }
                for s in self.states
            ],
        }


def verify(
    ssh: "Ssh", nodes: "List[str]", profile: "Profile", key_path: "Optional[str]" = None
) -> "VerifyReport":
    path = key_path or profile.path
    fips = host_fips_enabled()

    def look(node: str) -> "NodeState":
        state = NodeState(node)
        try:
            state.key = inspect(ssh, node, path)
        except NodeKeyError as exc:
            state.unreachable = str(exc)
            return state
        state.findings = _findings(state.key, profile, fips, f"{node}:{path}")
        return state

    results = ssh.each(nodes, look)
    return VerifyReport(path, [results[n] for n in nodes])


def _findings(key: "RemoteKey", profile: "Profile", fips: bool, label: str) -> "List[Finding]":
    if key.kind == "missing":
        return [Finding(ERROR, "missing", f"{label} does not exist")]
    if key.kind != "regular":
        what = f"a symbolic link to {key.link_target}" if key.kind == "symlink" else key.kind
        return [Finding(ERROR, "not-regular", f"{label} is {what}")]
    findings = size_findings(key.size, profile, fips, label)
    findings += mode_findings(FileFacts(label, "regular", mode=key.mode), profile)
    if key.owner != profile.owner:
        findings.append(
            Finding(ERROR, "owner", f"{label} is owned by {key.owner}, not {profile.owner}")
        )
    if key.nlink > 1:
        findings.append(Finding(ERROR, "hard-links", f"{label} has {key.nlink} hard links"))
    return findings
