"""A parser of corosync.conf that reads it the way corosync 3 does.

corosync's parser (exec/coroparse.c) is line based: a line whose first
non-blank character is ``#`` is a comment (a ``#`` later on a line is part of
the value); a line containing ``{`` opens a section named by what precedes it;
a line containing ``:`` is ``key: value`` (split at the first colon); a line
that is only ``}`` closes a section.  Anything else is an error, reported here
with file, line and column.
"""

from typing import List, Optional, Tuple

from corokey.errors import CorokeyError
from corokey.key import DEFAULT_KEY_PATH
from corokey.record import Record

DEFAULT_CONF_PATH = "/etc/corosync/corosync.conf"
#: corosync reads lines into a 512-byte buffer (coroparse.c) and refuses longer ones.
MAX_LINE = 511
MAX_RINGS = 8


class ConfParseError(CorokeyError):
    """corosync.conf is malformed; carries path, line and column."""

    reference = "conf-parse"

    def __init__(self, path: str, line: int, column: int, problem: str) -> None:
        super().__init__(
            f"{path}:{line}:{column}: {problem}",
            hint=f"fix line {line} of {path}; corosync will refuse the same file",
        )
        self.path = path
        self.line = line
        self.column = column
        self.problem = problem


class Section:
    """A section: its items in order (keys may repeat) and its subsections."""

    def __init__(self, name: str, line: int) -> None:
        self.name = name
        self.line = line
        self.items: List[Tuple[str, str, int]] = []
        self.sections: List[Section] = []

    def get(self, key: str) -> "Optional[str]":
        """The value corosync uses for ``key``: the last one given."""
        values = self.get_all(key)
        return values[-1] if values else None

    def get_all(self, key: str) -> "List[str]":
        return [value for name, value, _ in self.items if name == key]

    def section(self, name: str) -> "Optional[Section]":
        """The first subsection called ``name`` (corosync merges repeats of top sections)."""
        return next((s for s in self.sections if s.name == name), None)

    def sections_named(self, name: str) -> "List[Section]":
        return [s for s in self.sections if s.name == name]


class Node(Record):
    """One ``nodelist { node { ... } }`` entry."""

    __slots__ = ("addresses", "line", "name", "nodeid")
    name: "Optional[str]"
    nodeid: "Optional[int]"
    addresses: "Tuple[str, ...]"  # ring0_addr, ring1_addr, ... in ring order
    line: int

    def __init__(
        self,
        name: "Optional[str]",
        nodeid: "Optional[int]",
        addresses: "Tuple[str, ...]",
        line: int,
    ) -> None:
        self._set(name=name, nodeid=nodeid, addresses=addresses, line=line)

    @property
    def label(self) -> str:
        """What an admin calls the node: its name, else its first address."""
        return self.name or (self.addresses[0] if self.addresses else f"nodeid {self.nodeid}")


