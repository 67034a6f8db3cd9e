"""GNU ``getopt_long`` as glibc implements it, for the corosync-keygen drop-in.

The stdlib's ``getopt.gnu_getopt`` parses all options before returning, so a
tool that acts on each option in turn (as corosync-keygen does: ``-s 1 -x``
fails on the size, ``-x -s 1`` on the option) cannot be built on it; and its
messages are not glibc's.  This module yields options one at a time, in the
order glibc hands them to the program, and raises with glibc's wording.

Rules implemented: bundled short flags (``-lk F``), attached values (``-kF``,
``--key-file=F``), unambiguous long prefixes (``--key=F``), an exact long name
beats longer ones, options after operands (permutation, unless
``POSIXLY_CORRECT`` is set), ``--`` ends options, ``-`` is an operand, a
required value may be the next argument even if it starts with ``-``.
"""

import os

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple


class GetoptError(Exception):
    """An option glibc's getopt would reject; ``str()`` is glibc's message without the prefix."""


class LongOption:
    """One entry of getopt_long's ``struct option`` table."""

    __slots__ = ("has_arg", "name", "short")

    def __init__(self, name: str, has_arg: bool, short: str) -> None:
        self.name = name
        self.has_arg = has_arg
        self.short = short


def parse_short_spec(spec: str) -> "Dict[str, bool]":
    """``"k:r:s:lh"`` -> ``{"k": True, "r": True, "s": True, "l": False, "h": False}``."""
    result: Dict[str, bool] = {}
    for index, char in enumerate(spec):
        if char == ":":
            continue
        result[char] = index + 1 < len(spec) and spec[index + 1] == ":"
    return result


def getopt_long(
    argv: "Sequence[str]",
    shortopts: str,
    longopts: "Sequence[LongOption]",
    environ: "Optional[Mapping[str, str]]" = None,
) -> "Iterator[Tuple[str, Optional[str]]]":
    """Yield ``(short_letter, value)`` for each option of ``argv[1:]`` in glibc order.

    Operands are skipped: getopt permutes them to the end and corosync-keygen
    never looks at them.  Raises :class:`GetoptError` at the first bad option.
    """
    env = os.environ if environ is None else environ
    posixly_correct = "POSIXLY_CORRECT" in env or shortopts.startswith("+")
    shorts = parse_short_spec(shortopts.lstrip("+"))
    index = 1
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            return
        if not arg.startswith("-") or arg == "-":
            if posixly_correct:
                return
            continue
        if arg.startswith("--"):
            letter, value, index = _long(arg, argv, index, longopts)
            yield letter, value
            continue
        position = 1
        while position < len(arg):
            letter = arg[position]
            position += 1
            if letter not in shorts or letter == ":":
                raise GetoptError(f"invalid option -- '{letter}'")
            if not shorts[letter]:
                yield letter, None
                continue
            if position < len(arg):
                yield letter, arg[position:]
            elif index < len(argv):
                yield letter, argv[index]
                index += 1
            else:
                raise GetoptError(f"option requires an argument -- '{letter}'")
            break


def _long(
    arg: str, argv: "Sequence[str]", index: int, longopts: "Sequence[LongOption]"
) -> "Tuple[str, Optional[str], int]":
    body = arg[2:]
    name, has_value, value = body.partition("=")
    option = _match_long(name, arg, longopts)
    if option.has_arg:
        if has_value:
            return option.short, value, index
        if index < len(argv):
            return option.short, argv[index], index + 1
        raise GetoptError(f"option '--{option.name}' requires an argument")
    if has_value:
        raise GetoptError(f"option '--{option.name}' doesn't allow an argument")
    return option.short, None, index


def _match_long(name: str, arg: str, longopts: "Sequence[LongOption]") -> "LongOption":
    exact = [option for option in longopts if option.name == name]
    if exact:
        return exact[0]
    candidates: List[LongOption] = [option for option in longopts if option.name.startswith(name)]
    distinct = {(option.has_arg, option.short) for option in candidates}
    if len(distinct) == 1:
        return candidates[0]
    if not candidates:
        raise GetoptError(f"unrecognized option '{arg}'")
    names = " ".join(f"'--{option.name}'" for option in candidates)
    raise GetoptError(f"option '{arg}' is ambiguous; possibilities: {names}")


def strtoll_base10(text: str) -> "Optional[int]":
    """Parse like C ``strtoll(text, &end, 10)`` requiring ``*end == '\\0'``.

    Leading white space (as C ``isspace``) and one sign are allowed; anything
    else, an empty number, or a value outside ``long long`` gives ``None``.
    """
    stripped = text.lstrip(" \t\n\v\f\r")
    digits = stripped[1:] if stripped[:1] in ("+", "-") else stripped
    if not digits or not all("0" <= char <= "9" for char in digits):
        return None
    value = int(stripped, 10)
    if not -(2**63) <= value <= 2**63 - 1:
        return None  # strtoll sets ERANGE
    return value
