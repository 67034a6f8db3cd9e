"""Pacemaker's key lookup, where it meets corosync's key.

Pacemaker Remote connections (remote nodes, guest nodes, bundles) authenticate with a
TLS pre-shared key. Pacemaker 2.x (Debian 12 ships 2.1.5) reads it, as
``lrmd__init_remote_key`` in lib/lrmd/lrmd_client.c does, from the first of these it
can read (``fopen`` and a non-empty read, following links):

1. ``PCMK_authkey_location`` from the daemons' environment (systemd's units load
   /etc/default/pacemaker or /etc/sysconfig/pacemaker), when set;
2. /etc/pacemaker/authkey (``DEFAULT_REMOTE_KEY_LOCATION``, include/crm/lrmd.h);
3. /etc/corosync/authkey (``ALT_REMOTE_KEY_LOCATION``, "for historical reasons").

Pacemaker 3.0 dropped the third. On a cluster node the reader is pacemaker-controld,
running as user hacluster (group haclient); on a remote node pacemaker-remoted runs as
root. So on a cluster node whose Pacemaker key cannot be read by hacluster (missing,
empty, unreadable), a corosync key readable by group haclient *is* Pacemaker Remote's
key: every remote node holds the same bytes, and making corosync's key 0400 (what the
corosync profile asks) or changing it cuts every remote node off ("Required key not
available", or a failed TLS handshake). The same holds when /etc/pacemaker/authkey is a
link to corosync's key: the permission that counts is the target's.

This module says when that is so, from the facts one node gives
(:func:`local_facts` here, or a node script's ``pacemaker`` and ``pcmk-key`` answers);
the way out is to give Pacemaker its own key on every cluster and remote node, after
which corosync's key can be made 0400 and rotated alone.
"""

from corokey.record import Record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

    from corokey.findings import Finding

#: include/crm/lrmd.h (Pacemaker 2.1.5): DEFAULT_REMOTE_KEY_LOCATION, ALT_REMOTE_KEY_LOCATION.
PACEMAKER_KEY_PATH = "/etc/pacemaker/authkey"
FALLBACK_KEY_PATH = "/etc/corosync/authkey"
#: The environment files systemd's pacemaker.service reads (Debian; RHEL and SUSE).
ENVIRONMENT_FILES = ("/etc/default/pacemaker", "/etc/sysconfig/pacemaker")
ENVIRONMENT_NAME = "PCMK_authkey_location"
PACEMAKERD = "/usr/sbin/pacemakerd"
#: pacemaker-controld's user and group (Pacemaker's CRM_DAEMON_USER, CRM_DAEMON_GROUP).
DAEMON_USER = "hacluster"
DAEMON_GROUP = "haclient"
#: The first version without the fallback to corosync's key.
NO_FALLBACK_SINCE = (3, 0)
#: The reference of the note and of rotate's and push's refusals.
REFERENCE = "pacemaker-remote-key"


class KeyFacts(Record):
    """A key file as a daemon opening it meets it: links followed."""

    __slots__ = ("dev", "gid", "ino", "kind", "mode", "path", "sha256", "size", "uid")
    path: str
    kind: str  # regular, directory, other, missing
    mode: int
    uid: int
    gid: int
    size: int
    dev: int
    ino: int
    sha256: "Optional[str]"

    def __init__(self, **fields: object) -> None:
        values: Dict[str, object] = dict(
            kind="missing", mode=0, uid=-1, gid=-1, size=0, dev=-1, ino=-1, sha256=None
        )
        values.update(fields)
        self._set(**values)

    def same_file(self, other: "KeyFacts") -> bool:
        return self.kind == other.kind == "regular" and (self.dev, self.ino) == (
            other.dev,
            other.ino,
        )

    def label(self) -> str:
        return f"{self.mode:04o} uid {self.uid} gid {self.gid}"


