"""The key on other nodes: what each node holds and runs, and the steps that change it.

Each step is one script of :mod:`corokey.nodescripts` run in one ssh session of
:mod:`corokey.remote`; every answer is a named result, and a failure is a
:class:`NodeFailure` carrying the name's message, reference and hint.  Key bytes
leave the admin's memory only on a session's stdin, and come back only for
``push --from`` (into memory).
"""

from typing import Dict, List, Optional, Sequence, Tuple

from corokey.corosync_conf import ConfParseError, CorosyncConf, parse_conf
from corokey.corosync_startup import Startup, StartupUnknown, startup
from corokey.errors import CorokeyError
from corokey.key import KEY_LEN_MAX, fingerprint_hex
from corokey.nodescripts import (
    FAILURES,
    MARKER,
    NODE_CONF_PATH,
    TEXT_PREFIX,
    Answer,
    describe,
    inspect_script,
    live_script,
    parse_answer,
    push_script,
    read_script,
    reload_script,
    restore_script,
    run_script,
    stage_request,
)
from corokey.pacemaker import PacemakerFacts, from_answers
from corokey.pacemaker_access import Accounts
from corokey.record import Record
from corokey.remote import Session, Ssh
from corokey.runtime import LiveState, cmap_values, live_state

_MARKER = MARKER.encode()
#: Names of the answers that mean a step failed on the node.
_FAILURE_NAMES = frozenset(FAILURES)
#: Bytes of the key corosync 3 uses; 2.x uses the first 128.
EFFECTIVE_BYTES = KEY_LEN_MAX
#: push --from reads no more than a local key argument may hold (secretfile's limit).
MAX_KEY_READ = 1024 * 1024


