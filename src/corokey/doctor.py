"""``corokey doctor``: is this node's key set-up sound, and if nodes cannot join, why?

The diagnosis combines four sources: corosync.conf (crypto on? where is the
key? who are the nodes?), every check of ``corokey check`` on the key,
corosync's own log since its last start, and the live state of the daemon
(members, quorum, reload errors).  Each finding names the node and the fix.
"""

import os
from shlex import quote
from typing import Any, Dict, List, Optional

from corokey.checks import check_key
from corokey.corosync_conf import CorosyncConf, load_local_conf
from corokey.errors import CorokeyError
from corokey.exitcodes import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from corokey.findings import ERROR, NOTE, WARNING, Finding
from corokey.key import DEFAULT_KEY_PATH
from corokey.logscan import (
    GENERATION_2X,
    LogEvent,
    journal_lines,
    mismatched_addresses,
    read_since_last_start,
    read_tail,
    scan,
)
from corokey.profiles import get_profile
from corokey.runtime import LiveState, Runner, live_state, local_runner

_RANK = {NOTE: 0, WARNING: 1, ERROR: 2}


class Diagnosis:
    """Everything doctor found out, and what it concludes."""

    def __init__(self, conf_path: "Optional[str]") -> None:
        self.conf_path = conf_path
        self.key_path: Optional[str] = None
        self.crypto: Optional[str] = None
        self.findings: List[Finding] = []
        self.live: Optional[LiveState] = None
        self.log_source: Optional[str] = None
        self.odd_nodes: List[str] = []

    @property
    def status(self) -> str:
        worst = max((_RANK[f.severity] for f in self.findings), default=0)
        return {0: "healthy", 1: WARNING, 2: ERROR}[worst]

    @property
    def exit_code(self) -> int:
        return {"healthy": EXIT_OK, WARNING: EXIT_FINDINGS, ERROR: EXIT_ERROR}[self.status]

    def add(self, severity: str, reference: str, message: str, fix: "Optional[str]" = None) -> None:
        self.findings.append(Finding(severity, reference, message, fix))

    def to_json(self) -> "Dict[str, Any]":
        live = self.live
        return {
            "config": self.conf_path,
            "status": self.status,
            "key": self.key_path,
            "crypto": self.crypto,
            "log_source": self.log_source,
            "odd_nodes": self.odd_nodes,
            "running": live.running if live else None,
            "members": sorted(live.members) if live and live.running else None,
            "quorate": live.quorate if live else None,
            "findings": [f.to_json() for f in self.findings],
        }


def diagnose(
    conf_path: "Optional[str]" = None,
    run: "Runner" = local_runner,
    log_lines: "Optional[List[str]]" = None,
    fips: "Optional[bool]" = None,
) -> "Diagnosis":
    """Diagnose this node (``conf_path`` None: the corosync.conf its corosync is started
    with); ``run`` and ``log_lines`` may be given to look elsewhere."""
    diagnosis = Diagnosis(conf_path)
    try:
        conf = load_local_conf(conf_path)
    except CorokeyError as exc:  # ConfParseError, StartupUnknown, unreadable
        diagnosis.add(ERROR, exc.reference, exc.message, exc.hint)
        return diagnosis
    diagnosis.conf_path = conf.path
    cipher, hash_ = conf.crypto()
    diagnosis.crypto = f"{cipher}/{hash_}"
    diagnosis.live = live_state(run)
    if not conf.crypto_enabled():
        _crypto_off(conf, cipher, hash_, diagnosis)
    else:
        _check_key(conf, diagnosis, fips, _corosync2(diagnosis.live))
    events = _log_events(conf, diagnosis, log_lines)
    _explain_startup_failures(events, diagnosis)
    _explain_mismatches(conf, events, diagnosis)
    _explain_live_state(conf, diagnosis)
    return diagnosis


