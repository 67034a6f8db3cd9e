"""What every ``corokey`` subcommand shares: the one place errors become exit codes."""

import sys

from corokey.exitcodes import EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Callable, List, Optional, TextIO, Type

    from corokey.cli.args import ArgumentParser
    from corokey.errors import CorokeyError

PROGRAM = "corokey"


def format_failure(reference: str, message: str, hint: "Optional[str]" = None) -> str:
    """``corokey: error[REFERENCE]: message``, then ``hint: ...`` on a line of its own.

    The reference is stable and greppable (docs/errors.md lists every one); the
    message names what is wrong, the hint what to do about it.
    """
    text = f"{PROGRAM}: error[{reference}]: {printable(message)}\n"
    if hint:
        text += f"hint: {printable(hint)}\n"
    return text


def format_error(error: "CorokeyError") -> str:
    return format_failure(error.reference, error.message, error.hint)


def _corokey_error() -> "Type[CorokeyError]":
    # An except clause evaluates its class only when an exception arrives, so a
    # command that succeeds never loads corokey.errors (start-up time, bench/).
    from corokey.errors import CorokeyError

    return CorokeyError


def run_guarded(action: "Callable[[], int]", stderr: "TextIO" = sys.stderr) -> int:
    """Run a command body, turning every exception into a message and exit status.

    Unexpected exceptions are reported by type and place only: their messages
    could carry values from the failing frame, and key bytes must never leak.
    """
    try:
        return action()
    except _corokey_error() as error:
        stderr.write(format_error(error))
        return error.exit_code
    except KeyboardInterrupt:
        stderr.write(format_failure("interrupted", "interrupted (SIGINT)"))
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # the last line of defence; see docstring
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        stderr.write(
            format_failure(
                "internal",
                f"internal error ({type(exc).__name__} at {where})",
                "please report it with the command you ran",
            )
        )
        return EXIT_INTERNAL


def given_or(value: "Optional[str]", default: str, what: str) -> str:
    """``value`` when given, else ``default``; an empty string is an error, never the
    default (an unset shell variable must not silently mean the live key)."""
    if value is None:
        return default
    if value == "":
        from corokey.errors import UsageError

        raise UsageError(
            f"the {what} is empty", hint=f"name the {what}, or leave it out for {default}"
        )
    return value


def reject_stdin_twice(paths: "List[str]") -> None:
    if paths.count("-") > 1:
        from corokey.errors import UsageError

        raise UsageError(
            "standard input (-) is named more than once; it can be read only once",
            hint="name - once and give the other keys as files",
        )


def print_json(document: object, stdout: "TextIO" = sys.stdout) -> None:
    """One JSON document on stdout, stable key order, for automation."""
    import json

    stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def add_profile_option(parser: "ArgumentParser") -> None:
    from corokey.profiles import DEFAULT_PROFILE, PROFILES

    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help=f"which cluster secret (default {DEFAULT_PROFILE}): sets path, size, owner, mode",
    )


def add_json_option(parser: "ArgumentParser") -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def fail(reference: str, message: str, hint: str, stderr: "TextIO" = sys.stderr) -> int:
    """Report a failure found before any library call (no exception to raise)."""
    stderr.write(format_failure(reference, message, hint))
    return EXIT_ERROR


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``), never raw.

    Node names and paths come from files others may write (corosync.conf); an
    escape sequence in one must not reach the terminal.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def warn(message: str, stderr: "TextIO" = sys.stderr) -> None:
    stderr.write(f"{PROGRAM}: warning: {printable(message)}\n")
