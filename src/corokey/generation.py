"""Which corosync generation (2.x or 3.x) this node runs, found cheaply.

Cheap enough for the start-up path of corosync-keygen: no process is run (``corosync -v``
costs more than the whole of our start-up) and no package database is read.  Instead the
start of the daemon's ELF file is read once: its dynamic section names the libraries it
links, and the two generations differ there for good reasons of architecture, not of
packaging: 2.x keeps totem in ``libtotem_pg.so`` (exec/Makefile.am builds corosync
against it), 3.x compiles totem in and links ``libknet.so`` for transport.

``COROKEY_COROSYNC`` overrides the detection, for tests and for admins preparing keys for
another node: ``2`` or ``3``, or a version such as ``2.4.6``.
"""

import os

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Optional

ENV_OVERRIDE = "COROKEY_COROSYNC"
COROSYNC_BINARY = "/usr/sbin/corosync"
# The dynamic string table sits in the first pages of an ELF file (after the headers,
# .interp, .gnu.hash and .dynsym); 64 KiB holds it with room to spare in both generations.
_HEAD_BYTES = 64 * 1024
_MARK_2X = b"libtotem_pg.so"
_MARK_3X = b"libknet.so"


class Generation:
    """A corosync generation: ``major`` 2 or 3; ``version`` when known to the minor."""

    __slots__ = ("major", "source", "version")

    def __init__(self, major: int, source: str, version: "Optional[str]" = None) -> None:
        self.major = major
        self.source = source  # "COROKEY_COROSYNC", the binary's path, or "default"
        self.version = version

    @property
    def corosync2(self) -> bool:
        return self.major == 2

    def at_least(self, major: int, minor: int) -> bool:
        """Whether the version, where known, is ``major.minor`` or later."""
        if self.version is None:
            return False
        parts = self.version.split(".")
        return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0) >= (major, minor)

    def __repr__(self) -> str:
        return f"Generation({self.major}, {self.source!r}, {self.version!r})"


def parse_override(value: str) -> "Generation":
    """``2``, ``3``, ``2.x`` or a dotted version; anything else raises UsageError."""
    text = value.strip()
    major, dot, rest = text.partition(".")
    ok = major in ("2", "3") and (
        not dot or rest == "x" or all(part.isdigit() for part in rest.split("."))
    )
    if not ok:
        from corokey.errors import UsageError

        raise UsageError(
            f"{ENV_OVERRIDE}={value!r} is not a corosync generation",
            hint=f"set {ENV_OVERRIDE} to 2 or 3 (or a version such as 2.3.5), or unset it "
            f"to detect it from {COROSYNC_BINARY}",
        )
    return Generation(int(major), ENV_OVERRIDE, text if rest not in ("", "x") else None)


def detect_binary(path: str = COROSYNC_BINARY) -> "Optional[int]":
    """2 or 3 from what the daemon at ``path`` links, or None (missing, unreadable, unknown)."""
    try:
        with open(path, "rb", buffering=0) as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return None
    if not head.startswith(b"\x7fELF"):
        return None
    if _MARK_2X in head:
        return 2
    if _MARK_3X in head:
        return 3
    return None


def local_is_corosync2() -> bool:
    """Whether this node's corosync (or COROKEY_COROSYNC) is 2.x."""
    return local_generation().corosync2


def local_generation(binary: str = COROSYNC_BINARY) -> "Generation":
    """This node's corosync generation: the override, else the binary, else 3.x."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        return parse_override(override)
    major = detect_binary(binary)
    if major is None:
        return Generation(3, "default")
    return Generation(major, binary)
