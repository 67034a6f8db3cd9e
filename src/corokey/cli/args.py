"""A small command-line parser with the part of argparse's interface corokey uses.

argparse imports ``re``, ``gettext`` and friends, which alone cost more than
the start-up budget of ``corokey fingerprint`` and ``check`` (docs/benchmarks.md).
This parser keeps argparse's ``add_argument`` spelling so subcommand modules
read the same, and GNU conventions: ``--opt=value``, ``--opt value``, ``-s300``,
bundled short flags, unambiguous long prefixes, options among operands, ``--``.
Errors raise :class:`corokey.errors.UsageError` (exit 2, one line, with a hint).
"""

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence

    from corokey.errors import UsageError


class Namespace:
    """Parsed values, as attributes (like argparse.Namespace)."""

    def __init__(self, **values: "Any") -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Namespace({self.__dict__!r})"

    def __getattr__(self, name: str) -> "Any":  # only reached for names never set
        raise AttributeError(name)


class HelpRequested(Exception):
    """``-h``/``--help`` was given; ``str()`` is the help text."""


class _Argument:
    def __init__(
        self,
        names: "Sequence[str]",
        action: "Optional[str]",
        type: "Optional[Callable[[str], Any]]",
        choices: "Optional[Sequence[str]]",
        default: "Any",
        help: "Optional[str]",
        nargs: "Optional[str]",
        metavar: "Optional[str]",
        dest: "Optional[str]",
    ) -> None:
        self.names = list(names)
        self.positional = not names[0].startswith("-")
        self.action = action
        self.type = type
        self.choices = choices
        self.help = help or ""
        self.nargs = nargs
        long_names = [n for n in names if n.startswith("--")]
        self.dest = dest or (names[0] if self.positional else (long_names or names)[0].lstrip("-"))
        self.dest = self.dest.replace("-", "_")
        self.metavar = metavar or self.dest.upper()
        if default is None and action == "store_true":
            default = False
        if default is None and (action == "append" or nargs in ("*", "+")):
            default = []
        self.default = default

    @property
    def takes_value(self) -> bool:
        return self.action not in ("store_true",)

    def convert(self, value: str, command: str) -> "Any":
        if self.choices is not None and value not in self.choices:
            from corokey.errors import UsageError

            raise UsageError(
                f"{command}: invalid value '{value}' for {self.names[0]}",
                hint="choose one of: " + ", ".join(self.choices),
            )
        if self.type is None:
            return value
        try:
            return self.type(value)
        except ValueError:
            from corokey.errors import UsageError

            raise UsageError(
                f"{command}: invalid value '{value}' for {self.names[0]}",
                hint=f"give {self.metavar} as a whole number" if self.type is int else None,
            ) from None


