"""``corosync-keygen``: a drop-in for corosync's own tool (2.x and 3.x interfaces).

Same options, stdout lines and exit codes as corosync 3.1's tool; on a node
whose corosync is 2.x (corokey.key), those of 2.3.5's tool: a 128-byte
key, options -k and -l only.  The differences (never blocks, atomic write,
refuses links) are in docs/corosync-keygen.md.  This module is on the start-up path of
every run: it imports only what generating a key needs.
"""

import os
import sys

from corokey.cli.gnuopt import GetoptError, LongOption, getopt_long, strtoll_base10
from corokey.exitcodes import (
    KEYGEN_BROKEN_PIPE,
    KEYGEN_BY_STAGE,
    KEYGEN_INTERRUPTED,
    KEYGEN_OK,
    KEYGEN_USAGE,
)
from corokey.key import (
    COROSYNC2_KEY_LEN,
    DEFAULT_KEY_PATH,
    KEY_LEN_DEFAULT,
    KEY_LEN_MAX,
    KEY_LEN_MIN,
    check_key_size,
    generate_key,
    local_generation,
    read_random_source,
)
from corokey.secretfile import forbid_core_dumps, write_secret

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import List, NoReturn, Optional, Sequence, TextIO, Type

    from corokey.errors import CorokeyError, SecretFileError
    from corokey.key import Generation

# corosync 3.1 tools/corosync-keygen.c: getopt_long(argc, argv, "k:r:s:lh", ...).
# We also accept -m, which the 3.x usage line advertises but the C tool rejects.
SHORT_OPTIONS = "k:r:m:s:lh"
LONG_OPTIONS = (
    LongOption("key-file", True, "k"),
    LongOption("less-secure", False, "l"),
    LongOption("random-file", True, "r"),
    LongOption("size", True, "s"),
    LongOption("help", False, "h"),
)
# What the C tool prints for its default source; we read the same kernel pool
# through getrandom(2), which cannot block after early boot.
DEFAULT_RANDOM_LABEL = "/dev/urandom"
BLOCKING_RANDOM = "/dev/random"

USAGE = f"""\
Usage: corosync-keygen [-k <keyfile>] [-s <size>] [-r <randomfile>] [-l] [-h]
Create the shared authentication key of a Corosync cluster.

  -k, --key-file=FILE     write the key to FILE (default {DEFAULT_KEY_PATH})
  -s, --size=BYTES        key length: {KEY_LEN_MIN} to {KEY_LEN_MAX} (default {KEY_LEN_DEFAULT})
  -r, -m, --random-file=FILE
                          read the key from FILE instead of the kernel's CSPRNG
  -l, --less-secure       accepted for compatibility; has no effect
  -h, --help              show this help and exit

The key is written atomically, mode 0400 (owner root:root when run as root).
Copy it to every node of the cluster, e.g. with: corokey push
"""


# corosync 2.3.5 and 2.4.6 tools/corosync-keygen.c: getopt_long(argc, argv, "k:lh", ...);
# the key is always sizeof(key) = 128 bytes (COROSYNC2_KEY_LEN).  Exit statuses as in 3.1:
# 1 bad option or random source, then 2 create, 3 fchmod, 4 write, 5 close.
SHORT_OPTIONS_2X = "k:lh"
LONG_OPTIONS_2X = (
    LongOption("key-file", True, "k"),
    LongOption("less-secure", False, "l"),
    LongOption("help", False, "h"),
)
# 2.3.5's usage text, printed with printf("%s\n") (hence the blank line after it);
# 2.4 added "[-h]" and the line about it.
_USAGE_2X = """\
Usage: corosync-keygen [-k <keyfile>] [-l]{h}
     -k / --key-file=<filename> -  Write to the specified keyfile
            instead of the default {path}.
     -l / --less-secure -  Use a less secure random number source
            (/dev/urandom) that is guaranteed not to require user
            input for entropy.  This can be used when this
            application is used from a script.
{help}
"""
NO_WAIT_NOTE_2X = (
    "not waiting for keyboard entropy: the key comes from the kernel's CSPRNG "
    "(getrandom(2)), which never needs input; -l is implied"
)


def usage_2x(generation: "Generation") -> str:
    newer = generation.at_least(2, 4)
    return _USAGE_2X.format(
        h=" [-h]" if newer else "",
        path=DEFAULT_KEY_PATH,
        help="     -h / --help -  Print basic usage.\n" if newer else "",
    )


class Request:
    """What the command line asked for."""

    def __init__(self) -> None:
        self.key_file: str = DEFAULT_KEY_PATH
        self.random_file: Optional[str] = None
        self.size: int = KEY_LEN_DEFAULT
        self.help: bool = False
        self.less_secure: bool = False
        self.corosync2: bool = False


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def parse(argv: "Sequence[str]", program: str, stdout: "TextIO", stderr: "TextIO") -> "Request":
    """Apply options in order, as the C tool does; raise _Exit where it exits."""
    request = Request()
    try:
        for letter, value in getopt_long(argv, SHORT_OPTIONS, LONG_OPTIONS):
            if letter == "k":
                request.key_file = str(value)
            elif letter in ("r", "m"):
                request.random_file = str(value)
            elif letter == "s":
                request.size = _size(strtoll_base10(str(value)), program, stderr)
            elif letter == "h":
                stdout.write(USAGE)
                raise _Exit(KEYGEN_OK)
            # "l": kept for compatibility, no effect.
    except GetoptError as exc:
        stderr.write(f"{program}: {exc}\n")
        stdout.write("Error parsing command line options.\n")
        raise _Exit(KEYGEN_USAGE) from None
    return request


