"""corosync.conf into cmap keys, as each corosync generation's exec/coroparse.c does it.

Verified against corosync 2.3.5, 2.4.6 and 3.1.7 (docs/corosync-conf.md; the proof is
tests/cluster/test_conf_differential.py, which loads the same files into the real daemons
and reads them back with ``corosync-cmapctl``).  What both generations do:

- a file is read with ``fgets`` into 512 bytes, so a line is at most 511 bytes with its
  newline; a trailing ``\\r`` and then blanks and tabs are dropped; a line whose first
  non-blank byte is ``#`` (or that is blank) is skipped, and a ``#`` later on a line is text;
- the first ``{`` makes a line a section start, else the first ``:`` a ``key: value``,
  else a ``}`` a section end; the name is everything before, with blanks, ``:`` and ``{``
  trimmed off its end; the value is everything after, quotes included;
- names are joined with dots onto the section path (``totem.keyfile:`` at top level *is*
  totem's keyfile), and a repeated key or section simply sets the same cmap key again;
- values are checked and typed only where coroparse's section state says so: inside
  ``totem {}``, ``nodelist { node {} }``, ``quorum {}``...; a dotted key elsewhere is
  stored as an unchecked string;
- a ``node {}`` writes ``nodelist.node.N.KEY`` where N counts the nodes of the current
  ``nodelist {}``: a second ``nodelist {}`` starts again at 0 and overwrites.

3.x refuses an over-long line, a line that is no section, key or brace, and stray text
around a brace, naming ``FILE:LINE``.  2.x skips such lines, parses the rest of an
over-long line as a new line, keeps stray text in names, drops keys whose names icmap
refuses, and names no line in its errors.  2.x before 2.4 kept one section state for the
whole file, changed on every section end; later versions keep it per nesting level.
"""

from typing import Dict, List, NamedTuple, Optional, Tuple, Union

from corokey.coroparse_rules import (
    CHOICES_2,
    CHOICES_3,
    END_23,
    INTEGER,
    INTERFACE_2,
    INTERFACE_3,
    STATES_3,
    STATES_23,
    STATES_24,
    TOTEM_U32,
    TOTEM_U32_3,
    TYPED,
)
from corokey.errors import CorokeyError

#: fgets(line, 512, fp) in coroparse.c's parse_section: 511 bytes with the newline.
LINE_BUFFER = 512
#: include/corosync/icmap.h
KEYNAME_MAXLEN = 255
KEYNAME_MINLEN = 3
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:")
_INT_RANGES = {
    "u8": (0, 0xFF),
    "u16": (0, 0xFFFF),
    "u32": (0, 0xFFFFFFFF),
    "i32": (-(2**31), 2**31 - 1),
}


class CmapValue(NamedTuple):
    """One cmap entry: its type as ``corosync-cmapctl`` prints it (str, u8, u16, u32,
    i32, u64) and its value."""

    type: str
    value: "Union[str, int]"


