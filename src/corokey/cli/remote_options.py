"""Options shared by the commands that reach nodes over SSH."""

from corokey.cli.common import add_json_option, add_profile_option

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import List

    from corokey.cli.args import ArgumentParser, Namespace
    from corokey.remote import Ssh


def add_remote_options(parser: "ArgumentParser") -> None:
    parser.add_argument("--nodes", metavar="A,B,...", help="nodes (default: the nodelist)")
    parser.add_argument(
        "--config", metavar="FILE", help="corosync.conf whose nodelist to use (default local)"
    )
    add_profile_option(parser)
    parser.add_argument(
        "--key-path", metavar="PATH", help="the key's path on the nodes (default: the profile's)"
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
    from corokey.remote import Ssh

    return Ssh(config=args.ssh_config, options=args.ssh_option, timeout=args.timeout)


def nodes_from(args: "Namespace") -> "List[str]":
    from corokey.remote import resolve_nodes

    return resolve_nodes(args.nodes, args.config)