def _size(size: "Optional[int]", program: str, stderr: "TextIO") -> int:
    """-s as the C tool reads it, checked by corokey's one size rule (key.check_key_size)."""
    try:
        if size is not None:
            return check_key_size(size)
    except _library_error():
        pass
    _fail(
        stderr,
        program,
        KEYGEN_USAGE,
        f"Unsupported key size (supported <{KEY_LEN_MIN},{KEY_LEN_MAX}>)",  # the C tool's words
        f"give -s a whole number of bytes from {KEY_LEN_MIN} to {KEY_LEN_MAX}",
    )


def parse_2x(
    argv: "Sequence[str]",
    program: str,
    generation: "Generation",
    stdout: "TextIO",
    stderr: "TextIO",
) -> "Request":
    """The 2.x command line: -k, -l and -h only, a fixed 128-byte key."""
    request = Request()
    request.size = COROSYNC2_KEY_LEN
    request.corosync2 = True
    try:
        for letter, value in getopt_long(argv, SHORT_OPTIONS_2X, LONG_OPTIONS_2X):
            if letter == "k":
                request.key_file = str(value)
            elif letter == "l":
                request.less_secure = True
            elif letter == "h":
                stdout.write(usage_2x(generation))
                raise _Exit(KEYGEN_OK)
    except GetoptError as exc:
        stderr.write(f"{program}: {exc}\n")
        stdout.write("Error parsing command line options.\n")
        raise _Exit(KEYGEN_USAGE) from None
    return request


def _fail(
    stderr: "TextIO", program: str, code: int, message: str, hint: "Optional[str]" = None
) -> "NoReturn":
    # err(3) prefixes program_invocation_short_name; getopt uses argv[0] as given.
    name = os.path.basename(program) or "corosync-keygen"
    stderr.write(f"{name}: {message}\n")
    if hint:
        stderr.write(f"{name}: hint: {hint}\n")
    raise _Exit(code)


def generate(request: "Request", program: str, stdout: "TextIO", stderr: "TextIO") -> None:
    stdout.write("Corosync Cluster Engine Authentication key generator.\n")
    source = request.random_file or DEFAULT_RANDOM_LABEL
    stdout.write(f"Gathering {request.size * 8} bits for key from {source}.\n")
    if request.corosync2 and not request.less_secure:
        # 2.x's tool would read /dev/random and ask for keystrokes here.
        stdout.flush()
        _note(stderr, program, NO_WAIT_NOTE_2X)
    try:
        if request.random_file is None:
            key = generate_key(request.size)
        else:
            key = read_random_source(
                request.random_file, request.size, on_opened=lambda: _prompt(request, stdout)
            )
    except _library_error() as exc:
        _fail(stderr, program, KEYGEN_USAGE, exc.message, exc.hint)

    def announce() -> None:
        stdout.write(f"Writing corosync key to {request.key_file}.\n")

    owner = (0, 0) if os.geteuid() == 0 else None
    try:
        write_secret(request.key_file, key, mode=0o400, owner=owner, on_created=announce)
    except _secret_file_error() as exc:
        code = KEYGEN_BY_STAGE.get(exc.stage, KEYGEN_BY_STAGE["create"])
        _fail(stderr, program, code, exc.message, exc.hint)


# An except clause evaluates its class only when an exception reaches it, so
# these load corokey.errors on failure alone: the success path of
# corosync-keygen imports no more than it needs (start-up time, bench/).
def _library_error() -> "Type[CorokeyError]":
    from corokey.errors import CorokeyError

    return CorokeyError


def _secret_file_error() -> "Type[SecretFileError]":
    from corokey.errors import SecretFileError

    return SecretFileError


def _note(stderr: "TextIO", program: str, message: str) -> None:
    name = os.path.basename(program) or "corosync-keygen"
    stderr.write(f"{name}: {message}\n")


def _prompt(request: "Request", stdout: "TextIO") -> None:
    # The C tool says this once the source is open, only for /dev/random; since
    # Linux 5.6 /dev/random no longer blocks once the kernel pool is ready.
    if request.random_file == BLOCKING_RANDOM:
        stdout.write("Press keys on your keyboard to generate entropy.\n")
        stdout.flush()


def run(argv: "List[str]", stdout: "TextIO", stderr: "TextIO") -> int:
    program = argv[0] if argv and argv[0] else "corosync-keygen"
    try:
        try:
            generation = local_generation()
        except _library_error() as exc:
            _fail(stderr, program, KEYGEN_USAGE, exc.message, exc.hint)
        if generation.corosync2:
            request = parse_2x(argv, program, generation, stdout, stderr)
        else:
            request = parse(argv, program, stdout, stderr)
        generate(request, program, stdout, stderr)
    except _Exit as done:
        return done.code
    return KEYGEN_OK


def main(argv: "Optional[List[str]]" = None) -> int:
    forbid_core_dumps()
    if argv is None:
        argv = sys.argv
    try:
        code = run(list(argv), sys.stdout, sys.stderr)
        sys.stdout.flush()
    except KeyboardInterrupt:
        return KEYGEN_INTERRUPTED
    except BrokenPipeError:
        return KEYGEN_BROKEN_PIPE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