class ConfParseError(CorokeyError):
    """corosync would refuse this corosync.conf; ``line`` is the line 3.x names (None on
    2.x, which names none)."""

    reference = "conf-parse"

    def __init__(self, path: str, line: "Optional[int]", problem: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        hint = (
            f"fix line {line} of {path}; corosync refuses the same file"
            if line is not None
            else f"fix {path}; corosync 2.x refuses the same file (it names no line)"
        )
        super().__init__(f"{where}: {problem}", hint=hint)
        self.path = path
        self.line = line
        self.problem = problem


class Dialect(NamedTuple):
    """The coroparse of one generation."""

    major: int
    #: 2.x before 2.4: one section state for the file (data->state), not one per level
    global_state: bool = False


COROSYNC3 = Dialect(3)
COROSYNC24 = Dialect(2)
COROSYNC23 = Dialect(2, global_state=True)


def dialect_for(version: "Optional[str]") -> "Dialect":
    """The dialect of a corosync version string ("3.1.7", "2.3.5", "2", None: 3.x)."""
    if not version or not version[:1].isdigit() or int(version.split(".")[0]) >= 3:
        return COROSYNC3
    parts = version.split(".")
    if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < 4:
        return COROSYNC23
    return COROSYNC24


# ------------------------------------------------------------------------------ lines


def _lines(data: bytes, dialect: "Dialect") -> "List[Tuple[int, Optional[bytes]]]":
    """The lines coroparse sees, with 3.x's line number, as C strings (cut at a NUL);
    None for the line 3.x refuses as too long (and nothing after it)."""
    result: List[Tuple[int, Optional[bytes]]] = []
    position, number, most = 0, 0, LINE_BUFFER - 1
    while position < len(data):
        end = data.find(b"\n", position, position + most)
        chunk = data[position : end + 1] if end >= 0 else data[position : position + most]
        position += len(chunk)
        number += 1
        text = chunk.split(b"\0", 1)[0]
        # fgets set EOF only when it ran out of file before filling the buffer
        at_eof = position >= len(data) and len(chunk) < most and end < 0
        if dialect.major >= 3 and text and not text.endswith(b"\n") and not at_eof:
            result.append((number, None))
            return result
        if text.endswith(b"\n"):
            text = text[:-1]
        if text.endswith(b"\r"):
            text = text[:-1]
        result.append((number, text.rstrip(b" \t")))
    return result


def _trim(text: bytes, names: bool, dialect: "Dialect") -> bytes:
    """coroparse's remove_whitespace: blanks off the start; blanks (and for ``names``
    ``:`` and ``{``) off the end, never the first byte; 2.x cuts nothing when only the
    first byte would remain (``a:`` stays ``a:``)."""
    start = text.lstrip(b" \t")
    strip = b" \t:{" if names else b" \t"
    end = len(start) - 1
    while end > 0 and start[end] in strip:
        end -= 1
    if dialect.major < 3 and end == 0:
        return start
    return start[: end + 1]


def _after(text: bytes, index: int) -> int:
    """Index past the byte at ``index`` and the blanks after it (coroparse's strchr_rs)."""
    index += 1
    while index < len(text) and text[index : index + 1] in (b" ", b"\t"):
        index += 1
    return index


# ------------------------------------------------------------------------------ parser


class _Parser:
    """parse_section: lines into section starts, items and section ends."""

    def __init__(self, data: bytes, path: str, dialect: "Dialect") -> None:
        self.dialect = dialect
        self.path = path
        self.lines = _lines(data, dialect)
        self.next = 0
        self.store = _Store(self)

    def fail(self, number: int, problem: str) -> "ConfParseError":
        return ConfParseError(self.path, number if self.dialect.major >= 3 else None, problem)

    def section(self, prefix: str, depth: int, state: str) -> None:
        store, dialect, v3 = self.store, self.dialect, self.dialect.major >= 3
        if prefix == "":
            store.start()
        number = self.lines[-1][0] if self.lines else 0
        while self.next < len(self.lines):
            number, text = self.lines[self.next]
            self.next += 1
            if text is None:  # read up to here, as 3.x does, before refusing it
                raise self.fail(number, "Line too long")
            line = text
            if dialect.global_state:
                state = store.global_state
            content = line.lstrip(b" \t")
            if not content or content.startswith(b"#"):
                continue
            brace = line.find(b"{")
            if brace >= 0:
                loc = _after(line, brace)
                if v3:
                    name = _trim(line[: loc - 1], True, dialect)
                    if not name:
                        raise self.fail(number, "Missing section name before opening bracket '{'")
                    if _trim(line[loc:], False, dialect):
                        raise self.fail(number, "Extra characters after opening bracket '{'")
                else:  # 2.x trims the whole line, then cuts it where 3.x does
                    lead = len(line) - len(content)
                    name = _trim(line, True, dialect)[: loc - 1 - lead]
                full = self.join(
                    prefix, name, number, "Start of section makes total cmap path too long"
                )
                inner = store.section_start(full, state)
                self.section(full, depth + 1, inner)
                continue
            colon = line.find(b":")
            if colon >= 0:
                loc = _after(line, colon)
                key = _trim(line[: loc - 1], True, dialect)
                value = _trim(line[loc:], False, dialect)
                full = self.join(prefix, key, number, "New key makes total cmap path too long")
                store.item(full, key.decode("latin-1"), value.decode("latin-1"), state, number)
                continue
            if b"}" in line:
                if v3 and _trim(line, False, dialect) != b"}":
                    raise self.fail(number, "Extra characters before or after closing bracket '}'")
                if depth == 0:
                    raise self.fail(number, "Unexpected closing brace")
                store.section_end(state, number)
                return
            if v3:
                raise self.fail(number, "Line is not opening or closing section or key value")
        if prefix != "":
            raise self.fail(number, "Missing closing brace")

    def join(self, prefix: str, name: bytes, number: int, problem: str) -> str:
        if len(prefix) + len(name) + 1 >= KEYNAME_MAXLEN:
            raise self.fail(number, problem)
        text = name.decode("latin-1")
        return f"{prefix}.{text}" if prefix else text


def _valid_name(name: str) -> bool:
    """icmap_check_key_name (exec/icmap.c, the same in all three versions)."""
    return KEYNAME_MINLEN <= len(name) <= KEYNAME_MAXLEN and all(
        ord(c) in _NAME_CHARS for c in name
    )


class _Store:
    """main_config_parser_cb: what an item does in each section state."""

    def __init__(self, parser: "_Parser") -> None:
        self.parser = parser
        self.v3 = parser.dialect.major >= 3
        self.states = (
            STATES_3 if self.v3 else STATES_23 if parser.dialect.global_state else STATES_24
        )
        self.cmap: Dict[str, CmapValue] = {}
        self.start()

    def start(self) -> None:
        """PARSER_CB_START: every bit of state zeroed (the cmap is kept)."""
        self.global_state = "normal"
        self.node_number = 0
        self.ring0 = False
        self.linknumber = 0
        self.interface: Dict[str, CmapValue] = {}
        self.members: List[str] = []
        self.subsys: Optional[str] = None
        self.daemon: Optional[str] = None
        self.logging_items: List[Tuple[str, str]] = []

    def set(self, name: str, value: "CmapValue", number: int) -> None:
        if not _valid_name(name):
            if self.v3:
                raise self.parser.fail(number, f'Can\'t store key "{name}" into icmap')
            return  # 2.x does not look at icmap's answer
        self.cmap[name] = value

    def integer(self, key: str, value: str, kind: str, number: int) -> int:
        """safe_atoq: strtoll, all of the value, in the type's range."""
        low, high = _INT_RANGES[kind]
        match = INTEGER.match(value)
        if match is None or not low <= int(match.group(1)) <= high:
            raise self.parser.fail(
                number,
                f'Value of key "{key}" is expected to be integer in range ({low}..{high}), '
                f'but "{value}" was given',
            )
        return int(match.group(1))

    def unsigned64(self, key: str, value: str, number: int) -> int:
        """str_to_ull: strtoull (a minus sign wraps around)."""
        match = INTEGER.match(value)
        if match is None or abs(int(match.group(1))) >= 2**64:
            raise self.parser.fail(number, f'Value of key "{key}" is not an unsigned integer')
        return int(match.group(1)) % 2**64

    def typed(self, name: str, key: str, value: str, kind: str, number: int) -> None:
        """Store ``name`` as ``kind``; a bad value is named as 3.x (the cmap name) or 2.x
        (the key as written) names it."""
        key = name if self.v3 else key
        if kind == "u64":
            self.set(name, CmapValue(kind, self.unsigned64(key, value, number)), number)
        else:
            self.set(name, CmapValue(kind, self.integer(key, value, kind, number)), number)

    def section_start(self, path: str, state: str) -> str:
        new = self.states.get(path, state)
        if path == "totem.interface":
            self.linknumber, self.interface, self.members = 0, {}, []
        elif path in ("logging.logger_subsys", "logging.logging_daemon"):
            self.subsys, self.daemon, self.logging_items = None, None, []
        elif path == "nodelist":
            self.node_number = 0
        elif path == "nodelist.node":
            self.ring0 = False
        self.global_state = new
        return new

    def item(self, path: str, key: str, value: str, state: str, number: int) -> None:
        if state == "totem":
            self.totem_item(path, key, value, number)
        elif state in TYPED:
            kind = TYPED[state].get(path)
            if kind is not None:
                self.typed(path, key, value, kind, number)
            else:
                self.set(path, CmapValue("str", value), number)
        elif state in ("system", "qb"):
            self.choice(path, value, number)
            self.set(path, CmapValue("str", value), number)
        elif state == "interface":
            self.interface_item(path, key, value, number)
        elif state == "member":
            if key != "memberaddr":
                raise self.parser.fail(number, "Only memberaddr is allowed in member section")
            self.members.append(value)
        elif state in ("logger_subsys", "logging_daemon"):
            if key == "subsys":
                self.subsys = value
            elif key == "name" and state == "logging_daemon":
                self.daemon = value
            else:
                self.logging_items.append((key, value))
        elif state == "uidgid":
            if key not in ("uid", "gid"):
                raise self.parser.fail(number, "uidgid: Only uid and gid are allowed items")
            # corosync resolves the name on its own node; corokey keeps the text
            prefix = "uidgid" if self.parser.dialect.global_state else "uidgid.config"
            self.set(f"{prefix}.{key}.{value}", CmapValue("u8", 1), number)
        elif state == "node":
            name = f"nodelist.node.{self.node_number}.{key}"
            if key in ("nodeid", "quorum_votes"):
                self.typed(name, key, value, "u32", number)
            else:
                self.set(name, CmapValue("str", value), number)
            self.ring0 = self.ring0 or key == "ring0_addr"
        elif state == "resources" and key == "watchdog_timeout":
            self.typed(path, key, value, "u32", number)
        elif key == "poll_period" and (
            state in ("res_system_mem", "res_process_mem")
            or (self.v3 and state in ("res_system", "res_process"))
        ):
            self.typed(path, key, value, "u64", number)
        else:
            self.set(path, CmapValue("str", value), number)

    def choice(self, path: str, value: str, number: int) -> None:
        allowed, problem = (CHOICES_3 if self.v3 else CHOICES_2).get(path, ((), ""))
        if problem and value not in allowed:
            raise self.parser.fail(number, problem)

    def totem_item(self, path: str, key: str, value: str, number: int) -> None:
        name = path[len("totem.") :]
        if name in TOTEM_U32 or (self.v3 and name in TOTEM_U32_3):
            self.typed(path, key, value, "u32", number)
        elif self.v3 and name == "knet_compression_level":
            self.typed(path, key, value, "i32", number)
        elif name == "config_version":
            self.typed(path, key, value, "u64", number)
        else:
            self.choice(path, value, number)
            self.set(path, CmapValue("str", value), number)

    def interface_item(self, path: str, key: str, value: str, number: int) -> None:
        kinds = INTERFACE_3 if self.v3 else INTERFACE_2
        kind = kinds.get(path[len("totem.interface.") :]) if path.count(".") == 2 else None
        if kind == "link":
            self.linknumber = self.integer(path if self.v3 else key, value, "u8", number)
        elif kind == "str":
            self.interface[key] = CmapValue("str", value)
        elif kind is not None:
            named = path if self.v3 else key
            self.interface[key] = CmapValue(kind, self.integer(named, value, kind, number))
        else:
            self.set(path, CmapValue("str", value), number)

    def section_end(self, state: str, number: int) -> None:
        if state == "interface":
            self.flush_interface(number)
        elif state == "logger_subsys":
            self.flush_logger_subsys(number)
        elif state == "logging_daemon":
            self.flush_logging_daemon(number)
        elif state == "node":
            if not self.v3 and not self.ring0:
                raise self.parser.fail(number, "No ring0_addr specified for node")
            self.node_number += 1
        if self.parser.dialect.global_state:
            self.global_state = END_23.get(state, state)

    def flush_interface(self, number: int) -> None:
        base = f"totem.interface.{self.linknumber}"
        for key, value in self.interface.items():
            self.set(f"{base}.{key}", value, number)
        # qb_list_add puts each member first: they are numbered from the last one
        for index, member in enumerate(reversed(self.members)):
            self.set(f"{base}.member.{index}", CmapValue("str", member), number)
        self.members = []

    def flush_logger_subsys(self, number: int) -> None:
        if self.subsys is None:
            raise self.parser.fail(number, "No subsys key in logger_subsys directive")
        base = f"logging.logger_subsys.{self.subsys}"
        for key, value in reversed(self.logging_items):  # so the first of a repeat wins
            self.set(f"{base}.{key}", CmapValue("str", value), number)
        self.set(f"{base}.subsys", CmapValue("str", self.subsys), number)

    def flush_logging_daemon(self, number: int) -> None:
        if self.daemon is None:
            raise self.parser.fail(number, "No name key in logging_daemon directive")
        if self.daemon == "corosync":
            base = f"logging.logger_subsys.{self.subsys}" if self.subsys else "logging"
        else:
            base = f"logging.logging_daemon.{self.daemon}" + (
                f".{self.subsys}" if self.subsys else ""
            )
        for key, value in reversed(self.logging_items):
            self.set(f"{base}.{key}", CmapValue("str", value), number)
        if self.subsys:
            self.set(f"{base}.subsys", CmapValue("str", self.subsys), number)
        if self.daemon != "corosync":
            self.set(f"{base}.name", CmapValue("str", self.daemon), number)


def parse_cmap(
    data: "Union[bytes, str]", path: str, dialect: "Dialect" = COROSYNC3
) -> "Dict[str, CmapValue]":
    """What corosync of ``dialect`` puts in cmap from the file ``data`` (named ``path``
    in errors). Raises ConfParseError where that corosync refuses the file."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    parser = _Parser(raw, path, dialect)
    parser.section("", 0, "normal")
    return parser.store.cmap
