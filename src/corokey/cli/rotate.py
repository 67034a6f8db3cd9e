"""``corokey rotate``: a new key for a running cluster, without downtime."""

import signal
import sys

from corokey.checks import content_errors
from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import print_json
from corokey.cli.fingerprint import read_key_argument
from corokey.cli.remote_options import (
    add_remote_options,
    key_path_from,
    nodes_from,
    ssh_from,
    ssh_options_for,
)
from corokey.errors import CorokeyError
from corokey.exitcodes import EXIT_OK
from corokey.key import fingerprint, generate_key
from corokey.nodescripts import START_STACK, STOP_STACK
from corokey.profiles import get_profile, key_size
from corokey.restart import FORM_SECONDS, STACK_SECONDS, Stack, rotate_restart
from corokey.rotate import RotateError, RotateReport, rotate


def configure(parser: "ArgumentParser") -> None:
    parser.description = (
        "Replace the key of a running corosync 3.1+ cluster without downtime: preflight every "
        "node, stage and commit the new key everywhere (keeping .old), run corosync-cfgtool -R "
        "once, verify reload, membership and ring id on every node, and roll back everywhere "
        "on any failure. corosync 2.x cannot load a key online: --restart stops and starts the "
        "whole cluster instead. Exit 0 rotated, 2 refused or rolled back, 130 interrupted."
    )
    parser.add_argument("--key", metavar="FILE", help="the new key (default: a fresh one)")
    parser.add_argument(
        "-s", "--size", type=int, help="size of a fresh key (default: the profile's size)"
    )
    parser.add_argument("--dry-run", action="store_true", help="preflight and plan only")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="for corosync 2.x (no online key change): stop the cluster on every node, "
        "change the key everywhere, start every node, wait for the full membership; the "
        "old key back everywhere if it does not form",
    )
    parser.add_argument(
        "--stop-command",
        metavar="CMD",
        default=STOP_STACK,
        help="with --restart: how to stop the stack on a node (default: systemctl, "
        "pacemaker first where it runs)",
    )
    parser.add_argument(
        "--start-command",
        metavar="CMD",
        default=START_STACK,
        help="with --restart: how to start the stack on a node, run on every node told to "
        "stop (default: systemctl, pacemaker last exactly where it ran before the stop)",
    )
    parser.add_argument(
        "--stack-timeout",
        type=int,
        default=int(STACK_SECONDS),
        metavar="SECONDS",
        help="with --restart: how long a stop or start command may take on a node "
        f"(default {int(STACK_SECONDS)}; stopping pacemaker may take minutes)",
    )
    parser.add_argument(
        "--form-timeout",
        type=int,
        default=int(FORM_SECONDS),
        metavar="SECONDS",
        help="with --restart: how long the cluster may take to form (default 60)",
    )
    add_remote_options(parser)


def execute(args: "Namespace") -> int:
    profile = get_profile(args.profile)
    ssh = ssh_from(args)
    nodes = nodes_from(args)
    key_path = key_path_from(args)
    if args.key:
        key = read_key_argument(args.key).data
    else:
        key = generate_key(key_size(profile, args.size))
    errors = content_errors(key, profile, args.key or "new key")
    if errors:
        raise CorokeyError(
            f"refusing to rotate to a key that corokey check rejects: {errors[0].message}",
            hint="corokey would never commit a key corosync refuses; use a generated key",
            reference="rotate-bad-key",
        )
    if not args.dry_run and not args.yes and not _confirm(len(nodes), args.restart):
        raise CorokeyError(
            "rotation not confirmed",
            hint="answer y on a terminal, or pass --yes (scripts)",
            reference="not-confirmed",
        )

    def note(text: str) -> None:
        if not args.json:
            sys.stderr.write(f"corokey: {text}\n")

    # SIGTERM and SIGHUP (a closed terminal) as Ctrl-C: rotate puts the nodes in order, or
    # says where each stands. The ssh children do not see these (own process group): each
    # finishes the step it is in.
    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) != signal.SIG_IGN:  # nohup's choice stands
            signal.signal(number, signal.default_int_handler)
    options = ssh_options_for(args)
    try:
        if args.restart:
            stack = Stack(ssh, args.stop_command, args.start_command, args.stack_timeout)
            report = rotate_restart(
                ssh,
                nodes,
                key,
                profile,
                key_path,
                note,
                stack,
                args.dry_run,
                args.form_timeout,
                options,
            )
        else:
            report = rotate(
                ssh, nodes, key, profile, key_path, note, dry_run=args.dry_run, options=options
            )
    except RotateError as exc:
        _show(exc.report, args.json, fingerprint(key))
        raise
    _show(report, args.json, fingerprint(key))
    return EXIT_OK


def _confirm(count: int, restart: bool) -> bool:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    if restart:
        sys.stderr.write(
            f"This stops the cluster on all {count} nodes at once: it is down until it forms "
            "again with the new key. Rotate with a restart now? (y/n) "
        )
    else:
        sys.stderr.write(f"Rotate the key of {count} nodes now? (y/n) ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _show(report: "RotateReport", as_json: bool, new_fingerprint: str) -> None:
    if as_json:
        document = report.to_json()
        document["new_fingerprint"] = new_fingerprint
        print_json(document)
        return
    out = sys.stdout
    for step in report.steps:
        out.write(f"  {step}\n")
    for node, state in sorted(report.nodes.items()):
        out.write(f"  {node}: {state}\n")
        if node in report.finish:
            out.write(f"    finish with: {report.finish[node]}\n")
    old = f"sha256 {report.old[:16]}..." if report.old else "unknown"
    down = "" if report.downtime is None else f", cluster down {report.downtime:.1f} s"
    out.write(
        f"{report.result}: old key {old}, new key {new_fingerprint}, {report.seconds:.1f} s{down}\n"
    )
