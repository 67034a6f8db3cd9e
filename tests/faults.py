"""Fault injection for the cluster tests, from outside corokey (corokey itself has no
test switches):

* :class:`FaultySsh`: an ``ssh`` put first on the admin's PATH that runs the real ssh and
  relays the session, stalling or dropping it at a named protocol line (a line the node
  answers, such as ``corokey-result committed``, or one the admin sends, such as
  ``commit``), or before the session starts.  Rules are per node, and may fire once only.
* :func:`shim`: a wrapper for a program (``sync``, ``cp``, ...) first in the PATH of the ssh
  sessions on one test host (a bind mount over the host's /usr/local/sbin, which root's
  PATH lists first), so that a node's own step stalls or fails.

Run as a program (``python3 tests/faults.py RULES SSH-ARGS...``), this module is the relay.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REAL_SSH = "/usr/bin/ssh"
#: First in root's PATH in an ssh session (sshd's superuser path on Debian), empty on a
#: stock system: a host's shims are mounted there.
SHIM_DIR = "/usr/local/sbin"


class FaultySsh:
    """A directory with an ``ssh`` that relays through the rules in ``rules.json``."""

    def __init__(self, workdir: Path) -> None:
        self.directory = workdir / "faultyssh"
        self.directory.mkdir(exist_ok=True)
        for fired in self.directory.glob("fired-*"):  # an earlier test's, same network
            fired.unlink()
        self.rules: List[Dict[str, Any]] = []
        wrapper = self.directory / "ssh"
        wrapper.write_text(
            f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} "
            f'{self.directory / "rules.json"} "$@"\n'
        )
        wrapper.chmod(0o755)
        self._save()

    def add(self, **rule: Any) -> FaultySsh:
        """A rule: ``node`` (default any), ``script`` (text the remote command contains),
        ``at``: ``start``, ``from-node`` or ``to-node``; ``line``: the prefix of the line
        (from-node, to-node); ``stall``: seconds to hold it, or ``drop``: True (cut the
        session there: the line never crosses); ``once``: fire in one session only;
        ``after``: the id of a rule that must have fired first (ids count from 0)."""
        rule.setdefault("id", len(self.rules))
        self.rules.append(rule)
        self._save()
        return self

    def clear(self) -> None:
        self.rules = []
        self._save()

    def fired(self, rule_id: int) -> bool:
        return (self.directory / f"fired-{rule_id}").exists()

    def _save(self) -> None:
        temp = self.directory / "rules.json.tmp"
        temp.write_text(json.dumps(self.rules))
        temp.rename(self.directory / "rules.json")

    def env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.directory}:{env.get('PATH', '/usr/bin:/bin')}"
        return env


def shim(host: Any, program: str, body: str) -> None:
    """On ``host``, ssh sessions run ``body`` (sh) for ``program``; ``exec /usr/bin/PROGRAM
    "$@"`` at its end runs the real one.  Mounted over the host's /usr/local/sbin."""
    directory = host.root / "shims"
    if not directory.exists():
        directory.mkdir(mode=0o755)
        host.run(["mount", "--bind", str(directory), SHIM_DIR])
    path = directory / program
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def stall_directory_sync(host: Any, seconds: float) -> None:
    """The next sync of a directory on ``host`` (push's after its rename) stalls, as on a
    slow disk: the key is renamed, the answer comes ``seconds`` late, and the session holds
    the directory's lock meanwhile."""
    shim(
        host,
        "sync",
        'if [ "$*" = "-- ." ] && [ -e /run/stall-sync ]; then\n'
        f"  rm /run/stall-sync; sleep {seconds:g}\n"
        'fi\nexec /usr/bin/sync "$@"\n',
    )
    (host.path("/run/stall-sync")).write_text("")


# ---------------------------------------------------------------------------- the relay


def _script_text(command: str) -> str:
    """The script a remote command runs: the command itself, and the text of any script
    it carries base64-encoded (``echo B64 | base64 -d``)."""
    import base64
    import binascii
    import re

    texts = [command]
    for encoded in re.findall(r"echo ([A-Za-z0-9+/=]+) \| base64 -d", command):
        with contextlib.suppress(binascii.Error, ValueError):
            texts.append(base64.b64decode(encoded).decode(errors="replace"))
    return "\n".join(texts)


