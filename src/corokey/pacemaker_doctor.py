"""``corokey doctor --profile pacemaker``: Pacemaker Remote's key on this node, and why
remote connections fail.

What Pacemaker 2.1.5 does (lib/lrmd/lrmd_client.c, daemons/execd/remoted_tls.c,
lib/common/remote.c, daemons/pacemakerd/pcmkd_subdaemons.c):

- pacemaker-controld (user hacluster) on a cluster node and pacemaker-remoted (root) on a
  remote node read the key at each TLS handshake, through a cache of 60 s;
- where: ``PCMK_authkey_location`` (the unit's EnvironmentFile, /etc/default/pacemaker or
  /etc/sysconfig/pacemaker), else /etc/pacemaker/authkey, else /etc/corosync/authkey;
  a location that cannot be read (missing, empty, no permission) falls through to the
  next one, silently when a later one works;
- a failed handshake is logged on the cluster side as "Disconnecting after TLS handshake
  with Pacemaker Remote server HOST:PORT failed" (or "Session creation for HOST:PORT
  failed"), on the remote side as "TLS handshake with remote client failed" after
  "Accepted new remote client connection from ADDR".  A handshake fails the same on both
  sides whichever holds the wrong key: ``corokey verify --profile pacemaker`` compares
  fingerprints and says which node is odd (or that there is no majority).
"""

import os
import re
import shlex
from typing import Dict, List, Optional, Sequence

from corokey.checks import check_key
from corokey.exitcodes import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from corokey.findings import ERROR, NOTE, WARNING, Finding
from corokey.pacemaker import (
    ENVIRONMENT_FILES,
    FALLBACK_KEY_PATH,
    PACEMAKER_KEY_PATH,
    environment_location,
)
from corokey.pacemaker_access import (
    CLUSTER,
    REFERENCES,
    REMOTE,
    local_access_findings,
    local_role,
)
from corokey.profiles import get_profile
from corokey.record import Record
from corokey.secretfile import lstat_facts

DEFAULT_LOCATION = PACEMAKER_KEY_PATH
FALLBACK_LOCATION = FALLBACK_KEY_PATH
LOG_FILE = "/var/log/pacemaker/pacemaker.log"
UNITS = ("pacemaker", "pacemaker_remote")
#: 3.0.0 stopped falling back: an unusable PCMK_authkey_location, or no default key, is
#: no key (lrmd__init_remote_key at Pacemaker-3.0.0).
NO_FALLBACK_FROM = (3, 0, 0)
#: 3.0.2 reads the key once per process (lib/lrmd/lrmd_client.c: remote_key, no expiry).
READS_ONCE_FROM = (3, 0, 2)

_CLIENT_FAILED = re.compile(
    r"Disconnecting after TLS handshake with Pacemaker Remote server (\S+?):(\d+) failed"
    r"|Session creation for (\S+?):(\d+) failed"
)
_NO_KEY_CONNECT = re.compile(r"Could not connect to Pacemaker Remote at (\S+?):(\d+): (.+?)\s*$")
_ACCEPTED = re.compile(r"Accepted new remote client connection from (\S+)")
_SERVER_FAILED = re.compile(r"TLS handshake with remote client failed: (.+?)(?: \||\s*$)")
_NO_KEY = re.compile(r"Could not read Pacemaker Remote key from (.+?)\s*$")
_PID = re.compile(r"\[\s*(\d+)\]")


class RemoteEvent(Record):
    """One line about a Pacemaker Remote connection: kind, the peer it names, the line."""

    __slots__ = ("kind", "line", "peer")
    #: handshake-failed, no-key (this node could not read a key), connect-no-key
    kind: str
    peer: "Optional[str]"
    line: str

    def __init__(self, kind: str, line: str, peer: "Optional[str]" = None) -> None:
        self._set(kind=kind, line=line, peer=peer)


