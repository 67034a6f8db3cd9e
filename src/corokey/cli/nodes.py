"""``corokey nodes``: which nodes hold a profile's key, and how ssh reaches them."""

import sys

from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import print_json
from corokey.cli.remote_options import add_remote_options, nodes_from, topology_from


def configure(parser: "ArgumentParser") -> None:
    parser.description = (
        "List the nodes push, verify and rotate reach. With --profile pacemaker: every "
        "cluster node, remote node and guest node of the CIB a cluster node holds, which is "
        "which, the address Pacemaker connects to, the ssh name, and which are down."
    )
    add_remote_options(parser)


def execute(args: "Namespace") -> int:
    if args.profile != "pacemaker" or args.nodes:
        nodes = nodes_from(args)
        if args.json:
            print_json({"nodes": [{"ssh": n} for n in nodes]})
        else:
            sys.stdout.write("".join(f"{n}\n" for n in nodes))
        return 0
    topology = topology_from(args)
    if args.json:
        print_json(topology.to_json())
        return 0
    out = sys.stdout
    rows = [("NAME", "KIND", "CONNECTS TO", "SSH", "STATE")]
    for member in topology.members:
        node = member.node
        state = node.state + (" (stopped on purpose)" if node.stopped else "")
        address = "-" if node.kind == "cluster" else f"{node.address}:{node.port}"
        ssh = member.ssh_name if member.reached else "- (host's key)"
        rows.append((node.name, node.kind, address, ssh, state))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + f"  {row[4]}\n")
    out.write(f"from the CIB of {topology.source}")
    if args.cib is not None:
        out.write(" (a saved CIB: states unknown)")
    elif not topology.states_known:
        out.write(" (states unknown: crm_mon did not answer)")
    out.write("\n")
    if any(not m.reached for m in topology.members):
        out.write(
            "bundle replicas hold their host's /etc/pacemaker/authkey, bind-mounted: the "
            "cluster nodes' key is theirs\n"
        )
    return 0
