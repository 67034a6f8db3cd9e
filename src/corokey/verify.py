"""Do all nodes hold the same sound key where corosync reads it?  Fingerprints only."""

import shlex
from typing import Dict, List, Optional

from corokey.checks import host_fips_enabled, mode_findings, size_findings
from corokey.exitcodes import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from corokey.findings import ERROR, Finding
from corokey.key import KEY_LEN_MAX, WHOLE_FILE
from corokey.keylocation import locate
from corokey.nodekey import EFFECTIVE_BYTES, NodeFailure, NodeView, RemoteKey, look
from corokey.nodescripts import describe
from corokey.pacemaker import adjust_findings, shares_corosync_key
from corokey.pacemaker_access import Accounts, access_findings, accounts_to_ask
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
    def __init__(self, path: str, states: "List[NodeState]", profile: str = "corosync") -> None:
        self.path = path
        self.states = states
        self.profile = profile
        #: compare whole files (a secret read whole: Pacemaker's key), not what corosync uses
        self.whole = profile != "corosync"
        groups: Dict[str, List[str]] = {}
        for state in states:
            digest = self.digest(state)
            if digest:
                groups.setdefault(digest, []).append(state.node)
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
            and not s.key.unreadable
            and (self.digest(s) is None or self.tie or self.digest(s) != self.reference)
        ]
        #: every node that holds a key holds a different one (Debian's pacemaker-common
        #: writes a random key on each node it is installed on)
        self.all_different = len(groups) > 1 and all(len(m) == 1 for m in groups.values())
        self.unreachable = [s.node for s in states if s.unreachable is not None]
        #: nodes whose key could not be read (no fingerprint: neither same nor odd)
        self.unreadable = [s.node for s in states if s.key is not None and s.key.unreadable]
        self.unsound = [s.node for s in states if any(f.severity == ERROR for f in s.findings)]
        #: nodes whose corosync (2.x) uses only the first 128 bytes: compared on those
        self.corosync2 = [
            s.node
            for s in states
            if not self.whole and s.view is not None and s.view.effective < KEY_LEN_MAX
        ]

    def digest(self, state: "NodeState") -> "Optional[str]":
        """What is compared of a node's key: the whole file, or what corosync uses."""
        if state.key is None:
            return None
        return state.key.sha256 if self.whole else state.key.used

    @property
    def exit_code(self) -> int:
        if self.unreachable or self.unreadable:
            return EXIT_ERROR
        if self.odd or self.unsound or len(self.groups) != 1:
            return EXIT_FINDINGS
        return EXIT_OK

    def fix(self) -> "Optional[str]":
        """The push that brings the odd nodes to the majority's key; None on a corosync
        tie (no majority knows the right key: doctor on a member tells which key corosync
        runs). On a tie of another profile, the first sound node's key: no daemon runs one
        key that the others must match (Pacemaker reads its key at each new connection)."""
        reference = self.reference
        if self.tie:
            if not self.whole:
                return None
            sound = [s for s in self.states if self.digest(s) and s.node not in self.unsound]
            if not sound:
                return None
            reference = self.digest(sound[0])
        good = [
            s.node
            for s in self.states
            if s.key and self.digest(s) == reference and s.node not in self.unsound
        ]
        # Not where the key could not be read: what it holds is unknown.
        wrong = (set(self.odd) | set(self.unsound)) - set(self.unreadable)
        targets = [s.node for s in self.states if s.node not in good and s.node in wrong]
        if not targets or not good:
            return None
        argv = ["corokey", "push", "--from", good[0], "--nodes", ",".join(targets)]
        if self.profile != "corosync":
            argv[2:2] = ["--profile", self.profile]
        return " ".join(shlex.quote(a) for a in argv)

    def to_json(self) -> "Dict[str, object]":
        return {
            "path": self.path,
            "same": self.exit_code == 0,
            "reference_sha256": self.reference,
            "tie": self.tie,
            "all_different": self.all_different,
            "odd": self.odd,
            "unreachable": self.unreachable,
            "unreadable": self.unreadable,
            "fix": self.fix(),
            "nodes": [
                {
                    "node": s.node,
                    "unreachable": s.unreachable,
                    "kind": s.key.kind if s.key else None,
                    "sha256": s.key.sha256 if s.key else None,
                    "used_sha256": s.key.used if s.key else None,
                    "unreadable": s.key.unreadable if s.key else None,
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
    ssh: "Ssh",
    nodes: "List[str]",
    profile: "Profile",
    key_path: "Optional[str]" = None,
    roles: "Optional[Dict[str, str]]" = None,
) -> "VerifyReport":
    """Compare the key corosync reads on every node (another profile's: the whole file).
    ``roles``: node -> "cluster" or "remote" where known (the pacemaker profile's rule of
    who must read the key depends on it). Raises KeyLocationError when the nodes'
    corosync.conf do not name one key file."""
    fips = host_fips_enabled()
    states = {node: NodeState(node) for node in nodes}
    first = key_path or profile.path
    effective = EFFECTIVE_BYTES if profile.corosync else WHOLE_FILE
    accounts = accounts_to_ask(profile.name)

    def view_of(node: str, paths: "List[str]") -> None:
        try:
            states[node].view = look(ssh, node, paths, effective=effective, accounts=accounts)
        except NodeFailure as failure:
            states[node].unreachable = failure.message

    ssh.each(nodes, lambda n: view_of(n, [first]))
    views = {n: s.view for n, s in states.items() if s.view is not None}
    path = locate(profile, key_path, views)
    # The conf named a key file the first look did not reach: look there.
    ssh.each([n for n, v in views.items() if path not in v.keys], lambda n: view_of(n, [path]))
    for state in states.values():
        if state.view is None or state.unreachable is not None:
            continue  # the second look (at the conf's key file) may have failed
        if path not in state.view.keys:
            state.unreachable = f"{state.node} did not answer for {path}"
            continue
        state.key = state.view.keys[path]
        state.old = state.view.olds.get(path)
        state.findings = key_findings(
            state.view, path, profile, fips, f"{state.node}:{path}", (roles or {}).get(state.node)
        )
    return VerifyReport(path, [states[n] for n in nodes], profile.name)


def key_findings(
    view: "NodeView",
    path: str,
    profile: "Profile",
    fips: bool,
    label: str,
    role: "Optional[str]" = None,
) -> "List[Finding]":
    """What ``corokey check`` would say of the key at ``path`` on a node, and of the
    ``.old`` copy beside it (as secret as the key) and the directory holding both."""
    key = view.keys[path]
    findings = []
    if key.unreadable:
        message, reference, hint = describe(view.node, key.unreadable_answer(path))
        findings.append(Finding(ERROR, reference, message, hint))
    file_findings = _file_findings(key, profile, label, role=role, accounts=view.accounts)
    if profile.corosync:
        reason = shares_corosync_key(view.pacemaker, path)
        file_findings = adjust_findings(file_findings, reason, label, key.mode)
    findings += file_findings
    if key.kind == "regular":
        findings += size_findings(key.size, profile, fips, label)
    old = view.olds.get(path)
    if old is not None and old.kind != "missing":
        findings += [
            Finding(f.severity, "old-" + f.reference, f.message, f.fix)
            for f in _file_findings(old, profile, label + ".old", old=True, accounts=view.accounts)
        ]
    if path in view.unsafe_dirs:
        # The directory at fault: the key's, one above it, or where its link leads.
        at = shlex.quote(view.unsafe_at[path])
        findings.append(
            Finding(
                ERROR,
                "directory-writable",
                f"{label}: others can write to its directory ({view.unsafe_dirs[path]})",
                f"chown root {at} && chmod go-w {at}",
            )
        )
    return findings


def _file_findings(
    key: "RemoteKey",
    profile: "Profile",
    label: str,
    old: bool = False,
    role: "Optional[str]" = None,
    accounts: "Optional[Accounts]" = None,
) -> "List[Finding]":
    if key.kind == "missing":
        return [Finding(ERROR, "missing", f"{label} does not exist")]
    if key.kind != "regular":
        return [Finding(ERROR, "not-regular", f"{label} is a {key.kind}, not a regular file")]
    if profile.name == "pacemaker":
        return _pacemaker_findings(key, label, old, role, accounts)
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


def _pacemaker_findings(
    key: "RemoteKey",
    label: str,
    old: bool,
    role: "Optional[str]",
    accounts: "Optional[Accounts]",
) -> "List[Finding]":
    path = label[label.index(":/") + 1 :] if ":/" in label else label  # NODE:PATH
    findings = access_findings(label, path, key.mode, key.owner, key.group, role, accounts)
    if old:
        # .old only has to be as secret as the key: nobody but Pacemaker's users reads it.
        findings = [
            f for f in findings if f.severity == ERROR and f.reference != "pacemaker-unreadable"
        ]
    if key.nlink > 1:
        findings.append(Finding(ERROR, "hard-links", f"{label} has {key.nlink} hard links"))
    return findings