def scan(lines: "List[str]") -> "List[RemoteEvent]":
    """The Pacemaker Remote key events of a pacemaker.log or journal excerpt."""
    events: List[RemoteEvent] = []
    accepted: Dict[str, str] = {}  # pid -> address of the connection it accepted last
    for line in lines:
        pid_match = _PID.search(line)
        pid = pid_match.group(1) if pid_match else ""
        match = _CLIENT_FAILED.search(line)
        if match:
            host = match.group(1) or match.group(3)
            port = match.group(2) or match.group(4)
            events.append(RemoteEvent("handshake-failed", line, f"{host}:{port}"))
            continue
        match = _NO_KEY_CONNECT.search(line)
        if match:
            events.append(RemoteEvent("connect-no-key", line, f"{match.group(1)}:{match.group(2)}"))
            continue
        match = _ACCEPTED.search(line)
        if match:
            address = match.group(1)
            # pacemaker-remoted listens on IPv6 when it can: IPv4 peers show as ::ffff:A.B.C.D.
            if address.lower().startswith("::ffff:") and "." in address:
                address = address[len("::ffff:") :]
            accepted[pid] = address
            continue
        if _SERVER_FAILED.search(line):
            events.append(RemoteEvent("handshake-failed", line, accepted.get(pid)))
            continue
        if _NO_KEY.search(line):
            events.append(RemoteEvent("no-key", line))
    return events


