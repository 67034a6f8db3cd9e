"""What a running cluster does right now, read from every node: membership, reload
status, ring ids, the key each node's file holds; and the reload that switches keys.

rotate, its rollback and rotate --restart decide from these readings only, never from
what they believe they did (docs/rotate.md).
"""

import time
from typing import Dict, List, Optional, Set, Tuple

from corokey.nodekey import NodeFailure, live, look, reload
from corokey.remote import Ssh

#: How long membership must stay whole after a reload before we call it done:
#: a node left on the other key drops out within about 3 s (docs/rotate.md).
SETTLE_SECONDS = 6.0
#: cmap config.reload_status after a successful reload (CS_OK).
RELOAD_OK = "1"
STILL_ANSWERS = "corosync still answers after the stop command"


def switch(ssh: "Ssh", node: str) -> "Optional[str]":
    """One ``corosync-cfgtool -R``: every member loads the key file. The problem, if any."""
    try:
        reload(ssh, node)
    except NodeFailure as failure:
        return failure.message
    return None


def _live_problem(
    ssh: "Ssh", node: str, members: "Set[int]"
) -> "Tuple[Optional[str], Optional[str]]":
    """(problem, ring id) of one node right now."""
    try:
        view = live(ssh, node)
    except NodeFailure as failure:
        return failure.message, None
    state = view.live
    if state is None or not state.running:
        return "corosync does not answer", None
    if view.reload_status is not None and view.reload_status != RELOAD_OK:
        return f"the reload failed there (config.reload_status {view.reload_status})", None
    if state.members != members:
        return f"sees members {sorted(state.members)} instead of {sorted(members)}", None
    return None, state.ring_id


def settle(
    ssh: "Ssh", nodes: "List[str]", members: "Set[int]", seconds: float = SETTLE_SECONDS
) -> "Tuple[Dict[str, str], Dict[str, Optional[str]]]":
    """Watch every node for ``seconds``: problems by node (empty when all stayed whole)
    and the last ring ids seen."""
    problems: Dict[str, str] = {}
    rings: Dict[str, Optional[str]] = {}
    deadline = time.monotonic() + seconds
    while True:
        for node, (problem, ring) in ssh.each(
            nodes, lambda n: _live_problem(ssh, n, members)
        ).items():
            rings[node] = ring
            if problem and node not in problems:
                problems[node] = problem
        if problems or time.monotonic() >= deadline:
            return problems, rings
        time.sleep(1.0)


def wait_whole(
    ssh: "Ssh", nodes: "List[str]", members: "Set[int]", timeout: float = 30.0
) -> "Tuple[Dict[str, str], Dict[str, Optional[str]]]":
    """Wait until every node sees ``members`` again, then settle briefly."""
    deadline = time.monotonic() + timeout
    while True:
        problems, rings = settle(ssh, nodes, members, seconds=0)
        if not problems:
            return settle(ssh, nodes, members, seconds=SETTLE_SECONDS / 2)
        if time.monotonic() >= deadline:
            return problems, rings
        time.sleep(1.0)


def fingerprints(ssh: "Ssh", nodes: "List[str]", path: str) -> "Dict[str, Optional[str]]":
    """The fingerprint of the key file at ``path`` on every node; None where it could not
    be read (the node is unreachable, or the file is missing or no regular file)."""

    def one(node: str) -> "Optional[str]":
        try:
            held = look(ssh, node, [path]).keys.get(path)
        except NodeFailure:
            return None
        return held.sha256 if held else None

    return ssh.each(nodes, one)


def still_running(ssh: "Ssh", nodes: "List[str]") -> "Dict[str, str]":
    """The nodes where corosync still answers (or that cannot be asked), with why: after a
    stop, nothing may be committed until corosync is gone everywhere."""

    def one(node: str) -> "Optional[str]":
        try:
            view = live(ssh, node)
        except NodeFailure as failure:
            return failure.message
        if view.live is not None and view.live.running:
            return STILL_ANSWERS
        return None

    return {n: p for n, p in ssh.each(nodes, one).items() if p is not None}