class NodeFailure(Exception):
    """One node could not do a step. ``reference``, ``message`` and ``hint`` come from
    the named result in :data:`corokey.nodescripts.FAILURES` (or from the transport)."""

    def __init__(
        self, node: str, message: str, reference: str, hint: str, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.reference = reference
        self.hint = hint
        self.unreachable = unreachable

    @staticmethod
    def named(node: str, answer: "Answer") -> "NodeFailure":
        message, reference, hint = describe(node, answer)
        return NodeFailure(node, message, reference, hint)

    @staticmethod
    def lost(node: str, step: str) -> "NodeFailure":
        return NodeFailure(
            node,
            f"{node}: {step} ended without an answer",
            "node-session-lost",
            "check the connection and the node, then run the command again",
        )

    @staticmethod
    def transport(node: str, session: "Session") -> "NodeFailure":
        if session.unreachable:
            return NodeFailure(
                node,
                f"cannot reach {node}: {session.why()}",
                "unreachable",
                f"check the connection: ssh {node} true",
                unreachable=True,
            )
        return NodeFailure(
            node,
            f"{node}: the session ended before the step did ({session.why()})",
            "node-session-lost",
            "check the connection and the node, then run the command again",
        )


class RemoteKey(Record):
    """One file on a node, from ``stat`` and the fingerprint (never the bytes)."""

    __slots__ = (
        "gid",
        "group",
        "kind",
        "mode",
        "nlink",
        "owner",
        "sha256",
        "size",
        "uid",
        "unreadable",
        "used",
    )
    kind: str  # regular, symlink, directory, other, missing
    mode: int
    uid: int
    gid: int
    owner: str
    group: str
    nlink: int
    size: int
    #: SHA-256 of the first 4096 bytes: the bytes corokey writes and compares
    sha256: "Optional[str]"
    #: SHA-256 of the bytes the node's corosync uses (2.x: the first 128); else sha256
    used: "Optional[str]"
    #: why the node could not read the file (permission-denied, io-error, read-failed);
    #: then sha256 and used are None: there is no fingerprint of what could not be read
    unreadable: "Optional[str]"

    def __init__(self, **fields: object) -> None:
        values: Dict[str, object] = dict(
            kind="missing", mode=0, uid=-1, gid=-1, owner="", group="", nlink=0, size=0
        )
        values["sha256"] = None
        values["unreadable"] = None
        values.update(fields)
        values.setdefault("used", values["sha256"])
        self._set(**values)

    @classmethod
    def from_answer(cls, answer: "Answer") -> "RemoteKey":
        fields = answer.fields
        if fields.get("kind") != "regular":
            return cls(kind=fields.get("kind", "missing"))
        unreadable = fields.get("unreadable") or None
        digest = None if unreadable else fields.get("sha256") or None
        return cls(
            kind="regular",
            mode=int(fields.get("mode", "0"), 8),
            uid=int(fields.get("uid", "-1")),
            gid=int(fields.get("gid", "-1")),
            owner=fields.get("owner", ""),
            group=fields.get("group", ""),
            nlink=int(fields.get("nlink", "0")),
            size=int(fields.get("size", "0")),
            sha256=digest,
            used=None if unreadable else fields.get("used") or digest,
            unreadable=unreadable,
        )

    def unreadable_answer(self, path: str) -> "Answer":
        """The node's named failure for this file, to describe it from the table."""
        return Answer("unreadable", {"why": self.unreadable or "read-failed", "path": path})


class NodeView:
    """What one node showed: its corosync.conf, the key files looked at, their
    directories, and (when asked) how corosync runs there."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.conf: Optional[CorosyncConf] = None
        #: why the conf corosync reads could not be read as it does (ConfParseError, or
        #: StartupUnknown when the startup files leave its path unclear)
        self.conf_error: Optional[CorokeyError] = None
        #: the startup files' verdict (corosync_startup); None when they were unclear
        self.startup: Optional[Startup] = None
        #: the path of the conf in ``conf`` (the startup files may name another)
        self.conf_path = NODE_CONF_PATH
        self.keys: Dict[str, RemoteKey] = {}
        self.olds: Dict[str, RemoteKey] = {}
        #: key path -> "owner uid U, mode M at DIR" when others can write to its directory
        #: (DIR: the directory at fault, which may be a parent or a link's target)
        self.unsafe_dirs: Dict[str, str] = {}
        #: key path -> DIR of unsafe_dirs
        self.unsafe_at: Dict[str, str] = {}
        #: corosync's version on the node (None: not installed) and the bytes of the key it
        #: uses: the first 128 on 2.x, up to 4096 on 3.x
        self.corosync_version: Optional[str] = None
        self.effective = EFFECTIVE_BYTES
        self.live: Optional[LiveState] = None
        self.fips = False
        self.reload_status: Optional[str] = None
        #: where Pacemaker reads its Remote key on the node (None: not installed there)
        self.pacemaker: Optional[PacemakerFacts] = None
        #: whether Pacemaker's user and group exist there (None: not asked)
        self.accounts: Optional[Accounts] = None


# ---------------------------------------------------------------------------- reading


def _lines_until_end(session: "Session") -> "List[bytes]":
    lines: List[bytes] = []
    while True:
        line = session.line()
        if line is None:
            return lines
        lines.append(line)


def _answers(lines: "Sequence[bytes]") -> "List[Tuple[Answer, List[str]]]":
    """Each answer with the text lines (prefix removed) that follow it."""
    result: List[Tuple[Answer, List[str]]] = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace")
        answer = parse_answer(line)
        if answer is not None:
            result.append((answer, []))
        elif line.startswith(TEXT_PREFIX) and result:
            result[-1][1].append(line[len(TEXT_PREFIX) :])
    return result


def _one_shot(ssh: "Ssh", node: str, script: str) -> "List[Tuple[Answer, List[str]]]":
    """Run a script that needs no input; its answers, or NodeFailure."""
    session = Session(ssh, node, script, _MARKER)
    session.end_input()
    lines = _lines_until_end(session)
    session.close()
    if session.unreachable or session.cut:
        # Cut short, the answers may lack the very line the step is about.
        raise NodeFailure.transport(node, session)
    answers = _answers(lines)
    for answer, _ in answers:
        if answer.name in _FAILURE_NAMES:
            raise NodeFailure.named(node, answer)
    return answers


def _conf_from(view: "NodeView", answers: "List[Tuple[Answer, List[str]]]") -> None:
    """The node's generation, startup files and corosync.conf (parsed as that generation
    of corosync parses it), and how Pacemaker takes its key."""
    view.pacemaker = from_answers(a for a, _ in answers)
    for answer, _ in answers:
        if answer.name == "accounts":
            view.accounts = Accounts.from_fields(answer.fields)
    startup_texts: Dict[str, Optional[str]] = {}
    conf_text: Optional[List[str]] = None
    for answer, text in answers:
        if answer.name == "corosync":
            version = answer.get("version")
            view.corosync_version = None if version in ("", "none") else version
            view.effective = int(answer.get("effective", str(EFFECTIVE_BYTES)))
        elif answer.name == "startup-file":
            readable = answer.get("readable") == "yes"
            text_of = "".join(t + "\n" for t in text) if readable else None
            startup_texts[answer.get("path")] = text_of
        elif answer.name == "text-begin" and conf_text is None:
            conf_text = text
    corosync2 = view.effective < EFFECTIVE_BYTES
    view.conf, view.conf_error, view.startup = None, None, None
    try:
        view.startup = startup(startup_texts, corosync2)
    except StartupUnknown as exc:
        view.conf_error = StartupUnknown(f"{view.node}: {exc.message}", hint=exc.hint)
        return
    if conf_text is None or view.startup.conf_path != view.conf_path:
        return
    try:
        view.conf = parse_conf(
            "\n".join(conf_text) + "\n",
            f"{view.node}:{view.conf_path}",
            view.corosync_version or ("2" if corosync2 else None),
            view.startup.default_key,
        )
    except ConfParseError as exc:
        view.conf_error = exc


def _wanted(view: "NodeView", keys: bool = True) -> "Tuple[Optional[str], List[str]]":
    """What a first look missed: the conf the startup files name (None: it was read) and
    (with ``keys``) the key paths corosync may read that were not looked at."""
    if view.startup is None:
        return None, []
    conf = view.startup.conf_path if view.startup.conf_path != view.conf_path else None
    paths = [p for p in (view.startup.default_key,) if p and p not in view.keys]
    if view.conf is not None and keys:
        source, keyfile = view.conf.key_source()
        if source == "file" and keyfile and keyfile.startswith("/") and keyfile not in view.keys:
            paths.append(keyfile)
    return conf, paths


def look(
    ssh: "Ssh",
    node: str,
    paths: "Sequence[str]",
    live: bool = False,
    effective: int = EFFECTIVE_BYTES,
    accounts: str = "",
) -> "NodeView":
    """corosync.conf, the key at each of ``paths`` and at every keyfile the conf names,
    and with ``live`` how corosync runs; ``sha256`` of each key's first ``effective`` bytes
    (key.WHOLE_FILE: all of them); with ``accounts`` (USER:GROUP) whether they exist there.
    Raises NodeFailure."""
    script = inspect_script(paths, live=live, effective=effective, accounts=accounts)
    answers = _one_shot(ssh, node, script)
    view = NodeView(node)
    _conf_from(view, answers)
    _keys_from(view, answers)
    for _ in range(2):
        # The startup files name another conf or key, or the conf a keyfile the first
        # look did not stat: look at those too (more sessions only where a node is set
        # up so; the second conf may name one more keyfile).
        conf, more = _wanted(view)
        if conf is None and not more:
            break
        view.conf_path = conf or view.conf_path
        again = _one_shot(ssh, node, inspect_script(list(paths) + more, conf=view.conf_path))
        _conf_from(view, again)
        _keys_from(view, again)
    if live:
        _live_from(view, _sections(answers))
    return view


def _keys_from(view: "NodeView", answers: "List[Tuple[Answer, List[str]]]") -> None:
    key_path = ""
    for answer, _ in answers:
        path = answer.get("path")
        if answer.name == "key":
            key_path = path
            view.keys[path] = RemoteKey.from_answer(answer)
        elif answer.name == "old":
            view.olds[path[: -len(".old")]] = RemoteKey.from_answer(answer)
        elif answer.name == "dir" and answer.get("unsafe") == "yes":
            # The node says it right after the key; its path is the directory at fault.
            view.unsafe_dirs[key_path] = (
                f"owner uid {answer.get('uid')}, mode {answer.get('mode')} at {path}"
            )
            view.unsafe_at[key_path] = path


def _sections(answers: "List[Tuple[Answer, List[str]]]") -> "Dict[str, Tuple[int, str]]":
    """The live script's sections: name -> (exit status, output) of each tool."""
    return {
        a.get("name"): (int(a.get("status", "1") or "1"), "".join(t + "\n" for t in text))
        for a, text in answers
        if a.name == "section"
    }