def _crypto_off(conf: "CorosyncConf", cipher: str, hash_: str, diagnosis: "Diagnosis") -> None:
    """Debian's default corosync.conf ships with crypto off: say what that exposes."""
    message = (
        f"crypto is off in {conf.path} (crypto_cipher {cipher}, crypto_hash {hash_}): corosync "
        "uses no key, so any host that can reach the ring can join the cluster or spoof "
        "its messages"
    )
    transport = conf.value("totem.transport") or "knet"
    if conf.corosync2:
        # 2.x (totemconfig.c totem_get_crypto) authenticates unless secauth is off or
        # cipher and hash are both none; it has no knet and reads crypto only at start.
        fix = (
            "corosync 2.x encrypts by default (aes256 + sha1): remove 'secauth: off' and "
            "'crypto_cipher: none'/'crypto_hash: none' from totem on every node (or set "
            "crypto_cipher: aes256 and crypto_hash: sha256), give every node the same key "
            "(corokey generate, then corokey push), then restart corosync on all nodes "
            "together (2.x reads its key and crypto settings only at start)"
        )
    elif transport != "knet":
        fix = (
            f"corosync encrypts only over knet, and this cluster uses {transport}: set "
            "transport: knet, crypto_cipher: aes256 and crypto_hash: sha256 in totem on every "
            "node, give every node the same key (corokey generate, then corokey push), and "
            "restart corosync on all nodes together (a transport cannot change while running)"
        )
    else:
        # corosync >= 3.1.0 switches crypto on and off on reload (exec/cfg.c, the
        # CRYPTO_RECONFIG phases) when built with knet_handle_crypto_set_config
        # (configure.ac: HAVE_KNET_CRYPTO_RECONF; Debian 12's 3.1.7 with knet 1.25 is);
        # without it, the reload fails with "Crypto reconfiguration is not supported".
        fix = (
            "add 'crypto_cipher: aes256' and 'crypto_hash: sha256' to totem on every node, "
            "give every node the same key (corokey generate, then corokey push), then run "
            "corosync-cfgtool -R once; corosync before 3.1, or built without knet crypto "
            "reconfiguration, needs corosync restarted on all nodes together instead"
        )
    diagnosis.add(WARNING, "crypto-off", message, fix)


def _corosync2(live: "Optional[LiveState]") -> bool:
    """Whether this node runs corosync 2.x: the running daemon's word, else the installed one."""
    if live is not None and live.running and live.version:
        return live.version.startswith("2.")
    from corokey.key import local_is_corosync2

    return local_is_corosync2()


def _check_key(
    conf: "CorosyncConf", diagnosis: "Diagnosis", fips: "Optional[bool]", corosync2: bool
) -> None:
    source, path = conf.key_source()
    if source == "inline":
        diagnosis.add(
            WARNING,
            "inline-key",
            f"the key is written inline in {conf.path} (totem.key): it is as readable as the "
            "configuration and differs from node to node only if the file does",
            "move it to a key file: corokey generate, then remove totem.key and corokey push",
        )
        return
    diagnosis.key_path = path = path or DEFAULT_KEY_PATH
    report = check_key(path, get_profile("corosync"), fips, corosync2)
    diagnosis.findings.extend(report.findings)


def _log_events(
    conf: "CorosyncConf", diagnosis: "Diagnosis", log_lines: "Optional[List[str]]"
) -> "List[LogEvent]":
    lines = log_lines
    if lines is None:
        logfile = conf.logfile()
        if logfile and os.path.exists(logfile):
            try:
                lines = read_tail(logfile)
                diagnosis.log_source = logfile
            except OSError:
                lines = None
        if lines is None:
            lines = journal_lines()
            diagnosis.log_source = "journal" if lines is not None else None
    else:
        diagnosis.log_source = "given"
    return scan(read_since_last_start(lines or []))


def _explain_startup_failures(events: "List[LogEvent]", diagnosis: "Diagnosis") -> None:
    for kind in ("key-too-short", "key-unreadable"):
        event = next((e for e in reversed(events) if e.kind == kind), None)
        if event is None:
            continue
        running = diagnosis.live is not None and diagnosis.live.running
        diagnosis.add(
            WARNING if running else ERROR,
            "startup-failure" if not running else "past-startup-failure",
            f"corosync {'refused' if not running else 'once refused'} to start: "
            f"{event.line.split('] ', 1)[-1].strip()}",
            "corokey check, then corokey generate --force or copy the cluster's key here",
        )


