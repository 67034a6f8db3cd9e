"""``corokey push``: the key to every node over SSH, all or nothing."""

import sys
import threading
from typing import Callable, List, Optional

from corokey.checks import content_errors
from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import given_or, print_json, printable, warn
from corokey.cli.fingerprint import read_key_argument
from corokey.cli.remote_options import (
    add_remote_options,
    key_path_from,
    nodes_from,
    ssh_from,
    ssh_options_for,
)
from corokey.errors import CorokeyError, UsageError
from corokey.exitcodes import EXIT_FINDINGS, EXIT_OK
from corokey.profiles import get_profile
from corokey.push import PushError, PushReport, finish_command, push, read_from, reload_each


def configure(parser: "ArgumentParser") -> None:
    parser.description = (
        "Copy a key to every node over ssh (the key travels on ssh's stdin only), in two "
        "phases: stage a checked copy everywhere, then commit everywhere, keeping .old. If any "
        "node cannot stage, nothing changes anywhere. Exit 0 when every node holds the key, "
        "1 when --skip-unreachable left nodes out, 2 on failure."
    )
    parser.add_argument("keyfile", nargs="?", metavar="KEYFILE", help="key to push (- for stdin)")
    parser.add_argument("--from", dest="from_node", metavar="NODE", help="take the key from NODE")
    parser.add_argument(
        "--skip-unreachable", action="store_true", help="push to the nodes that answer"
    )
    parser.add_argument("--force", action="store_true", help="push a key that fails the check")
    parser.add_argument(
        "--reload",
        action="store_true",
        help="then run corosync-cfgtool -R on each node that got the key (repairs a node "
        "left on another key); refused when a reload would reach members not named",
    )
    add_remote_options(parser)


def execute(args: "Namespace") -> int:
    profile = get_profile(args.profile)
    ssh = ssh_from(args)
    key_path = key_path_from(args)
    if args.from_node and args.keyfile:
        raise UsageError("give KEYFILE or --from NODE, not both", hint="corokey push --help")
    pacemaker_source = False
    if args.from_node:
        nodes = nodes_from(args)
        key, label, pacemaker_source = read_from(ssh, args.from_node, profile, key_path)
        nodes = [n for n in nodes if n != args.from_node] or nodes
    else:
        # The command line first: an empty or unreadable KEYFILE is named as such, also on
        # a machine without corosync.conf, where the nodes cannot be found.
        source = given_or(args.keyfile, key_path or profile.path, "key file")
        key = read_key_argument(source).data
        label = source
        nodes = nodes_from(args)
    errors = content_errors(key, profile, label)
    if errors and not args.force:
        raise CorokeyError(
            f"refusing to push {label}: {errors[0].message}",
            hint=f"{errors[0].fix}; or --force",
            reference="source-" + errors[0].reference,
        )
    if args.reload:
        from corokey.reloadscope import check_reload_scope

        holders = [*nodes, args.from_node] if args.from_node else nodes
        check_reload_scope(ssh, nodes, holders)
    live = _LiveLines(nodes) if sys.stderr.isatty() and not args.json else None
    try:
        progress = live.set if live else None
        report = push(
            ssh,
            nodes,
            key,
            profile,
            key_path,
            args.skip_unreachable,
            progress,
            pacemaker_source=pacemaker_source,
        )
    except PushError as exc:
        _show(exc.report, args.json, _finisher(exc.report, args))
        raise
    if args.reload:
        failed = reload_each(ssh, report.nodes_in("committed"))
        for node in report.nodes_in("committed"):
            if node not in failed:
                report.set(node, "committed, reloaded")
        if failed:
            _show(report, args.json)
            raise CorokeyError(
                "the key is in place, but corosync-cfgtool -R failed on "
                + "; ".join(failed.values()),
                hint="run corokey doctor there; restarting corosync also loads the key",
                reference="reload-failed",
            )
    _show(report, args.json)
    skipped = report.nodes_in("skipped")
    if skipped:
        warn(f"skipped unreachable {', '.join(skipped)}: they do not hold the new key yet")
        return EXIT_FINDINGS
    return EXIT_OK


def _finisher(report: "PushReport", args: "Namespace") -> "Callable[[str], str]":
    """The command that finishes one failed node, with this push's own options."""
    options = ssh_options_for(args)
    return lambda node: finish_command(report, node, options) or "corokey push again"


class _LiveLines:
    """One line per node on the terminal (stderr), rewritten in place as its state changes."""

    def __init__(self, nodes: "List[str]") -> None:
        self.nodes = list(dict.fromkeys(nodes))
        self.width = max(len(n) for n in self.nodes) if self.nodes else 4
        self.lock = threading.Lock()
        for node in self.nodes:
            sys.stderr.write(f"  {node:<{self.width}}  waiting\n")
        sys.stderr.flush()

    def set(self, node: str, state: str) -> None:
        if node not in self.nodes:
            return
        up = len(self.nodes) - self.nodes.index(node)
        with self.lock:  # called from the worker threads
            # cursor up to the node's line, rewrite it, cursor back down
            line = f"{node:<{self.width}}  {printable(state)}"
            sys.stderr.write(f"\x1b[{up}A\r\x1b[2K  {line}\x1b[{up}B\r")
            sys.stderr.flush()


def _show(
    report: "PushReport", as_json: bool, finish: "Optional[Callable[[str], str]]" = None
) -> None:
    if as_json:
        print_json(report.to_json(finish))
        return
    out = sys.stdout
    width = max([len(n) for n in report.states] + [4])
    out.write(f"{'NODE':<{width}}  STATE\n")
    for node, state in report.states.items():
        reason = report.reasons.get(node)
        line = f"{node:<{width}}  {state}{f' ({reason})' if reason else ''}"
        out.write(printable(line) + "\n")
        if finish is not None and state == "failed":
            out.write(f"{'':<{width}}  finish with: {printable(finish(node))}\n")
    out.write(f"key {report.fingerprint} ({report.size} bytes), {report.seconds:.1f} s\n")
    if report.corosync2:
        out.write(
            f"corosync 2.x on {', '.join(report.corosync2)} uses only the first 128 bytes "
            "of this key\n"
        )
    if report.pacemaker:
        out.write(
            f"Pacemaker reads this key as Pacemaker Remote's key on {', '.join(report.pacemaker)}"
            ": kept root:haclient 0440 there (corokey check explains)\n"
        )
    if report.owners:
        from corokey.pacemaker_access import why_owner

        for node, owner in report.owners.items():
            out.write(printable(f"{node}: {why_owner(owner)}") + "\n")