def _live_from(view: "NodeView", sections: "Dict[str, Tuple[int, str]]") -> None:
    def replay(argv: "Sequence[str]") -> "Tuple[int, str]":
        if argv[0] == "corosync-cmapctl" and argv[-1].startswith("config.reload"):
            return sections.get("reload", (1, ""))
        if argv[-1] == "runtime.totem.pg.mrp.srp.members":  # where 2.x keeps them
            return sections.get("members2", (1, ""))
        name = {"corosync-cmapctl": "members", "corosync-quorumtool": "quorum"}.get(
            argv[0], "version"
        )
        return sections.get(name, (1, ""))

    view.live = live_state(replay)
    fips_status, fips = sections.get("fips", (1, ""))
    view.fips = fips_status == 0 and fips.strip() == "1"
    reload = cmap_values("config.reload_status", replay) or {}
    view.reload_status = reload.get("config.reload_status")


def live(ssh: "Ssh", node: str) -> "NodeView":
    """How corosync runs on ``node`` (members, quorum, reload status): one session."""
    view = NodeView(node)
    _live_from(view, _sections(_one_shot(ssh, node, live_script())))
    return view


# ---------------------------------------------------------------------------- changing


class PushSession:
    """push's two phases on one node, in one ssh session: read the conf, stage, commit.

    Closing the session before ``commit`` (or the admin dying) makes the node remove
    its staged copy."""

    def __init__(self, ssh: "Ssh", node: str, accounts: str = "") -> None:
        """``accounts`` (USER:GROUP): the node says whether they exist (view.accounts)."""
        self.node = node
        self.ssh = ssh
        script = push_script(EFFECTIVE_BYTES, accounts=accounts)
        self.session = Session(ssh, node, script, _MARKER)
        self.view = NodeView(node)
        self.staged: Optional[RemoteKey] = None
        self.staged_name: Optional[str] = None

    def _next(self) -> "Answer":
        """The next answer; other lines are skipped (a loop: a node printing lines
        without end meets the session's output limit, not Python's recursion limit)."""
        while True:
            line = self.session.line()
            if line is None:
                self.session.kill()
                raise NodeFailure.transport(self.node, self.session)
            answer = parse_answer(line.decode("utf-8", errors="replace"))
            if answer is None:
                continue
            if answer.name in _FAILURE_NAMES:
                self.session.close()
                raise NodeFailure.named(self.node, answer)
            return answer

    def read_conf(self) -> "NodeView":
        lines: List[bytes] = []
        while True:
            line = self.session.line()
            if line is None:
                self.session.kill()
                raise NodeFailure.transport(self.node, self.session)
            lines.append(line)
            answer = parse_answer(line.decode("utf-8", errors="replace"))
            if answer is not None and answer.name == "corosync":
                break
        _conf_from(self.view, _answers(lines))
        conf, _ = _wanted(self.view, keys=False)
        if conf is not None:  # the startup files name another conf: read that one
            self.view.conf_path = conf
            again = _one_shot(self.ssh, self.node, inspect_script([], conf=conf))
            _conf_from(self.view, again)
        return self.view

    def stage(self, path: str, key: bytes, owner: str, mode: int) -> "Optional[RemoteKey]":
        """Stage ``key`` at ``path``; None when the node already holds it exactly
        (then the session is over). Raises NodeFailure."""
        sha256 = fingerprint_hex(key)
        if not self.session.send(stage_request(path, len(key), owner, mode, sha256) + key):
            self.session.kill()
            raise NodeFailure.transport(self.node, self.session)
        answer = self._next()
        if answer.name == "unchanged":
            self.session.close()
            return None
        staged = RemoteKey.from_answer(answer)
        if answer.name != "staged" or staged.size != len(key) or staged.sha256 != sha256:
            self.abort()
            raise NodeFailure(
                self.node,
                f"{self.node}: the staged copy does not read back as the key",
                "node-read-back",
                "check the node's disk and memory, then push again",
            )
        self.staged, self.staged_name = staged, answer.get("name")
        return staged

    def commit(self) -> "RemoteKey":
        """Keep the previous key as .old and rename the staged copy over the key;
        what the key file holds afterwards. Raises NodeFailure."""
        if not self.session.send(b"commit\n"):
            self.session.kill()
            raise NodeFailure.transport(self.node, self.session)
        answer = self._next()
        self.session.close()
        if answer.name != "committed":
            raise NodeFailure.named(self.node, answer)
        return RemoteKey.from_answer(answer)

    def abort(self) -> None:
        """No commit: the node removes its staged copy."""
        self.session.send(b"abort\n")
        self.session.close()


