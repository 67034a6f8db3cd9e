"""Which corosync.conf (and, on 2.x, which default key) a node's corosync is started with.

- corosync 3.x has ``-c FILE`` (exec/main.c, getopt "c:ftv"); its systemd unit
  (init/corosync.service.in, Debian 12's /lib/systemd/system/corosync.service) reads
  ``EnvironmentFile=-/etc/default/corosync`` (RPM builds: /etc/sysconfig/corosync) and runs
  ``corosync -f $COROSYNC_OPTIONS``, which systemd splits at blanks.  3.x reads no
  environment variable for its files.
- corosync 2.x has no ``-c``: coroparse.c takes ``COROSYNC_MAIN_CONFIG_FILE`` from the
  environment, and totemconfig.c ``COROSYNC_TOTEM_AUTHKEY_FILE`` for the key when
  corosync.conf names neither ``totem.keyfile`` nor ``totem.key``.  2.x's own init script
  (init/corosync.in, also what its systemd unit runs) sources /etc/sysconfig/corosync and
  /etc/default/corosync without exporting anything, so a plain ``NAME=value`` there
  reaches corosync only where a unit reads the file as an EnvironmentFile.  Only an
  exported assignment is sure to; a plain one is reported as "cannot tell".

The files are shell; corokey never runs them.  It reads blank lines, comments and
``[export] NAME=value`` with simple quoting, and says it cannot tell when a line it
cannot read this way (or a value with ``$`` or a backquote) may set one of these names.
"""

import re
import shlex
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

from corokey.errors import CorokeyError

#: Where the units and init scripts of both generations read their settings.
STARTUP_FILES = ("/etc/default/corosync", "/etc/sysconfig/corosync")
DEFAULT_CONF_PATH = "/etc/corosync/corosync.conf"
_NAMES = ("COROSYNC_OPTIONS", "COROSYNC_MAIN_CONFIG_FILE", "COROSYNC_TOTEM_AUTHKEY_FILE")
_ASSIGNMENT = re.compile(r"(export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)\Z")


class StartupUnknown(CorokeyError):
    """corokey cannot tell which files the node's corosync is started with."""

    reference = "startup-unknown"


class Startup(NamedTuple):
    """What the startup files say: the corosync.conf path and (2.x) the key path used
    when corosync.conf names none; ``sources`` names where each came from."""

    conf_path: str
    default_key: "Optional[str]"
    sources: "Tuple[str, ...]" = ()


class _Setting(NamedTuple):
    value: str
    exported: bool
    where: str


def _read(path: str, text: str) -> "Dict[str, _Setting]":
    """The assignments of our names in one file; StartupUnknown where unreadable."""
    found: Dict[str, _Setting] = {}
    exported: List[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}:{number}"
        match = _ASSIGNMENT.match(stripped)
        if match is None:
            words = stripped.split()
            if words[0] == "export" and all(w.isidentifier() for w in words[1:]):
                exported += words[1:]
                continue
            if any(name in stripped for name in _NAMES) or not _harmless(stripped):
                raise StartupUnknown(
                    f"cannot tell what line {number} of {path} does to corosync's start "
                    f"({stripped[:60]!r})",
                    hint=f"make {path} plain NAME=value lines, or name the files: "
                    "--config FILE (and --key-path FILE)",
                )
            continue
        name, raw = match.group(2), match.group(3)
        if name not in _NAMES:
            continue
        value = _value(raw)
        if value is None:
            raise StartupUnknown(
                f"cannot tell the value of {name} at {where} ({raw[:60]!r})",
                hint=f"write it without $, backquotes or unclosed quotes in {path}",
            )
        found[name] = _Setting(value, bool(match.group(1)), where)
    for name in exported:
        if name in found:
            found[name] = found[name]._replace(exported=True)
    return found


def _harmless(line: str) -> bool:
    """A line that cannot assign our names: a command such as ``ulimit -c unlimited``."""
    return not any(c in line for c in "$`;&|.") and not line.startswith((".", "source", "eval"))


def _value(raw: str) -> "Optional[str]":
    """The shell value of ``raw`` when it has no expansion; None otherwise."""
    if "$" in raw or "`" in raw or "\\" in raw:
        return None
    try:
        words = shlex.split(raw, comments=True, posix=True)
    except ValueError:
        return None
    if len(words) > 1:  # NAME=a b: the shell runs b with NAME=a
        return None
    return words[0] if words else ""


def _conf_option(options: str) -> "Optional[str]":
    """``-c FILE`` in corosync 3.x's COROSYNC_OPTIONS (getopt "c:ftv"; the last wins)."""
    words, conf, index = options.split(), None, 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            continue
        flags = word[1:]
        for position, flag in enumerate(flags):
            if flag == "c":
                rest = flags[position + 1 :]
                if rest:
                    conf = rest
                elif index < len(words):
                    conf, index = words[index], index + 1
                break
    if conf is not None and not conf.startswith("/"):
        conf = "/" + conf  # systemd starts the unit in /
    return conf


def startup(texts: "Mapping[str, Optional[str]]", corosync2: bool) -> "Startup":
    """The startup files' verdict. ``texts``: path -> text (None: present but unreadable;
    absent paths are left out). Raises StartupUnknown when it cannot tell."""
    settings: Dict[str, List[_Setting]] = {}
    for path in STARTUP_FILES:
        if path not in texts:
            continue
        text = texts[path]
        if text is None:
            raise StartupUnknown(
                f"cannot read {path}, which may change where corosync reads its files",
                hint="run corokey as root (or with read access to it)",
            )
        for name, setting in _read(path, text).items():
            settings.setdefault(name, []).append(setting)
    if corosync2:
        conf = _one(settings, "COROSYNC_MAIN_CONFIG_FILE", exported_only=True)
        key = _one(settings, "COROSYNC_TOTEM_AUTHKEY_FILE", exported_only=True)
    else:
        options = _one(settings, "COROSYNC_OPTIONS", exported_only=False)
        conf = None
        if options is not None:
            option = _conf_option(options.value)
            conf = options._replace(value=option) if option else None
        key = None
    sources = tuple(s.where for s in (conf, key) if s is not None)
    return Startup(
        conf.value if conf is not None else DEFAULT_CONF_PATH,
        key.value if key is not None and key.value else None,
        sources,
    )


def _one(
    settings: "Mapping[str, List[_Setting]]", name: str, exported_only: bool
) -> "Optional[_Setting]":
    found = settings.get(name, [])
    if len({s.value for s in found}) > 1:
        where = " and ".join(s.where for s in found)
        raise StartupUnknown(
            f"{name} is set differently at {where}: cannot tell which file the node's "
            "service reads",
            hint="keep the setting in one of /etc/default/corosync, /etc/sysconfig/corosync",
        )
    if not found:
        return None
    setting = found[-1]
    if exported_only and not all(s.exported for s in found):
        raise StartupUnknown(
            f"{name} is set at {setting.where} without export: corosync 2.x's init script "
            "does not pass it on, a unit reading the file as EnvironmentFile does",
            hint=f"write 'export {name}=...' (or remove it), then run again",
        )
    return setting


def read_local(corosync2: bool) -> "Startup":
    """The verdict of this machine's startup files. Raises StartupUnknown."""
    texts: Dict[str, Optional[str]] = {}
    for path in STARTUP_FILES:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                texts[path] = handle.read()
        except FileNotFoundError:
            continue
        except OSError:
            texts[path] = None
    return startup(texts, corosync2)