class PacemakerFacts(Record):
    """What one node's Pacemaker reads its key from: installed version, the environment
    setting, each candidate key file, and the reader's ids (hacluster's, on a cluster node)."""

    __slots__ = ("keys", "location", "reader_gids", "reader_uid", "version")
    version: str  # "2.1.5"; "unknown" when pacemakerd did not say
    location: "Optional[str]"
    keys: "Dict[str, KeyFacts]"
    reader_uid: "Optional[int]"
    reader_gids: "FrozenSet[int]"

    def __init__(self, **fields: object) -> None:
        values: Dict[str, object] = dict(
            version="unknown", location=None, keys={}, reader_uid=None, reader_gids=frozenset()
        )
        values.update(fields)
        self._set(**values)

    def version_tuple(self) -> "Tuple[int, ...]":
        parts = []
        for part in self.version.split(".")[:2]:
            if not part.isdigit():
                break
            parts.append(int(part))
        return tuple(parts)

    def has_fallback(self) -> bool:
        """Whether this Pacemaker falls back to corosync's key (2.x; an unknown version
        is taken to: the cautious reading, which never advises cutting a node off)."""
        version = self.version_tuple()
        return not version or version < NO_FALLBACK_SINCE

    def candidates(self) -> "List[str]":
        """Pacemaker's own key locations, in the order it tries them."""
        own = [self.location] if self.location else []
        return own + [p for p in (PACEMAKER_KEY_PATH,) if p not in own]


# ---------------------------------------------------------------------------- the rule


def unreadable_reason(
    key: "Optional[KeyFacts]", uid: "Optional[int]", gids: "FrozenSet[int]"
) -> "Optional[str]":
    """Why the reader (``uid``, ``gids``; None: root) cannot use ``key``, or None when it can."""
    if key is None or key.kind == "missing":
        return "does not exist"
    if key.kind != "regular":
        return f"is a {key.kind}"
    if key.size == 0:
        return "is empty"
    if uid is None or uid == 0:
        return None
    if uid == key.uid:
        bit = 0o400
    elif key.gid in gids:
        bit = 0o040
    else:
        bit = 0o004
    if key.mode & bit:
        return None
    return f"is not readable by {DAEMON_USER} ({key.label()})"


def shares_corosync_key(
    facts: "Optional[PacemakerFacts]", corosync_key_path: str
) -> "Optional[str]":
    """Why this node's Pacemaker reads corosync's key (at ``corosync_key_path``) as
    Pacemaker Remote's key, or None when it does not (or Pacemaker is not installed)."""
    if facts is None:
        return None
    uid, gids = facts.reader_uid, facts.reader_gids
    corosync_key = facts.keys.get(corosync_key_path)
    reasons = []
    for path in facts.candidates():
        key = facts.keys.get(path)
        why = unreadable_reason(key, uid, gids)
        if why is None and key is not None:
            if corosync_key is not None and key.same_file(corosync_key):
                return f"Pacemaker {facts.version} reads it as its Remote key through {path}"
            return None  # Pacemaker has a key of its own
        reasons.append(f"{path} {why}")
    fallback = facts.keys.get(FALLBACK_KEY_PATH)
    is_fallback = corosync_key_path == FALLBACK_KEY_PATH or (
        fallback is not None and corosync_key is not None and fallback.same_file(corosync_key)
    )
    if not is_fallback or not facts.has_fallback():
        return None
    if unreadable_reason(corosync_key, uid, gids) is not None:
        return None  # Pacemaker cannot read corosync's key either: it has no key at all
    return (
        f"Pacemaker {facts.version} reads it as Pacemaker Remote's key "
        f"({'; '.join(reasons)}, so Pacemaker falls back to {FALLBACK_KEY_PATH})"
    )


def way_out(corosync_key_path: str) -> str:
    return (
        "give Pacemaker its own key on every cluster and remote node (corokey generate "
        f"--profile pacemaker {PACEMAKER_KEY_PATH} on one, then the same file on all of "
        f"them, readable by {DAEMON_USER}), let each remote connection reconnect (Pacemaker "
        f"caches the key for a minute), then chmod 0400 {corosync_key_path} and rotate "
        "corosync's key alone"
    )


