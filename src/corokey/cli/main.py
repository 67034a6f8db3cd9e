"""``corokey``: the dispatcher.  Subcommands are imported only when run."""

import sys

from corokey.cli.common import PROGRAM, fail, run_guarded
from corokey.exitcodes import EXIT_ERROR, EXIT_FINDINGS, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK
from corokey.secretfile import forbid_core_dumps

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import List, Optional

# name -> (module under corokey.cli, one-line summary).  A module provides
#   configure(parser: corokey.cli.args.ArgumentParser) -> None
#   execute(args: corokey.cli.args.Namespace) -> int
COMMANDS = {
    "generate": ("generate", "create a new key file (or write one to stdout)"),
    "fingerprint": ("fingerprint", "show the SHA256 fingerprint of key files"),
    "check": ("check", "find problems in key files that corosync would trip over"),
    "compare": ("compare", "tell whether key files hold the same corosync key"),
    "install": ("install", "install a key with the right owner and mode, atomically"),
    "doctor": ("doctor", "explain this node's key set-up and why nodes cannot join"),
    "push": ("push", "copy the key to every node over SSH, all or nothing"),
    "verify": ("verify", "check over SSH that every node holds the same sound key"),
    "nodes": ("nodes", "list the nodes that hold a key (pacemaker: cluster, remote, guest)"),
    "rotate": ("rotate", "replace the key of a running cluster without downtime"),
}

EXIT_CODES_HELP = f"""\
exit status: {EXIT_OK} success; {EXIT_FINDINGS} findings (check/doctor: warnings only;
compare/verify: keys differ; push: nodes skipped); {EXIT_ERROR} the request could not
be carried out, or check/doctor found errors; {EXIT_INTERNAL} a bug in corokey;
{EXIT_INTERRUPTED} interrupted.
Errors print "corokey: error[REFERENCE]: ..." and "hint: ..."; docs/errors.md lists
every REFERENCE."""


def _version() -> str:
    from corokey import __version__

    return __version__


def top_help() -> str:
    lines = [
        f"usage: {PROGRAM} [--version] [--help] COMMAND [ARGS...]",
        "",
        "Make and manage the shared authentication key of Corosync clusters.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<12} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", f"Run '{PROGRAM} COMMAND --help' for the options of a command.", EXIT_CODES_HELP]
    return "\n".join(lines) + "\n"


def main(argv: "Optional[List[str]]" = None) -> int:
    forbid_core_dumps()  # before any command can read, generate or receive a key
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(top_help())
        return EXIT_OK if args else EXIT_ERROR
    if args[0] == "--version":
        sys.stdout.write(f"{PROGRAM} {_version()}\n")
        return EXIT_OK
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        what = "option" if command.startswith("-") else "command"
        return fail("usage", f"unknown {what} '{command}'", f"run '{PROGRAM} --help' for the list")
    return run_guarded(lambda: _run(command, rest))


def _run(command: str, rest: "List[str]") -> int:
    from corokey.cli.args import ArgumentParser, HelpRequested

    module_name, summary = COMMANDS[command]
    try:
        # __import__ rather than importlib.import_module: importlib costs start-up time.
        __import__(f"corokey.cli.{module_name}")
        module = sys.modules[f"corokey.cli.{module_name}"]
    except ModuleNotFoundError as exc:
        if exc.name != f"corokey.cli.{module_name}":
            raise
        return fail(
            "not-available",
            f"'{command}' is not available in this version yet",
            f"run '{PROGRAM} --help' for the commands this version has",
        )
    parser = ArgumentParser(prog=f"{PROGRAM} {command}", description=summary)
    module.configure(parser)
    try:
        namespace = parser.parse_args(rest)
    except HelpRequested as help_text:
        sys.stdout.write(str(help_text))
        return EXIT_OK
    return int(module.execute(namespace))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