def restore_old(ssh: "Ssh", node: str, path: str, old_sha256: str) -> "RemoteKey":
    """Put ``path.old`` back at ``path`` if it holds the key ``old_sha256``; what the key
    file holds afterwards. Raises NodeFailure."""
    answers = _one_shot(ssh, node, restore_script(path, old_sha256, EFFECTIVE_BYTES))
    for answer, _ in answers:
        if answer.name in ("restored", "unchanged"):
            return RemoteKey.from_answer(answer)
    raise NodeFailure.lost(node, "the restore")


def reload(ssh: "Ssh", node: str) -> None:
    """``corosync-cfgtool -R`` on ``node``. Raises NodeFailure."""
    answers = _one_shot(ssh, node, reload_script())
    if not any(a.name == "reloaded" for a, _ in answers):
        raise NodeFailure.lost(node, "corosync-cfgtool -R")


def run_command(ssh: "Ssh", node: str, command: str, what: str) -> None:
    """The admin's ``command`` on ``node`` (``what``: "stop" or "start") once no other runs
    there (within the session's time limit). Raises NodeFailure."""
    answers = _one_shot(ssh, node, run_script(command, what, int(ssh.timeout)))
    if not any(a.name == "ran" for a, _ in answers):
        raise NodeFailure.lost(node, f"the {what} command")


