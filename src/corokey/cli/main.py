"""``corokey``: the dispatcher.  Subcommands are imported only when run."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional, Tuple

from corokey.cli.common import EXIT_ERROR, EXIT_OK, PROGRAM, run_guarded

# name -> (module under corokey.cli, one-line summary).  A module provides
#   configure(parser: argparse.ArgumentParser) -> None
#   execute(args: argparse.Namespace) -> int
COMMANDS = {
    "generate": ("generate", "create a new key file (or write one to stdout)"),
    "fingerprint": ("fingerprint", "show the SHA256 fingerprint of key files"),
    "check": ("check", "find problems in key files that corosync would trip over"),
    "compare": ("compare", "tell whether key files hold the same corosync key"),
    "install": ("install", "install a key with the right owner and mode, atomically"),
    "doctor": ("doctor", "explain this node's key set-up and why nodes cannot join"),
    "push": ("push", "copy the key to every node over SSH, all or nothing"),
    "verify": ("verify", "check over SSH that every node holds the same sound key"),
    "rotate": ("rotate", "replace the key of a running cluster without downtime"),
}


def _version() -> str:
    from corokey import __version__

    return __version__


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Make and manage the shared authentication key of Corosync clusters.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<12} {summary}" for name, (_, summary) in COMMANDS.items())
        + f"\n\nRun '{PROGRAM} COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {_version()}")
    parser.add_argument("command", nargs="?", metavar="COMMAND", help=argparse.SUPPRESS)
    return parser


def _split(argv: List[str]) -> Tuple[List[str], Optional[str], List[str]]:
    """Top-level options, the command name, and the command's own arguments."""
    for index, arg in enumerate(argv):
        if not arg.startswith("-"):
            return argv[:index], arg, argv[index + 1 :]
    return argv, None, []


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    top, command, rest = _split(args)
    if command is None:
        parser = _top_parser()
        parser.parse_args(top)
        parser.print_help()
        return EXIT_ERROR if not top else EXIT_OK
    if command not in COMMANDS:
        sys.stderr.write(
            f"{PROGRAM}: unknown command '{command}'; run '{PROGRAM} --help' for the list\n"
        )
        return EXIT_ERROR
    module_name, summary = COMMANDS[command]
    try:
        module = importlib.import_module(f"corokey.cli.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"corokey.cli.{module_name}":
            raise
        sys.stderr.write(f"{PROGRAM}: '{command}' is not available in this version yet\n")
        return EXIT_ERROR
    parser = argparse.ArgumentParser(prog=f"{PROGRAM} {command}", description=summary)
    module.configure(parser)
    namespace = parser.parse_args(top + rest)
    code: int = run_guarded(lambda: int(module.execute(namespace)))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
