"""Live state of a running corosync, through its own command line tools.

Every query goes through a *runner*: a callable taking an argv and returning
``(exit status, stdout)``.  :func:`local_runner` runs on this node; the same
functions work on another node given a runner that goes over ssh.
"""

import subprocess
from typing import Callable, Dict, Optional, Sequence, Set, Tuple

from corokey.record import Record

Runner = Callable[[Sequence[str]], Tuple[int, str]]


def local_runner(argv: "Sequence[str]") -> "Tuple[int, str]":
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=15, check=False
        )
    except FileNotFoundError:
        return 127, ""
    except subprocess.TimeoutExpired:
        return 124, ""
    return result.returncode, result.stdout


class LiveState(Record):
    """What a running corosync says about itself; ``running`` False when it does not answer."""

    __slots__ = ("members", "quorate", "reload_error", "ring_id", "running", "this_node", "version")
    running: bool
    members: "Set[int]"
    quorate: "Optional[bool]"
    reload_error: "Optional[str]"
    ring_id: "Optional[str]"
    version: "Optional[str]"
    this_node: "Optional[int]"

    def __init__(
        self,
        running: bool,
        members: "Optional[Set[int]]" = None,
        quorate: "Optional[bool]" = None,
        reload_error: "Optional[str]" = None,
        ring_id: "Optional[str]" = None,
        version: "Optional[str]" = None,
        this_node: "Optional[int]" = None,
    ) -> None:
        self._set(
            this_node=this_node,
            running=running,
            members=members or set(),
            quorate=quorate,
            reload_error=reload_error,
            ring_id=ring_id,
            version=version,
        )


def cmap_values(prefix: str, run: "Runner" = local_runner) -> "Optional[Dict[str, str]]":
    """``corosync-cmapctl -b PREFIX`` as a dict, or None when corosync does not answer."""
    status, output = run(["corosync-cmapctl", "-b", prefix])
    if status != 0:
        return None
    values = {}
    for line in output.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            values[key.split(" (", 1)[0]] = value
    return values


# Where corosync keeps its members in cmap: 3.x exec/main.c, then 2.x exec/main.c.
_MEMBER_PREFIXES = ("runtime.members", "runtime.totem.pg.mrp.srp.members")


def members(run: "Runner" = local_runner) -> "Optional[Set[int]]":
    answered = False
    for prefix in _MEMBER_PREFIXES:
        values = cmap_values(prefix, run)
        answered = answered or values is not None
        # Only this prefix's keys: a runner may replay one output for both questions.
        mine = {
            k[len(prefix) + 1 :]: v for k, v in (values or {}).items() if k.startswith(prefix + ".")
        }
        if not mine:  # not running, or the other generation's keys
            continue
        joined = set()
        for key, value in mine.items():
            parts = key.split(".")
            if len(parts) == 2 and parts[1] == "status" and value == "joined":
                joined.add(int(parts[0]))
        return joined
    return set() if answered else None


def live_state(run: "Runner" = local_runner) -> "LiveState":
    current = members(run)
    if current is None:
        return LiveState(running=False)
    _, quorum = run(["corosync-quorumtool", "-s"])  # exits non-zero when not quorate
    quorate = None
    ring_id = None
    this_node = None
    for line in quorum.splitlines():
        if line.startswith("Node ID:"):
            this_node = int(line.split(":", 1)[1].strip())
        if line.startswith("Quorate:"):
            quorate = line.split(":", 1)[1].strip() == "Yes"
        if line.startswith("Ring ID:"):
            ring_id = line.split(":", 1)[1].strip()
    config = cmap_values("config.reload_error_message", run) or {}
    version_status, version_text = run(["corosync", "-v"])
    version = None
    if version_status == 0 and "version '" in version_text:
        version = version_text.split("version '", 1)[1].split("'", 1)[0]
    return LiveState(
        running=True,
        members=current,
        quorate=quorate,
        reload_error=config.get("config.reload_error_message") or None,
        ring_id=ring_id,
        version=version,
        this_node=this_node,
    )