def read_key(ssh: "Ssh", node: str, path: str) -> bytes:
    """The key bytes of ``path`` on ``node``, into memory only (push --from), checked
    against the size and fingerprint the node computed. Raises NodeFailure."""
    session = Session(ssh, node, read_script(path, EFFECTIVE_BYTES), _MARKER)
    session.end_input()
    try:
        line = session.line()
        answer = parse_answer(line.decode("utf-8", errors="replace")) if line else None
        if answer is None:
            raise NodeFailure.transport(node, session)
        if answer.name in _FAILURE_NAMES:
            raise NodeFailure.named(node, answer)
        facts = RemoteKey.from_answer(answer)
        if facts.unreadable:
            raise NodeFailure.named(node, facts.unreadable_answer(path))
        if facts.size > MAX_KEY_READ:
            raise NodeFailure(
                node,
                f"{node}:{path} holds {facts.size} bytes, which is no corosync key",
                "read-too-large",
                f"look at {path} on {node}; a corosync key is 128 to {KEY_LEN_MAX} bytes",
            )
        data = session.exactly(facts.size)
        extra = session.exactly(1, timeout=1.0)
    finally:
        session.close()
    if data is None or extra or fingerprint_hex(data) != facts.sha256:
        raise NodeFailure(
            node,
            f"the bytes read from {node}:{path} are not that file ({facts.size} bytes there); "
            f"something on {node} writes to the session's output, or the file changed",
            "from-read-mismatch",
            f"make the login quiet for non-interactive shells on {node} "
            "(ssh NODE true must print nothing), then push again",
        )
    return data