def _matching(
    rules_path: str, rules: Sequence[Dict[str, Any]], node: str, command: str
) -> List[Dict[str, Any]]:
    command = _script_text(command)
    directory = os.path.dirname(rules_path)
    return [
        r
        for r in rules
        if r.get("node") in (None, node)
        and (r.get("script") is None or r["script"] in command)
        and (r.get("after") is None or os.path.exists(f"{directory}/fired-{r['after']}"))
    ]


def _claim(rules_path: str, rule: Dict[str, Any]) -> bool:
    """Whether this rule fires now (a rule with ``once`` fires in one session only)."""
    marker = os.path.join(os.path.dirname(rules_path), f"fired-{rule['id']}")
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return not rule.get("once")
    return True


class _Relay:
    def __init__(self, rules_path: str, rules: List[Dict[str, Any]], argv: List[str]) -> None:
        self.rules_path = rules_path
        self.rules = rules
        self.parent = os.getppid()
        # argv[0] "ssh", as corokey's own children: tests find running sessions by it.
        self.child = subprocess.Popen(
            ["ssh", *argv], executable=REAL_SSH, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def orphaned(self) -> bool:
        return os.getppid() != self.parent

    def stall(self, seconds: float) -> bool:
        """Hold for ``seconds``; False when the admin went away meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.orphaned():
                return False
            time.sleep(0.05)
        return True

    def drop(self) -> None:
        sys.stderr.write("faultyssh: connection dropped\n")
        sys.stderr.flush()
        self.child.kill()
        os._exit(255)

    def act(self, at: str, line: bytes) -> str:
        """What to do with this line: ``pass`` it on, ``drop`` the session (the line never
        crosses), or ``gone`` (the admin went away while the line was held)."""
        for rule in self.rules:
            if rule.get("at") != at or not line.startswith(rule["line"].encode()):
                continue
            if not _claim(self.rules_path, rule):
                continue
            if rule.get("drop"):
                return "drop"
            if not self.stall(float(rule.get("stall", 0))):
                return "gone"
        return "pass"

    def to_node(self) -> None:
        stdin = self.child.stdin
        assert stdin is not None
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            what = self.act("to-node", chunk)
            if what == "drop":
                self.drop()
            if what == "gone":
                break  # the admin went away while the line was held: it was never sent
            try:
                stdin.write(chunk)
                stdin.flush()
            except OSError:
                break
        stdin.close()

    def from_node(self) -> None:
        stdout = self.child.stdout
        assert stdout is not None
        for line in iter(stdout.readline, b""):
            what = self.act("from-node", line)
            if what == "drop":
                self.drop()
            if what == "gone":
                break
            try:
                os.write(1, line)
            except OSError:
                break


def relay(rules_path: str, argv: List[str]) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    with open(rules_path) as handle:
        rules = json.load(handle)
    if "--" not in argv:  # not corokey's way of calling ssh
        os.execv(REAL_SSH, ["ssh", *argv])  # noqa: S606 - the real ssh, as called
    node, command = argv[argv.index("--") + 1], argv[-1]
    rules = _matching(rules_path, rules, node, command)
    for rule in [r for r in rules if r.get("at") == "start"]:
        if _claim(rules_path, rule):
            if rule.get("drop"):
                sys.stderr.write("faultyssh: connection dropped\n")
                return 255
            deadline = time.monotonic() + float(rule.get("stall", 0))
            parent = os.getppid()
            while time.monotonic() < deadline:
                if os.getppid() != parent:
                    return 255
                time.sleep(0.05)
    if not rules:
        os.execv(REAL_SSH, ["ssh", *argv])  # noqa: S606 - the real ssh, as called
    session = _Relay(rules_path, rules, argv)
    threading.Thread(target=session.to_node, daemon=True).start()
    session.from_node()
    return session.child.wait()


if __name__ == "__main__":
    sys.exit(relay(sys.argv[1], sys.argv[2:]))