def adjust_findings(
    findings: "Iterable[Finding]", reason: "Optional[str]", path: str, mode: int
) -> "List[Finding]":
    """The findings about corosync's key (of ``mode``) where Pacemaker shares it
    (``reason``): read by group haclient is what Pacemaker needs, so the group finding and
    a group-only read bit become one note naming the reason and the way out; a mode finding
    that stays (readable by others, writable) is fixed with SHARED_MODE, never 0400."""
    import shlex

    from corokey.findings import NOTE, Finding

    findings = list(findings)
    if reason is None:
        return findings
    group_only = mode & 0o044 == 0o040
    kept: List[Finding] = []
    for finding in findings:
        if finding.reference == "group" or (finding.reference == "mode-readable" and group_only):
            continue
        if finding.reference.startswith("mode-"):
            fix = f"chmod {SHARED_MODE:04o} {shlex.quote(path)}"
            finding = Finding(finding.severity, finding.reference, finding.message, fix)
        kept.append(finding)
    note = Finding(
        NOTE,
        REFERENCE,
        f"{path} is readable by group {DAEMON_GROUP} because {reason}; making it 0400 or "
        "changing it would cut every Pacemaker Remote node off",
        way_out(path),
    )
    return [note, *kept]


def refusal(reasons: "Dict[str, str]", path: str) -> "Optional[str]":
    """rotate's problem when Pacemaker shares corosync's key on some nodes (``reasons``:
    node -> why, from :func:`shares_corosync_key`); None when it shares it nowhere."""
    if not reasons:
        return None
    nodes = sorted(reasons)
    first = reasons[nodes[0]]
    return (
        f"corosync's key {path} is Pacemaker Remote's key too on {', '.join(nodes)} "
        f"({nodes[0]}: {first}): a new key there would cut every Pacemaker Remote node off, "
        "since they keep the old one; first " + way_out(path)
    )


#: What Pacemaker needs of corosync's key where it reads it: pacemaker-controld reads it
#: through its group; nobody else reads it, nobody but root writes it.
SHARED_OWNER = f"root:{DAEMON_GROUP}"
SHARED_MODE = 0o440


def push_plan(
    facts: "Mapping[str, Optional[PacemakerFacts]]",
    path: str,
    new_sha256: str,
    from_remote_key: bool = False,
) -> "Tuple[List[str], Optional[Tuple[str, str]]]":
    """How push treats nodes where Pacemaker shares corosync's key at ``path``: the
    nodes whose key it writes root:haclient 0440 (the profile's 0400 would cut every
    remote node off), and the problem that refuses the push, if any.

    A push never changes Pacemaker Remote's key: it may bring a node to the key that a
    node where Pacemaker reads it holds (``from_remote_key``: push --from such a node; or
    a node of the push), never put a new key where the remote nodes hold the old one."""
    reasons = {n: shares_corosync_key(f, path) for n, f in facts.items()}
    shared = [n for n, r in reasons.items() if r]
    holding = {n for n in shared if _held_sha256(facts[n], path) == new_sha256}
    changing = [n for n in shared if n not in holding]
    if not changing or holding or from_remote_key:
        return shared, None
    first = changing[0]
    return shared, (
        f"corosync's key {path} is Pacemaker Remote's key too on {', '.join(changing)} "
        f"({first}: {reasons[first]}), and no node of this push holds the new key: it would "
        "cut every Pacemaker Remote node off",
        "to repair a node, push from a node that holds the cluster's key (--from GOOD); "
        "to change the key, first " + way_out(path),
    )


def _held_sha256(facts: "Optional[PacemakerFacts]", path: str) -> "Optional[str]":
    key = facts.keys.get(path) if facts is not None else None
    return key.sha256 if key is not None else None


# ---------------------------------------------------------------------------- facts


def from_answers(answers: "Iterable[Tuple[str, Dict[str, str]]]") -> "Optional[PacemakerFacts]":
    """The facts a node script reported (:class:`corokey.nodescripts.Answer`: the
    ``pacemaker``, ``pcmk-env`` and ``pcmk-key`` lines); None when it said nothing
    (Pacemaker's cluster daemons are not installed there)."""
    facts: Optional[PacemakerFacts] = None
    keys: Dict[str, KeyFacts] = {}
    for name, fields in answers:
        if name == "pacemaker":
            uid = fields.get("uid", "")
            gids = frozenset(int(g) for g in fields.get("gids", "").split(",") if g.isdigit())
            facts = PacemakerFacts(
                version=fields.get("version") or "unknown",
                reader_uid=int(uid) if uid.isdigit() else None,
                reader_gids=gids,
                keys=keys,
            )
        elif name == "pcmk-env" and facts is not None:
            facts._set(location=_unquote(fields.get("path", "")) or None)
        elif name == "pcmk-key":
            path = fields.get("path", "")
            keys[path] = KeyFacts(
                path=path,
                kind=fields.get("kind", "missing"),
                mode=int(fields.get("mode", "0"), 8),
                uid=_int(fields.get("uid")),
                gid=_int(fields.get("gid")),
                size=_int(fields.get("size"), 0),
                dev=_int(fields.get("dev")),
                ino=_int(fields.get("ino")),
                sha256=fields.get("sha256"),
            )
    return facts


