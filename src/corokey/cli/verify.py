"""``corokey verify``: does every node hold the same sound key?"""

import sys
from typing import Dict, List, Sequence

from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import print_json, printable
from corokey.cli.remote_options import add_remote_options, nodes_from, ssh_from, topology_from
from corokey.profiles import get_profile
from corokey.verify import VerifyReport, verify


def configure(parser: "ArgumentParser") -> None:
    parser.description = (
        "Collect from every node the fingerprint (never the key), size, owner, mode and type of "
        "the key, and group the nodes by fingerprint. Exit 0 when all hold the same sound key, "
        "1 when keys differ or are unsound, 2 when a node cannot be reached or its key "
        "cannot be read."
    )
    add_remote_options(parser)


def execute(args: "Namespace") -> int:
    from corokey.cli.common import given_or

    key_path = None if args.key_path is None else given_or(args.key_path, "", "key path")
    roles: Dict[str, str] = {}
    kinds: Dict[str, str] = {}
    if args.profile == "pacemaker" and not args.nodes:
        topology = topology_from(args)
        nodes = topology.targets()
        for ssh_name, member in topology.by_ssh_name().items():
            kinds[ssh_name] = member.node.kind
            roles[ssh_name] = "cluster" if member.node.kind == "cluster" else "remote"
    else:
        nodes = nodes_from(args)
    report = verify(ssh_from(args), nodes, get_profile(args.profile), key_path, roles)
    if args.json:
        print_json(report.to_json())
        return report.exit_code
    lines = _table(report, nodes, kinds)
    # Owner names, versions and findings come from the nodes: escaped, never raw.
    sys.stdout.write("".join(printable(line) + "\n" for line in lines))
    return report.exit_code


def _table(report: "VerifyReport", nodes: "Sequence[str]", kinds: "Dict[str, str]") -> "List[str]":
    lines = [f"key file: {report.path}"]
    width = max([len(s.node) for s in report.states] + [4])
    if kinds:
        lines.append("nodes: " + ", ".join(f"{node} ({kinds.get(node, '?')})" for node in nodes))
    lines.append(
        f"{'NODE':<{width}}  {'SHA256 (first 16)':<17} {'SIZE':>5} MODE OWNER          STATE"
    )
    for state in report.states:
        if state.unreachable is not None:
            lines.append(f"{state.node:<{width}}  UNREACHABLE: {state.unreachable}")
            continue
        key = state.key
        assert key is not None  # noqa: S101 - reachable nodes always have a key record
        digest = "UNREADABLE" if key.unreadable else (key.used or key.kind)[:16]
        verdict = "odd key" if state.node in report.odd else "same"
        if key.unreadable:
            verdict = "unknown"
        if state.findings:
            worst = state.findings[0]
            verdict += f"; {worst.severity}: {worst.message}"
        owner = f"{key.owner}:{key.group}" if key.owner else "-"
        lines.append(
            f"{state.node:<{width}}  {digest:<17} {key.size:>5} {key.mode:04o} {owner:<14} "
            f"{verdict}"
        )
    if report.corosync2:
        lines.append(
            f"corosync 2.x on {', '.join(report.corosync2)}: compared the first 128 bytes of "
            "the key, all that corosync 2 uses"
        )
    if report.exit_code == 0:
        lines.append(f"all {len(report.states)} nodes hold the same key")
        return lines
    if report.unreachable:
        lines.append(f"unreachable: {', '.join(report.unreachable)}")
    if report.unreadable:
        first = next(s for s in report.states if s.node == report.unreadable[0])
        hint = first.findings[0].fix if first.findings else None
        lines.append(
            f"could not read the key on {', '.join(report.unreadable)}: its fingerprint is "
            "unknown there" + (f"; {hint}" if hint else "")
        )
    if report.all_different and report.whole:
        lines.append(
            f"every node holds a different key: no two of the {len(report.groups)} "
            "nodes agree (the state Debian's pacemaker-common leaves: it writes a random "
            "key on each node at install), so no remote node can connect; copy one key "
            "to all of them (then crm_resource --cleanup where a remote node stays "
            "offline)"
        )
    elif report.tie and report.whole:
        lines.append(
            "the nodes split evenly between keys, so no majority says which is right; "
            "any one key will do for the next connections: the fix below takes the first "
            "node's"
        )
    elif report.tie:
        lines.append(
            "the nodes split evenly between keys, so no majority says which is right: run "
            "corokey doctor on a member; it names the nodes whose key differs from the one "
            "corosync runs, and the push that fixes them"
        )
    elif report.odd:
        lines.append(f"nodes with a different key: {', '.join(report.odd)}")
    fix = report.fix()
    if fix:
        lines.append(f"fix: {fix}")
    return lines
