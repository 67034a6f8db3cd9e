"""``corokey rotate --profile pacemaker``: Pacemaker Remote's key, online (Pacemaker < 3.0.2)."""

import sys
from typing import Callable, Optional

from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import print_json
from corokey.pacemaker_access import why_owner

PROVE_COMMAND = "systemctl restart pacemaker_remote"


def add_options(parser: "ArgumentParser") -> None:
    parser.add_argument(
        "--leave-out",
        metavar="NAME,...",
        help="pacemaker profile: nodes stopped on purpose to leave out (they must get the "
        "new key before they start: corokey push --profile pacemaker --from NODE)",
    )
    parser.add_argument(
        "--prove-on",
        metavar="NODE",
        help="pacemaker profile: afterwards restart pacemaker-remoted on this remote node "
        "(ssh name) and wait until it is back online: proof that new connections work; its "
        "resources are recovered as after any restart of pacemaker_remote",
    )
    parser.add_argument(
        "--prove-command",
        metavar="CMD",
        default=PROVE_COMMAND,
        help=f"with --prove-on: how to restart pacemaker-remoted (default: {PROVE_COMMAND})",
    )


def execute(args: "Namespace", key: bytes, confirm: "Callable[[int], bool]") -> int:
    from corokey.cli.remote_options import key_path_from, ssh_from, topology_from
    from corokey.pacemaker_rotate import (
        PacemakerRotateError,
        PacemakerRotateReport,
        prove_by_restart,
        rotate_pacemaker,
    )
    from corokey.profiles import get_profile

    if args.nodes:
        from corokey.errors import UsageError

        raise UsageError(
            "rotate --profile pacemaker takes its nodes from the CIB, not --nodes",
            hint="--cib-from NODE names the cluster node to ask; --leave-out NAME leaves a "
            "node stopped on purpose out",
        )
    ssh = ssh_from(args)
    topology = topology_from(args)
    leave_out = [n.strip() for n in (args.leave_out or "").split(",") if n.strip()]
    if not args.dry_run and not args.yes and not confirm(len(topology.targets(leave_out))):
        from corokey.errors import CorokeyError

        raise CorokeyError(
            "rotation not confirmed",
            hint="answer y on a terminal, or pass --yes (scripts)",
            reference="not-confirmed",
        )

    def note(node: str, state: str) -> None:
        if not args.json:
            sys.stderr.write(f"corokey: {node}: {state}\n")

    prove: Optional[Callable[[], Optional[str]]] = None
    if args.prove_on:
        cluster = next(m.ssh_name for m in topology.members if m.node.kind == "cluster")

        def prove_it() -> "Optional[str]":
            return prove_by_restart(ssh, topology, cluster, args.prove_on, args.prove_command)

        prove = prove_it

    def show(report: "PacemakerRotateReport") -> None:
        if args.json:
            print_json(report.to_json())
            return
        out = sys.stdout
        for node, state in report.states.items():
            out.write(f"{node}: {state}\n")
        if report.left_out:
            out.write(
                f"left out (give them the key before they start): {', '.join(report.left_out)}\n"
            )
        if report.window_seconds:
            out.write(
                f"waited {report.window_seconds:.0f} s for every key cache to expire"
                + (" in maintenance-mode" if report.maintenance_set else "")
                + "\n"
            )
        for node, seconds in report.offline.items():
            shown = "still offline" if seconds < 0 else f"offline {seconds:.1f} s"
            out.write(f"{node}: {shown}\n")
        for node, owner in report.owners.items():
            out.write(f"{node}: {why_owner(owner)}\n")
        out.write(f"{report.outcome}\n")

    try:
        report = rotate_pacemaker(
            ssh,
            topology,
            get_profile("pacemaker"),
            key,
            key_path_from(args),
            leave_out,
            prove=prove,
            progress=note,
            dry_run=args.dry_run,
        )
    except PacemakerRotateError as error:
        show(error.report)
        raise
    show(report)
    return 0