class ArgumentParser:
    """Collects arguments with :meth:`add_argument`; :meth:`parse_args` applies them."""

    def __init__(self, prog: str, description: str = "") -> None:
        self.prog = prog
        self.description = description
        self.epilog = ""
        self._arguments: List[_Argument] = []

    def add_argument(
        self,
        *names: str,
        action: "Optional[str]" = None,
        type: "Optional[Callable[[str], Any]]" = None,
        choices: "Optional[Sequence[str]]" = None,
        default: "Any" = None,
        help: "Optional[str]" = None,
        nargs: "Optional[str]" = None,
        metavar: "Optional[str]" = None,
        dest: "Optional[str]" = None,
    ) -> None:
        self._arguments.append(
            _Argument(names, action, type, choices, default, help, nargs, metavar, dest)
        )

    # ------------------------------------------------------------------ parsing

    def parse_args(self, argv: "Sequence[str]") -> "Namespace":
        values: Dict[str, Any] = {a.dest: a.default for a in self._arguments}
        for argument in self._arguments:
            if isinstance(values[argument.dest], list):
                values[argument.dest] = list(values[argument.dest])
        operands: List[str] = []
        index = 0
        while index < len(argv):
            arg = argv[index]
            index += 1
            if arg == "--":
                operands.extend(argv[index:])
                break
            if arg in ("-h", "--help"):
                raise HelpRequested(self.format_help())
            if arg.startswith("--"):
                index = self._long(arg, argv, index, values)
            elif arg.startswith("-") and arg != "-":
                index = self._short(arg, argv, index, values)
            else:
                operands.append(arg)
        self._assign_operands(operands, values)
        return Namespace(**values)

    def _store(
        self, argument: "_Argument", value: "Optional[str]", values: "Dict[str, Any]"
    ) -> None:
        if argument.action == "store_true":
            values[argument.dest] = True
        elif argument.action == "append":
            values[argument.dest].append(argument.convert(str(value), self.prog))
        else:
            values[argument.dest] = argument.convert(str(value), self.prog)

    def _long(self, arg: str, argv: "Sequence[str]", index: int, values: "Dict[str, Any]") -> int:
        name, has_value, value = arg.partition("=")
        argument = self._find_long(name)
        if not argument.takes_value:
            if has_value:
                raise self._usage(f"option {name} takes no value")
            self._store(argument, None, values)
            return index
        if not has_value:
            if index >= len(argv):
                raise self._usage(f"option {name} needs a value ({argument.metavar})")
            value = argv[index]
            index += 1
        self._store(argument, value, values)
        return index

    def _find_long(self, name: str) -> "_Argument":
        options = [a for a in self._arguments if not a.positional]
        for argument in options:
            if name in argument.names:
                return argument
        matches = {
            id(a): a for a in options for n in a.names if n.startswith("--") and n.startswith(name)
        }
        if len(matches) == 1:
            return next(iter(matches.values()))
        if matches:
            raise self._usage(f"option {name} is ambiguous")
        raise self._usage(f"unrecognized option '{name}'")

    def _short(self, arg: str, argv: "Sequence[str]", index: int, values: "Dict[str, Any]") -> int:
        position = 1
        while position < len(arg):
            flag = "-" + arg[position]
            position += 1
            argument = next((a for a in self._arguments if flag in a.names), None)
            if argument is None:
                raise self._usage(f"unrecognized option '{flag}'")
            if not argument.takes_value:
                self._store(argument, None, values)
                continue
            if position < len(arg):
                self._store(argument, arg[position:], values)
            elif index < len(argv):
                self._store(argument, argv[index], values)
                index += 1
            else:
                raise self._usage(f"option {flag} needs a value ({argument.metavar})")
            break
        return index

    def _assign_operands(self, operands: "List[str]", values: "Dict[str, Any]") -> None:
        positionals = [a for a in self._arguments if a.positional]
        remaining = list(operands)
        for position, argument in enumerate(positionals):
            later_required = sum(1 for a in positionals[position + 1 :] if a.nargs in (None, "+"))
            if argument.nargs in ("*", "+"):
                take = max(len(remaining) - later_required, 0)
                if argument.nargs == "+" and take == 0:
                    raise self._usage(f"missing {argument.metavar}")
                values[argument.dest] = [argument.convert(v, self.prog) for v in remaining[:take]]
                remaining = remaining[take:]
            elif remaining and (argument.nargs is None or len(remaining) > later_required):
                values[argument.dest] = argument.convert(remaining.pop(0), self.prog)
            elif argument.nargs is None:
                raise self._usage(f"missing {argument.metavar}")
        if remaining:
            raise self._usage(f"unexpected argument '{remaining[0]}'")

    def _usage(self, message: str) -> "UsageError":
        from corokey.errors import UsageError

        return UsageError(f"{self.prog}: {message}", hint=f"run '{self.prog} --help'")

    # ------------------------------------------------------------------ help

    def format_help(self) -> str:
        positionals = [a for a in self._arguments if a.positional]
        options = [a for a in self._arguments if not a.positional]
        usage = [self.prog, "[OPTIONS]"] if options else [self.prog]
        for argument in positionals:
            usage.append(
                {
                    None: argument.metavar,
                    "?": f"[{argument.metavar}]",
                    "*": f"[{argument.metavar}...]",
                    "+": f"{argument.metavar}...",
                }[argument.nargs]
            )
        lines = ["usage: " + " ".join(usage), ""]
        if self.description:
            lines += [_wrap(self.description, 0), ""]
        if positionals:
            lines.append("arguments:")
            lines += [_row(a.metavar, a.help) for a in positionals]
            lines.append("")
        lines.append("options:")
        lines.append(_row("-h, --help", "show this help and exit"))
        for argument in options:
            label = ", ".join(argument.names)
            if argument.takes_value:
                label += " " + (
                    "{" + ",".join(argument.choices) + "}" if argument.choices else argument.metavar
                )
            lines.append(_row(label, argument.help))
        if self.epilog:
            lines += ["", self.epilog]
        return "\n".join(lines) + "\n"


def _row(label: str, text: str) -> str:
    if len(label) > 24:
        return f"  {label}\n" + _wrap(text, 28)
    return f"  {label:<24}  " + _wrap(text, 28).lstrip()


def _wrap(text: str, indent: int, width: int = 79) -> str:
    lines: List[str] = []
    current = ""
    for word in text.split():
        if current and indent + len(current) + 1 + len(word) > width:
            lines.append(" " * indent + current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(" " * indent + current)
    return "\n".join(lines)
