"""``corokey verify``: does every node hold the same sound key?"""

import sys
from typing import Dict

from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import print_json
from corokey.cli.remote_options import add_remote_options, nodes_from, ssh_from, topology_from
from corokey.profiles import get_profile
from corokey.verify import verify


def configure(parser: "ArgumentParser") -> None:
    parser.description = (
        "Collect from every node the fingerprint (never the key), size, owner, mode and type of "
        "the key, and group the nodes by fingerprint. Exit 0 when all hold the same sound key, "
        "1 when keys differ or are unsound, 2 when a node cannot be reached."
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
    out = sys.stdout
    width = max([len(s.node) for s in report.states] + [4])
    out.write(f"key file: {report.path}\n")
    if kinds:
        out.write(
            "nodes: " + ", ".join(f"{node} ({kinds.get(node, '?')})" for node in nodes) + "\n"
        )
    out.write(
        f"{'NODE':<{width}}  {'SHA256 (first 16)':<17} {'SIZE':>5} MODE OWNER          STATE\n"
    )
    for state in report.states:
        if state.unreachable is not None:
            out.write(f"{state.node:<{width}}  UNREACHABLE: {state.unreachable}\n")
            continue
        key = state.key
        assert key is not None  # noqa: S101 - reachable nodes always have a key record
        digest = (key.used or key.kind)[:16]
        verdict = "odd key" if state.node in report.odd else "same"
        if state.findings:
            worst = state.findings[0]
            verdict += f"; {worst.severity}: {worst.message}"
        owner = f"{key.owner}:{key.group}" if key.owner else "-"
        out.write(
            f"{state.node:<{width}}  {digest:<17} {key.size:>5} {key.mode:04o} {owner:<14} "
            f"{verdict}\n"
        )
    if report.corosync2:
        out.write(
            f"corosync 2.x on {', '.join(report.corosync2)}: compared the first 128 bytes of "
            "the key, all that corosync 2 uses\n"
        )
    code = report.exit_code
    if code == 0:
        out.write(f"all {len(report.states)} nodes hold the same key\n")
    else:
        if report.unreachable:
            out.write(f"unreachable: {', '.join(report.unreachable)}\n")
        if report.all_different and report.whole:
            out.write(
                f"every node holds a different key: no two of the {len(report.groups)} "
                "nodes agree (the state Debian's pacemaker-common leaves: it writes a random "
                "key on each node at install), so no remote node can connect; copy one key "
                "to all of them (then crm_resource --cleanup where a remote node stays "
                "offline)\n"
            )
        elif report.tie and report.whole:
            out.write(
                "the nodes split evenly between keys, so no majority says which is right; "
                "any one key will do for the next connections: the fix below takes the first "
                "node's\n"
            )
        elif report.tie:
            out.write(
                "the nodes split evenly between keys, so no majority says which is right: run "
                "corokey doctor on a member; it names the nodes whose key differs from the one "
                "corosync runs, and the push that fixes them\n"
            )
        elif report.odd:
            out.write(f"nodes with a different key: {', '.join(report.odd)}\n")
        fix = report.fix()
        if fix:
            out.write(f"fix: {fix}\n")
    return code