def local_facts() -> "Optional[PacemakerFacts]":
    """This host's facts (for check and doctor); None when pacemakerd is not installed."""
    import os

    if not os.path.exists(PACEMAKERD):
        return None
    location = environment_location(ENVIRONMENT_FILES)
    reader_uid, reader_gids = _reader_ids()
    paths = [p for p in (location, PACEMAKER_KEY_PATH, FALLBACK_KEY_PATH) if p]
    keys = {p: _stat_key(p) for p in paths}
    return PacemakerFacts(
        version=_local_version(),
        location=location,
        keys=keys,
        reader_uid=reader_uid,
        reader_gids=reader_gids,
    )


def local_reason(corosync_key_path: str) -> "Optional[str]":
    """:func:`shares_corosync_key` for this host."""
    facts = local_facts()
    if facts is not None and corosync_key_path not in facts.keys:
        facts.keys[corosync_key_path] = _stat_key(corosync_key_path)
    return shares_corosync_key(facts, corosync_key_path)


def local_shared_key(path: str) -> "Optional[Tuple[str, int, int]]":
    """Where this host's Pacemaker reads corosync's key at ``path`` (the Ansible module
    writing it): the reason, and the uid and gid to keep it readable for Pacemaker
    (root:haclient, mode SHARED_MODE); None when it does not."""
    reason = local_reason(path)
    if reason is None:
        return None
    import grp

    try:
        gid = grp.getgrnam(DAEMON_GROUP).gr_gid
    except KeyError:
        return None
    return reason, 0, gid


def changes_remote_key(path: str, reason: str) -> str:
    """The refusal of a write that would change the key Pacemaker Remote uses."""
    return (
        f"{path} is Pacemaker Remote's key too ({reason}): a new key there would cut every "
        "Pacemaker Remote node off; first " + way_out(path)
    )


def environment_location(files: "Iterable[str]") -> "Optional[str]":
    """The last ``PCMK_authkey_location=`` of the environment files, as systemd's
    EnvironmentFile= reads a ``NAME=value`` line (one level of quotes removed)."""
    location = None
    for name in files:
        try:
            with open(name, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if line.startswith(ENVIRONMENT_NAME + "="):
                location = _unquote(line[len(ENVIRONMENT_NAME) + 1 :]) or None
    return location


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _reader_ids() -> "Tuple[Optional[int], FrozenSet[int]]":
    import os
    import pwd

    try:
        user = pwd.getpwnam(DAEMON_USER)
    except KeyError:
        return None, frozenset()
    try:
        gids = frozenset(os.getgrouplist(DAEMON_USER, user.pw_gid))
    except OSError:
        gids = frozenset({user.pw_gid})
    return user.pw_uid, gids


def _stat_key(path: str) -> "KeyFacts":
    import os
    import stat

    try:
        info = os.stat(path)  # followed, as fopen follows it
    except OSError:
        return KeyFacts(path=path)
    if stat.S_ISREG(info.st_mode):
        kind = "regular"
    elif stat.S_ISDIR(info.st_mode):
        kind = "directory"
    else:
        kind = "other"
    return KeyFacts(
        path=path,
        kind=kind,
        mode=stat.S_IMODE(info.st_mode),
        uid=info.st_uid,
        gid=info.st_gid,
        size=info.st_size,
        dev=info.st_dev,
        ino=info.st_ino,
    )


def _local_version() -> str:
    import subprocess

    try:
        result = subprocess.run(
            [PACEMAKERD, "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return _version_of(result.stdout)


def _version_of(output: str) -> str:
    """ "Pacemaker 2.1.5" (pacemakerd --version's first line) -> "2.1.5"."""
    first = output.split("\n", 1)[0].split()
    if len(first) >= 2 and first[0] == "Pacemaker":
        return first[1]
    return "unknown"


def _int(text: "Optional[str]", default: int = -1) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default
