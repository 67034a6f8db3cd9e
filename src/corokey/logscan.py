"""Recognise key trouble in corosync logs, of every generation.

Patterns (what corosync and knet print; the doctor tests check them against
lines a real corosync 3.1.7 with knet 1.25 wrote, see tests/README.md):

* knet (corosync 3): ``nsscrypto: Digest does not match`` (also ``opensslcrypto:``
  and ``gcryptcrypto:``) and ``rx: Unable to decrypt packet from ADDR:PORT``;
* totemudp/totemudpu (corosync 2): ``Received message has invalid digest...
  ignoring.``, ``Invalid digest`` and ``Digest does not match`` (totemcrypto.c); these
  name no sender, and their events carry ``detail`` "2.x";
* start-up: ``Could only read N bits of minimum M bits from FILE.`` (2.x: ``... of M
  bits from FILE.``),
  ``Could not open FILE: ...`` and ``Could not read FILE: ...`` for the key.
"""

import os
import re
from typing import Dict, Iterable, List, Optional

from corokey.record import Record

TAIL_BYTES = 256 * 1024

_UNDECRYPTABLE = re.compile(r"rx: Unable to decrypt packet from \[?([0-9A-Fa-f.:]+?)\]?:(\d+)")
_KNET_DIGEST = re.compile(r"\b(nss|openssl|gcrypt)crypto: Digest does not match")
_V2_DIGEST = re.compile(
    r"Received message has invalid digest\.\.\. ignoring|Invalid digest|Digest does not match"
)
_SHORT_KEY = re.compile(r"Could only read (\d+) bits of (?:minimum )?(\d+) bits from (\S+?)\.?\s*$")
_KEY_OPEN = re.compile(r"Could not (open|read) (/\S+?): (.+?)\s*$")


GENERATION_2X = "2.x"


class LogEvent(Record):
    """One recognised line: kind, the peer address if the line names one, the line."""

    __slots__ = ("address", "detail", "kind", "line")
    kind: str  # undecryptable, digest-mismatch, key-too-short, key-unreadable
    address: "Optional[str]"
    detail: "Optional[str]"
    line: str

    def __init__(
        self, kind: str, line: str, address: "Optional[str]" = None, detail: "Optional[str]" = None
    ) -> None:
        self._set(kind=kind, line=line, address=address, detail=detail)


def scan_line(line: str) -> "Optional[LogEvent]":
    match = _UNDECRYPTABLE.search(line)
    if match:
        return LogEvent("undecryptable", line, address=match.group(1))
    if _KNET_DIGEST.search(line):
        return LogEvent("digest-mismatch", line)
    if _V2_DIGEST.search(line):
        return LogEvent("digest-mismatch", line, detail=GENERATION_2X)
    match = _SHORT_KEY.search(line)
    if match:
        return LogEvent("key-too-short", line, detail=match.group(3))
    match = _KEY_OPEN.search(line)
    if match and ("key" in match.group(2) or "auth" in match.group(2)):
        return LogEvent("key-unreadable", line, detail=f"{match.group(2)}: {match.group(3)}")
    return None


def scan(lines: "Iterable[str]") -> "List[LogEvent]":
    return [event for event in map(scan_line, lines) if event is not None]


def mismatched_addresses(events: "Iterable[LogEvent]") -> "Dict[str, int]":
    """Peer address -> how many of its packets could not be decrypted."""
    counts: Dict[str, int] = {}
    for event in events:
        if event.kind == "undecryptable" and event.address:
            counts[event.address] = counts.get(event.address, 0) + 1
    return counts


def read_tail(path: str, size: int = TAIL_BYTES) -> "List[str]":
    """The last ``size`` bytes of a log file, as lines (the first, partial, one dropped)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        length = handle.tell()
        handle.seek(max(0, length - size))
        data = handle.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if length > size else lines


def read_since_last_start(lines: "List[str]") -> "List[str]":
    """Only what the newest corosync run logged (after its 'starting up' line)."""
    for index in range(len(lines) - 1, -1, -1):
        if "Corosync Cluster Engine" in lines[index] and "starting up" in lines[index]:
            return lines[index:]
    return lines


def journal_lines(unit: str = "corosync", count: int = 2000) -> "Optional[List[str]]":
    """Recent lines of the systemd journal for ``unit``, or None without journalctl."""
    import shutil
    import subprocess

    if shutil.which("journalctl") is None:
        return None
    result = subprocess.run(
        ["journalctl", "-u", unit, "-n", str(count), "--no-pager", "-o", "short"],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        timeout=20,
    )
    return result.stdout.splitlines() if result.returncode == 0 else None