def _explain_mismatches(
    conf: "CorosyncConf", events: "List[LogEvent]", diagnosis: "Diagnosis"
) -> None:
    live = diagnosis.live
    members = live.members if live and live.running else set()
    counts = mismatched_addresses(events)
    odd = []
    for address, count in sorted(counts.items()):
        node = conf.node_for_address(address)
        if node is not None and node.nodeid in members:
            continue  # it joined since: an old message
        label = node.label if node else address
        odd.append((label, address, count))
    others = [n for n in conf.nodes() if live is None or n.nodeid != live.this_node]
    if odd and len(odd) >= len(others) >= 2 and members <= {live.this_node if live else -1}:
        diagnosis.odd_nodes = ["this node"]
        diagnosis.add(
            ERROR,
            "this-node-key-differs",
            "this node cannot decrypt packets from any other node ("
            + ", ".join(label for label, _, _ in odd)
            + "): its own key is the one that differs",
            "copy the cluster's key here from a member: corokey push --from GOODNODE, "
            "or corokey install KEY",
        )
        return
    me = conf.node_for_id(live.this_node) if live and live.this_node is not None else None
    source = quote(me.label) if me else "A_GOOD_NODE"
    for label, address, count in odd:
        diagnosis.odd_nodes.append(label)
        diagnosis.add(
            ERROR,
            "key-mismatch",
            f"node {label} ({address}) holds a different key: {count} of its packets could "
            "not be decrypted here, and it is not a member",
            f"corokey push --from {source} --nodes {quote(label)} --reload",
        )
    incomplete = not members >= {n.nodeid for n in conf.nodes()}
    unnamed = [e for e in events if e.kind == "digest-mismatch" and e.detail == GENERATION_2X]
    if not odd and unnamed and incomplete:
        _explain_unnamed_mismatch(conf, unnamed, diagnosis)
    elif not odd and any(e.kind == "digest-mismatch" for e in events) and incomplete:
        diagnosis.add(
            WARNING,
            "digest-mismatch",
            "corosync logged 'Digest does not match': some node holds a different key",
            "corokey verify",
        )


def _explain_unnamed_mismatch(
    conf: "CorosyncConf", events: "List[LogEvent]", diagnosis: "Diagnosis"
) -> None:
    """corosync 2.x (totemudp/totemudpu, totemcrypto) logs a bad digest without the sender."""
    live = diagnosis.live
    me = live.this_node if live is not None else None
    others = [n.label for n in conf.nodes() if n.nodeid != me]
    alone = live is not None and live.running and live.members <= {me}
    message = (
        f"corosync logged {len(events)} messages of a bad digest ('Received message has "
        "invalid digest... ignoring.' / 'Digest does not match') since it started: some "
        "node's key differs from this node's. corosync 2.x does not log the sender's "
        "address, so doctor cannot tell from here which node it is, nor whether this node's "
        "key is the odd one"
    )
    if alone:
        message += (
            f"; this node is alone, which is what happens when its own key differs from "
            f"all the others' ({', '.join(others) or 'the nodelist'})"
        )
    diagnosis.add(
        ERROR,
        "key-mismatch-unnamed",
        message,
        "corokey verify (compares the keys of every node in the nodelist over SSH and names "
        "the odd one); then corokey push --from A_GOOD_NODE --nodes THE_ODD_NODE and restart "
        "corosync there (2.x cannot reload a key)",
    )


def _explain_live_state(conf: "CorosyncConf", diagnosis: "Diagnosis") -> None:
    live = diagnosis.live
    if live is None or not live.running:
        diagnosis.add(NOTE, "not-running", "corosync is not running on this node")
        return
    expected = {n.nodeid for n in conf.nodes() if n.nodeid is not None}
    missing = sorted(expected - live.members)
    named = {n.nodeid: n.label for n in conf.nodes()}
    for nodeid in missing:
        label = named.get(nodeid, str(nodeid))
        if label in diagnosis.odd_nodes:
            continue
        diagnosis.add(
            WARNING,
            "not-member",
            f"node {label} (nodeid {nodeid}) is in the nodelist but not a member",
            f"check that corosync runs on {label}; corokey verify compares the keys",
        )
    if live.quorate is False:
        diagnosis.add(WARNING, "not-quorate", "this partition is not quorate")
    if live.reload_error:
        diagnosis.add(
            ERROR,
            "reload-error",
            f"the last configuration reload failed: {live.reload_error}",
            "fix the cause, then corosync-cfgtool -R",
        )
