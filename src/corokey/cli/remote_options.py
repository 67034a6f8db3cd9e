"""Options shared by the commands that reach nodes over SSH."""

from typing import TYPE_CHECKING, List, Optional

from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import add_json_option, add_profile_option, given_or
from corokey.remote import Ssh, resolve_nodes, validate_node, validate_path

if TYPE_CHECKING:
    from corokey.pacemaker_nodes import Topology


def add_remote_options(parser: "ArgumentParser") -> None:
    parser.add_argument("--nodes", metavar="A,B,...", help="nodes (default: the nodelist)")
    parser.add_argument(
        "--config", metavar="FILE", help="corosync.conf whose nodelist to use (default local)"
    )
    add_profile_option(parser)
    add_pacemaker_node_options(parser)
    parser.add_argument(
        "--key-path",
        metavar="PATH",
        help="the key's path on the nodes (default: where each node's corosync.conf says "
        "corosync reads it; other profiles: the profile's)",
    )
    parser.add_argument(
        "-F", "--ssh-config", metavar="FILE", help="ssh_config file for the ssh client"
    )
    parser.add_argument(
        "-o", "--ssh-option", action="append", metavar="OPTION", help="extra ssh -o option"
    )
    parser.add_argument(
        "--timeout", type=int, default=60, metavar="SECONDS", help="per node (default 60)"
    )
    add_json_option(parser)


def ssh_from(args: "Namespace") -> "Ssh":
    return Ssh(config=args.ssh_config, options=args.ssh_option or (), timeout=args.timeout)


def add_pacemaker_node_options(parser: "ArgumentParser") -> None:
    """Where the pacemaker profile's nodes come from (corokey.pacemaker_nodes)."""
    parser.add_argument(
        "--cib-from",
        metavar="NODE",
        help="pacemaker profile: the cluster node whose CIB names the nodes (default: the "
        "first of corosync.conf's nodelist that answers)",
    )
    parser.add_argument(
        "--cib", metavar="FILE", help="pacemaker profile: a saved CIB (cibadmin -Q) instead"
    )
    parser.add_argument(
        "--ssh-name",
        action="append",
        metavar="NAME=HOST",
        help="pacemaker profile: ssh reaches Pacemaker's node NAME as HOST (default: by its name)",
    )


def nodes_from(args: "Namespace") -> "List[str]":
    if args.profile == "pacemaker" and not args.nodes:
        return topology_from(args).targets()
    return resolve_nodes(args.nodes, args.config)


def topology_from(args: "Namespace") -> "Topology":
    """The pacemaker profile's nodes: from --cib, else asked of --cib-from or of the
    corosync nodelist's nodes in turn."""
    from corokey.pacemaker_nodes import parse_ssh_names, read_topology

    names = parse_ssh_names(args.ssh_name or [])
    if args.cib is not None:
        return read_topology(ssh_from(args), [], names, cib_file=args.cib)
    ask = [validate_node(args.cib_from)] if args.cib_from else resolve_nodes(None, args.config)
    return read_topology(ssh_from(args), ask, names)


def key_path_from(args: "Namespace") -> "Optional[str]":
    """``--key-path`` checked before any node is reached: absolute, naming a file."""
    if args.key_path is None:
        return None
    return validate_path(given_or(args.key_path, "", "key path"))


def ssh_options_for(args: "Namespace") -> "List[str]":
    """The command-line options that reach the same nodes the same way (for the commands
    corokey prints: a finish command must use the admin's own ssh set-up)."""
    options: List[str] = []
    if args.ssh_config:
        options += ["-F", args.ssh_config]
    for option in args.ssh_option or []:
        options += ["-o", option]
    if args.profile != "corosync":
        options += ["--profile", args.profile]
    if args.key_path:
        options += ["--key-path", args.key_path]
    return options
