"""Whom a ``corosync-cfgtool -R`` reaches: every member of the membership of the node it
runs on, not only that node (docs/rotate.md).  ``push --reload`` to some members of a
running cluster would make the others load a key file that still holds the old key, and
the cluster would split; it is refused before anything changes.  A node split off alone
(its membership only itself) may be repaired by its own reload."""

from typing import Dict, List, Optional, Set

from corokey.errors import CorokeyError
from corokey.nodekey import NodeFailure, live
from corokey.remote import Ssh
from corokey.runtime import LiveState


def check_reload_scope(ssh: "Ssh", targets: "List[str]", holders: "List[str]") -> None:
    """Refuse unless every member reached by a reload on ``targets`` is one of ``holders``
    (the nodes that will hold the key: the targets, and a ``--from`` node)."""
    ids: Dict[str, int] = {}
    reached: Set[int] = set()
    unknown: List[str] = []

    def one(node: str) -> "Optional[LiveState]":
        try:
            return live(ssh, node).live
        except NodeFailure:
            return None

    for node, state in ssh.each(list(dict.fromkeys(targets + holders)), one).items():
        if state is None:
            unknown.append(node)
            continue
        if state.this_node is not None:
            ids[node] = state.this_node
        if node in targets and state.running:
            reached |= set(state.members)
    if unknown:
        raise CorokeyError(
            f"push --reload: cannot ask {', '.join(unknown)} which members a reload reaches",
            hint="check the connection (ssh NODE true), or push without --reload",
            reference="reload-some-members",
        )
    outside = reached - {ids[n] for n in holders if n in ids}
    if outside:
        raise CorokeyError(
            f"push --reload to {', '.join(targets)} would reload nodeids {sorted(outside)} "
            "too (corosync-cfgtool -R reloads every member), whose key files would not hold "
            "this key: the cluster would split",
            hint="name every member with --nodes, or push without --reload; corokey rotate "
            "changes the key of a running cluster",
            reference="reload-some-members",
        )