class CorosyncConf:
    """A parsed corosync.conf."""

    def __init__(self, path: str, root: "Section") -> None:
        self.path = path
        self.root = root

    def value(self, dotted: str) -> "Optional[str]":
        """``totem.crypto_cipher`` style lookup, over every section of each name."""
        *sections, key = dotted.split(".")
        candidates = [self.root]
        for name in sections:
            candidates = [sub for section in candidates for sub in section.sections_named(name)]
        values = [v for section in candidates for v in section.get_all(key)]
        return values[-1] if values else None

    def nodes(self) -> "List[Node]":
        result = []
        for nodelist in self.root.sections_named("nodelist"):
            for node in nodelist.sections_named("node"):
                nodeid_text = node.get("nodeid")
                addresses = tuple(
                    address
                    for address in (node.get(f"ring{i}_addr") for i in range(MAX_RINGS))
                    if address
                )
                result.append(
                    Node(
                        node.get("name"),
                        int(nodeid_text) if nodeid_text and nodeid_text.isdigit() else None,
                        addresses,
                        node.line,
                    )
                )
        return result

    def node_for_address(self, address: str) -> "Optional[Node]":
        for node in self.nodes():
            if address in node.addresses or address == node.name:
                return node
        return None

    def node_for_id(self, nodeid: int) -> "Optional[Node]":
        return next((n for n in self.nodes() if n.nodeid == nodeid), None)

    def crypto(self) -> "Tuple[str, str]":
        """(cipher, hash) as corosync 3 decides them (exec/totemconfig.c)."""
        cipher = hash_ = "none"
        if self.value("totem.secauth") == "on":
            cipher, hash_ = "aes256", "sha256"
        cipher = self.value("totem.crypto_cipher") or cipher
        hash_ = self.value("totem.crypto_hash") or hash_
        return cipher, hash_

    def crypto_enabled(self) -> bool:
        """Whether corosync authenticates packets, and so needs a key at all."""
        return self.crypto()[1] != "none"

    def key_source(self) -> "Tuple[str, Optional[str]]":
        """Where corosync takes the key: ("file", path) or ("inline", None)."""
        keyfile = self.value("totem.keyfile")
        if keyfile:
            return "file", keyfile
        if self.value("totem.key") is not None:
            return "inline", None
        return "file", DEFAULT_KEY_PATH

    def logfile(self) -> "Optional[str]":
        if self.value("logging.to_logfile") in ("no", "off"):
            return None
        return self.value("logging.logfile")

    def version(self) -> "Optional[str]":
        return self.value("totem.version")


def parse_conf(text: str, path: str = DEFAULT_CONF_PATH) -> "CorosyncConf":
    """Parse corosync.conf text; raise :class:`ConfParseError` where corosync would."""
    root = Section("", 0)
    stack: List[Section] = [root]
    for number, raw in enumerate(text.split("\n"), start=1):
        if number == len(text.split("\n")) and raw == "":
            break
        line = raw[:-1] if raw.endswith("\r") else raw
        if len(line) > MAX_LINE:
            raise ConfParseError(path, number, MAX_LINE + 1, "line too long (corosync reads 511)")
        stripped = line.rstrip(" \t")
        content = stripped.lstrip(" \t")
        if not content or content.startswith("#"):
            continue
        indent = len(stripped) - len(content) + 1
        if "{" in stripped:
            brace = stripped.index("{")
            name = stripped[:brace].strip(" \t")
            after = stripped[brace + 1 :].strip(" \t")
            if not name:
                raise ConfParseError(path, number, brace + 1, "missing section name before '{'")
            if after:
                column = stripped.index(after, brace + 1) + 1
                raise ConfParseError(path, number, column, "extra characters after '{'")
            section = Section(name, number)
            stack[-1].sections.append(section)
            stack.append(section)
        elif ":" in stripped:
            colon = stripped.index(":")
            key = stripped[:colon].strip(" \t")
            if not key:
                raise ConfParseError(path, number, colon + 1, "missing key name before ':'")
            stack[-1].items.append((key, stripped[colon + 1 :].strip(" \t"), number))
        elif "}" in stripped:
            if content != "}":
                column = indent if not content.startswith("}") else indent + 1
                raise ConfParseError(path, number, column, "extra characters around '}'")
            if len(stack) == 1:
                raise ConfParseError(path, number, indent, "unexpected closing brace")
            stack.pop()
        else:
            raise ConfParseError(
                path, number, indent, "not a section, a closing brace or 'key: value'"
            )
    if len(stack) > 1:
        open_section = stack[-1]
        raise ConfParseError(
            path,
            open_section.line,
            1,
            f"section '{open_section.name}' opened here is never closed (missing '}}')",
        )
    return CorosyncConf(path, root)


def load_conf(path: str = DEFAULT_CONF_PATH) -> "CorosyncConf":
    """Read and parse a corosync.conf file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        raise CorokeyError(
            f"cannot read {path}: {exc.strerror}",
            hint="name the cluster's configuration with --config FILE",
            reference="conf-unreadable",
        ) from None
    return parse_conf(text, path)
