"""The old key back after a failed rotation, decided from what every node holds.

Whatever was lost (a commit's answer, a session, a reload's answer), the rollback does
not trust what corokey believes it did: it restores ``.old`` wherever the key file is
not the old key, reads every node's file back, and only then decides.  A
``corosync-cfgtool -R`` reloads every member at once, so it runs only when a ``-R`` had
run during the rotation (before that, every corosync still runs the old key) and only
when every node's file reads back as the old key (a node still holding the new key would
load it and drop out).  Where a node cannot be brought back, the outcome names it, what
its file holds as far as known, and the command that finishes it.
"""

import shlex
import time
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from corokey.clusterwatch import fingerprints, switch, wait_whole
from corokey.nodekey import NodeFailure, restore_old
from corokey.remote import Ssh

#: How long a restore waits for the key's directory lock: a session of this very run whose
#: commit stalled (a slow disk) holds it until its sync returns.
BUSY_SECONDS = 60.0


class Outcome:
    """What the nodes hold after a rollback, and what is still wrong."""

    def __init__(self) -> None:
        #: per node: what happened to it, for the report
        self.nodes: Dict[str, str] = {}
        #: per node: what is still wrong (empty: every file holds the old key, whole)
        self.problems: Dict[str, str] = {}
        #: per node: the fingerprint its key file reads back as (None: could not be read)
        self.held: Dict[str, Optional[str]] = {}
        self.rings: Dict[str, Optional[str]] = {}
        #: per node still wrong: the command that finishes it
        self.finish: Dict[str, str] = {}
        #: a -R was held back because some file did not read back as the old key
        self.reload_withheld = False


def restore_one(ssh: "Ssh", node: str, path: str, old: str) -> str:
    """``.old`` back at ``path`` on one node (only if it is the key ``old``), waiting for
    the directory's lock; what happened there."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            held = restore_old(ssh, node, path, old)
        except NodeFailure as failure:
            if failure.reference == "node-busy" and time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            return f"restore failed: {failure.message}"
        return "old key restored" if held.sha256 == old else "restore did not take"


def restore_everywhere(
    ssh: "Ssh", nodes: "List[str]", path: str, old: str, outcome: "Outcome"
) -> None:
    """``.old`` back on every node (under the directory's lock: a commit still in flight
    on a node is waited for), then every key file read back into ``outcome.held``."""
    outcome.nodes.update(ssh.each(nodes, lambda n: restore_one(ssh, n, path, old)))
    outcome.held = fingerprints(ssh, nodes, path)
    for node, held in outcome.held.items():
        if held == old and not outcome.nodes[node].startswith("old key"):
            # Nothing to restore there (no commit landed, no .old): its file is the old key.
            outcome.nodes[node] = "holds the old key"


def standing(held: "Optional[str]", old: "Optional[str]", new: str) -> str:
    """What a node's key file holds, in words."""
    if held is None:
        return "its key file could not be read (it may hold the old or the new key)"
    if held == old:
        return "holds the old key"
    if held == new:
        return "holds the new key"
    return "holds another key"


def read_back(
    ssh: "Ssh", nodes: "List[str]", path: str, old: "Optional[str]", new: str
) -> "Dict[str, str]":
    """Where each node stands, read from the node."""
    return {n: standing(h, old, new) for n, h in fingerprints(ssh, nodes, path).items()}


def roll_back_online(
    ssh: "Ssh",
    nodes: "List[str]",
    path: str,
    old: str,
    new: str,
    members: "Set[int]",
    reloaded: bool,
    note: "Callable[[str], None]",
    options: "Sequence[str]" = (),
) -> "Outcome":
    """The old key back on a running cluster; ``reloaded``: a ``-R`` had been sent."""
    outcome = Outcome()
    restore_everywhere(ssh, nodes, path, old, outcome)
    astray = [n for n in nodes if outcome.held[n] != old]
    if reloaded and not astray:
        # One node at a time: a node that switched alone is reached only by its own reload.
        for node in nodes:
            problem = switch(ssh, node)
            if problem:
                outcome.nodes[node] += f"; reload failed: {problem}"
    elif reloaded:
        outcome.reload_withheld = True
        note(f"not reloading: {', '.join(astray)} does not hold the old key")
    problems, outcome.rings = wait_whole(ssh, nodes, members)
    outcome.problems.update(problems)
    for node in astray:  # what its file holds, as far as known, first
        held = standing(outcome.held[node], old, new)
        live = outcome.problems.get(node)
        outcome.problems[node] = f"{held}; {live}" if live else held
    outcome.finish = finish_commands(ssh, outcome.held, old, astray, reloaded, options)
    return outcome


def finish_commands(
    ssh: "Ssh",
    held: "Dict[str, Optional[str]]",
    old: str,
    astray: "List[str]",
    reload_after: bool,
    options: "Sequence[str]",
) -> "Dict[str, str]":
    """Per node that does not hold the old key: copy it there from a node that does (and,
    when the cluster had reloaded, reload once every file holds it)."""
    good = next((n for n, h in held.items() if h == old), None)
    if good is None:
        return {}
    commands = {}
    for node in astray:
        argv = ["corokey", "push", "--from", good, "--nodes", node, *options]
        command = " ".join(shlex.quote(a) for a in argv)
        if reload_after:
            command += " && " + " ".join(shlex.quote(a) for a in reload_argv(ssh, good))
        commands[node] = command
    return commands


def reload_argv(ssh: "Ssh", node: str) -> "Tuple[str, ...]":
    """``ssh ... NODE corosync-cfgtool -R`` with the admin's own ssh set-up."""
    argv: List[str] = ["ssh"]
    if ssh.config:
        argv += ["-F", ssh.config]
    for option in ssh.options:
        argv += ["-o", option]
    return (*argv, node, "corosync-cfgtool", "-R")