def pacemaker_version(text: str) -> "Optional[tuple[int, ...]]":
    """The version in ``pacemakerd --version`` / ``pacemaker-remoted --version`` output."""
    match = re.search(r"Pacemaker (\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in match.groups()) if match else None


class PacemakerDiagnosis:
    def __init__(self) -> None:
        self.role: Optional[str] = None
        self.version: Optional[str] = None
        self.env_location: Optional[str] = None
        self.key_path: Optional[str] = None
        self.log_source: Optional[str] = None
        self.peers: Dict[str, int] = {}
        self.findings: List[Finding] = []

    def add(self, severity: str, reference: str, message: str, fix: "Optional[str]" = None) -> None:
        self.findings.append(Finding(severity, reference, message, fix))

    @property
    def status(self) -> str:
        rank = {NOTE: 0, WARNING: 1, ERROR: 2}
        worst = max((rank[f.severity] for f in self.findings), default=0)
        return {0: "healthy", 1: WARNING, 2: ERROR}[worst]

    @property
    def exit_code(self) -> int:
        return {"healthy": EXIT_OK, WARNING: EXIT_FINDINGS, ERROR: EXIT_ERROR}[self.status]

    def to_json(self) -> "Dict[str, object]":
        return {
            "profile": "pacemaker",
            "status": self.status,
            "role": self.role,
            "pacemaker_version": self.version,
            "PCMK_authkey_location": self.env_location,
            "key": self.key_path,
            "log_source": self.log_source,
            "handshake_failures_by_peer": self.peers,
            "findings": [f.to_json() for f in self.findings],
        }


def _usable(path: str) -> bool:
    """Pacemaker would take a key from ``path``: a file with at least one byte."""
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def diagnose(
    log_lines: "Optional[List[str]]" = None,
    environment_files: "Sequence[str]" = ENVIRONMENT_FILES,
    role: "Optional[str]" = None,
    version_text: "Optional[str]" = None,
) -> "PacemakerDiagnosis":
    """Diagnose Pacemaker Remote's key on this node; the arguments replace what would be
    read from this host (the tests give them)."""
    diagnosis = PacemakerDiagnosis()
    diagnosis.role = role if role is not None else local_role()
    version = pacemaker_version(version_text if version_text is not None else _local_version())
    diagnosis.version = ".".join(map(str, version)) if version else None
    _locate(diagnosis, environment_files, version is not None and version >= NO_FALLBACK_FROM)
    if diagnosis.key_path is not None and os.path.lexists(diagnosis.key_path):
        report = check_key(diagnosis.key_path, get_profile("pacemaker"), False)
        # The access rule again with this node's role as the caller knows it.
        facts = lstat_facts(diagnosis.key_path)
        diagnosis.findings += [f for f in report.findings if f.reference not in REFERENCES]
        if facts.kind == "regular":
            diagnosis.findings += local_access_findings(
                diagnosis.key_path, facts.mode, facts.uid, facts.gid, diagnosis.role
            )
    if version is not None and version >= READS_ONCE_FROM:
        diagnosis.add(
            NOTE,
            "pacemaker-reads-once",
            f"Pacemaker {diagnosis.version} reads its key once per process: a changed key "
            "takes effect only when pacemaker (cluster nodes) and pacemaker_remote (remote "
            "nodes) restart",
        )
    _explain_log(diagnosis, log_lines)
    return diagnosis


def _locate(
    diagnosis: "PacemakerDiagnosis", environment_files: "Sequence[str]", no_fallback: bool
) -> None:
    env = environment_location(environment_files)
    diagnosis.env_location = env
    if no_fallback:
        candidates = [env] if env else [DEFAULT_LOCATION]
    else:
        candidates = ([env] if env else []) + [DEFAULT_LOCATION, FALLBACK_LOCATION]
    used = next((path for path in candidates if _usable(path)), None)
    diagnosis.key_path = used
    if env and used != env:
        diagnosis.add(
            ERROR,
            "pacemaker-location-unusable",
            f"PCMK_authkey_location is {env}, which holds no key; Pacemaker 2.x falls back to "
            f"{used or 'nothing'} (3.0.0 and later refuse instead)",
            f"put the key there: corokey push --profile pacemaker --key-path {shlex.quote(env)}"
            " --nodes THIS_NODE --from A_GOOD_NODE, or remove the setting",
        )
    elif env:
        diagnosis.add(
            NOTE,
            "pacemaker-location",
            f"PCMK_authkey_location moves the key to {env} on this node: give corokey "
            f"--key-path {shlex.quote(env)} for it (every node must agree on the bytes, not "
            "the path)",
        )
    if used is None:
        diagnosis.add(
            ERROR,
            "pacemaker-no-key",
            f"no Pacemaker Remote key here: {' and '.join(candidates)} are missing or empty; "
            "remote connections fail with 'Required key not available'",
            "corokey push --profile pacemaker --from A_CLUSTER_NODE --nodes THIS_NODE",
        )
    elif used == FALLBACK_LOCATION:
        diagnosis.add(
            WARNING,
            "pacemaker-fallback",
            f"{DEFAULT_LOCATION} is missing or empty, so Pacemaker 2.x uses corosync's key "
            f"{FALLBACK_LOCATION} for Pacemaker Remote: rotating corosync's key changes "
            "Pacemaker's too, and after an upgrade to 3.0.0 or later (no fallback) remote "
            "connections fail",
            "give Pacemaker its own key: corokey generate --profile pacemaker "
            f"{DEFAULT_LOCATION} on one cluster node, then corokey push --profile pacemaker "
            "--from THAT_NODE",
        )


def _local_version() -> str:
    import subprocess

    for program in ("pacemakerd", "pacemaker-remoted"):
        for directory in ("/usr/sbin", "/usr/bin"):
            path = os.path.join(directory, program)
            if os.path.exists(path):
                try:
                    done = subprocess.run(
                        [path, "--version"],
                        capture_output=True,
                        text=True,
                        timeout=10,
                        check=False,
                    )
                except (OSError, subprocess.SubprocessError):
                    continue
                return done.stdout
    return ""


def _log(diagnosis: "PacemakerDiagnosis", log_lines: "Optional[List[str]]") -> "List[str]":
    if log_lines is not None:
        diagnosis.log_source = "given lines"
        return log_lines
    from corokey.logscan import journal_lines, read_tail

    try:
        lines = read_tail(LOG_FILE)
        diagnosis.log_source = LOG_FILE
        return lines
    except OSError:
        pass
    for unit in UNITS:
        journal = journal_lines(unit)
        if journal:
            diagnosis.log_source = f"journal ({unit})"
            return journal
    return []


def _explain_log(diagnosis: "PacemakerDiagnosis", log_lines: "Optional[List[str]]") -> None:
    events = scan(_log(diagnosis, log_lines))
    for event in events:
        if event.kind == "handshake-failed":
            peer = event.peer or "an unnamed peer"
            diagnosis.peers[peer] = diagnosis.peers.get(peer, 0) + 1
    if diagnosis.peers:
        named = ", ".join(f"{peer} ({count}x)" for peer, count in sorted(diagnosis.peers.items()))
        diagnosis.add(
            ERROR,
            "pacemaker-handshake-failed",
            f"Pacemaker Remote TLS handshakes failed with {named}: this node and the peer hold "
            "different keys (a failed handshake cannot say which side is wrong)",
            "corokey verify --profile pacemaker (names the odd node by fingerprint, or says "
            "there is no majority)",
        )
    if any(e.kind in ("no-key", "connect-no-key") for e in events):
        diagnosis.add(
            ERROR,
            "pacemaker-key-unreadable",
            "Pacemaker logged that it could not read a Pacemaker Remote key on this node "
            "('Could not read Pacemaker Remote key' / 'Required key not available')",
            "corokey check --profile pacemaker " + (diagnosis.key_path or DEFAULT_LOCATION),
        )


__all__ = ["CLUSTER", "REMOTE", "PacemakerDiagnosis", "RemoteEvent", "diagnose", "scan"]
