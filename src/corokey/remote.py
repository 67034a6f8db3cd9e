"""Reaching other nodes: the system OpenSSH client, in parallel, key bytes on stdin only.

Every remote step is a fixed POSIX sh script of :mod:`corokey.nodescripts` sent as
ssh's remote command; its parameters are validated and shell-quoted, and never
contain key bytes.  A :class:`Session` keeps one such script talking to the admin
(push's two phases run in one session per node).

Host keys are always checked: ``StrictHostKeyChecking=yes`` is passed unless
the admin passes their own StrictHostKeyChecking with ``--ssh-option``.  No
terminal, ever (``-T``, ``EscapeChar=none``): key bytes cross the session, and a
terminal would read them as line editing and signals.  Whatever a node sends is
read in bounded amounts.
"""

import contextlib
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, TypeVar

from corokey.errors import CorokeyError, UsageError

DEFAULT_CONCURRENCY = 32
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_TIMEOUT = 60
CONTROL_PERSIST_SECONDS = 60
#: ssh's own exit status when it could not connect or authenticate.
SSH_FAILED = 255
#: The most a node may send in one session, and in one line: far above what any script
#: answers (a corosync.conf line is under 512 bytes), far below what would hurt the admin.
MAX_OUTPUT = 16 * 1024 * 1024
MAX_LINE = 64 * 1024
#: What is kept of ssh's stderr (its last words say why a session failed).
MAX_STDERR = 4096

T = TypeVar("T")


class Ssh:
    """How to run commands on nodes: the ssh client, its options, timeouts, parallelism."""

    def __init__(
        self,
        config: "Optional[str]" = None,
        options: "Sequence[str]" = (),
        connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        multiplex: bool = True,
    ) -> None:
        self.config = config
        self.options = list(options)
        self.multiplex = multiplex and not any(
            o.lower().startswith("control") for o in self.options
        )
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.concurrency = concurrency

    def argv(self, node: str, command: str) -> "List[str]":
        validate_node(node)
        argv = ["ssh"]
        if self.config:
            argv += ["-F", self.config]
        # -T and EscapeChar=none first: ssh keeps the first value of an option, so neither
        # a RequestTTY in ssh_config nor --ssh-option puts the key through a terminal.
        argv += ["-T", "-o", "EscapeChar=none"]
        argv += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if not any(o.lower().startswith("stricthostkeychecking") for o in self.options):
            argv += ["-o", "StrictHostKeyChecking=yes"]
        if self.multiplex:
            argv += _multiplex_options()
        for option in self.options:
            argv += ["-o", option]
        return [*argv, "--", node, remote_command(command)]

    def each(self, nodes: "Sequence[str]", work: "Callable[[str], T]") -> "Dict[str, T]":
        """``work(node)`` for every node, at most ``concurrency`` at once; results by node."""
        if not nodes:
            return {}
        with ThreadPoolExecutor(max(1, min(self.concurrency, len(nodes)))) as pool:
            return dict(zip(nodes, pool.map(work, nodes)))


def remote_command(script: str) -> str:
    """What ssh asks the node's login shell to run: /bin/sh with ``script``, whatever
    that shell is. The script travels base64-encoded in one line of characters that
    every shell (sh, bash, zsh, fish, csh) takes literally between single quotes; run by
    the login shell itself, zsh would read ``$((0755))`` as decimal, and csh or fish
    would quote the script's text otherwise."""
    from binascii import b2a_base64

    encoded = b2a_base64(script.encode(), newline=False).decode()
    return f"exec /bin/sh -c 'eval \"$(echo {encoded} | base64 -d)\"'"


class Session:
    """One ssh session to a node kept open while a script and the admin talk.

    The script answers in lines on stdout; the admin writes requests (and key bytes) on
    stdin.  Everything the node prints before the marker line (a login banner) is
    dropped.  Closing stdin tells the script that no more is coming.
    """

    def __init__(self, ssh: "Ssh", node: str, script: str, marker: bytes) -> None:
        import threading

        self.node = node
        self.timeout = ssh.timeout
        self._marker = marker + b"\n"
        self._seen_marker = False
        self._buffer = bytearray()
        self._stderr = bytearray()
        self._eof = False
        self._timed_out = False
        #: why the session was cut on the admin's side (too much output), or None
        self._cut: Optional[str] = None
        self._received = 0
        self._ready = threading.Condition()
        try:
            # A session of its own: a Ctrl-C on the admin's terminal reaches corokey, which
            # decides, and not ssh in the middle of a node's commit.
            self._process = subprocess.Popen(
                ssh.argv(node, script),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise _no_ssh() from None
        self._threads = [
            threading.Thread(target=self._pump, daemon=True),
            threading.Thread(target=self._drain_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self) -> None:
        import os

        stdout = self._process.stdout
        assert stdout is not None  # noqa: S101 - opened with PIPE
        while True:
            chunk = os.read(stdout.fileno(), 65536)
            with self._ready:
                self._received += len(chunk)
                if self._received > MAX_OUTPUT:
                    self._cut_off(f"{self.node} sent more than {MAX_OUTPUT // 1048576} MiB")
                    chunk = b""
                if chunk:
                    self._buffer += chunk
                else:
                    self._eof = True
                self._ready.notify_all()
            if not chunk:
                return

    def _cut_off(self, why: str) -> None:
        """Stop listening to a node that sends what no script would (held: _ready)."""
        if self._cut is None:
            self._cut = why
            with contextlib.suppress(OSError):
                self._process.kill()

    def _drain_stderr(self) -> None:
        import os

        stderr = self._process.stderr
        assert stderr is not None  # noqa: S101 - opened with PIPE
        while True:
            chunk = os.read(stderr.fileno(), 65536)
            if not chunk:
                return
            self._stderr += chunk
            del self._stderr[:-MAX_STDERR]

    def send(self, data: bytes) -> bool:
        """Write to the script's stdin; False when the session is gone."""
        stdin = self._process.stdin
        assert stdin is not None  # noqa: S101 - opened with PIPE
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def end_input(self) -> None:
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.close()

    def _wait_for(self, ready: "Callable[[], bool]", deadline: float) -> bool:
        import time

        with self._ready:
            while not ready():
                if self._eof:
                    return ready()
                left = deadline - time.monotonic()
                if left <= 0:
                    self._timed_out = True
                    return False
                self._ready.wait(left)
            return True

    def _past_marker(self) -> bool:
        if not self._seen_marker:
            at = self._buffer.find(self._marker)
            if at < 0:
                # The banner is dropped as it comes (each byte searched once); only a tail
                # that may start the marker is kept.
                del self._buffer[: -len(self._marker)]
                return False
            del self._buffer[: at + len(self._marker)]
            self._seen_marker = True
        return True

    def line(self, timeout: "Optional[float]" = None) -> "Optional[bytes]":
        """The next line after the marker (without its newline); None at the end of
        output or when ``timeout`` (default: the per-step timeout) passes."""
        import time

        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)

        def ready() -> bool:
            return self._past_marker() and (b"\n" in self._buffer or len(self._buffer) > MAX_LINE)

        if not self._wait_for(ready, deadline):
            return None
        with self._ready:
            at = self._buffer.find(b"\n", 0, MAX_LINE + 1)
            if at < 0:
                self._cut_off(f"{self.node} sent a line of more than {MAX_LINE} bytes")
                return None
            line = bytes(self._buffer[:at])
            del self._buffer[: at + 1]
            return line

    def exactly(self, count: int, timeout: "Optional[float]" = None) -> "Optional[bytes]":
        """The next ``count`` bytes after the marker; None when fewer come in time."""
        import time

        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        if not self._wait_for(lambda: self._past_marker() and len(self._buffer) >= count, deadline):
            return None
        with self._ready:
            data = bytes(self._buffer[:count])
            del self._buffer[:count]
            return data

    def close(self, grace: float = 5.0) -> int:
        """End the session (the script sees end of input); its exit status."""
        self.end_input()
        try:
            status = self._process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._process.kill()
            status = self._process.wait()
        for thread in self._threads:
            thread.join(timeout=1.0)
        return SSH_FAILED if self._timed_out or self._cut else status

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for thread in self._threads:
            thread.join(timeout=1.0)

    @property
    def cut(self) -> bool:
        """The session did not end by itself: no answer in time, or too much output."""
        return self._timed_out or self._cut is not None

    @property
    def unreachable(self) -> bool:
        """No answer came at all: ssh could not connect, or the node did not answer."""
        return not self._seen_marker

    def why(self) -> str:
        """What went wrong, in ssh's words (its last line on stderr)."""
        if self._cut is not None:
            return self._cut
        if self._timed_out:
            return f"no answer within {self.timeout:g} s"
        text = self._stderr.decode(errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        status = self._process.poll()
        if lines:
            return "".join(c if c.isprintable() else "?" for c in lines[-1])
        return f"the session ended (exit status {status})"


def _no_ssh() -> "CorokeyError":
    return CorokeyError(
        "the ssh client is not installed",
        hint="install OpenSSH's client (apt-get install openssh-client)",
        reference="no-ssh",
    )


def _multiplex_options() -> "List[str]":
    """One connection per node, reused by every step and by the next command for a
    minute (as Ansible does): each step then costs a session, not a key exchange."""
    import os
    import shutil

    if shutil.which("ssh") is None:
        return []  # the session's start says no-ssh; no directory made for nothing
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.expanduser("~/.cache")
    directory = os.path.join(base, "corokey", "ssh")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return []
    if not _private_chain(base, directory):
        return []  # no sharing rather than a socket path someone else could plant
    return [
        "-o",
        "ControlMaster=auto",
        "-o",
        f"ControlPath={directory}/%C",
        "-o",
        f"ControlPersist={CONTROL_PERSIST_SECONDS}",
    ]


def _private_chain(base: str, directory: str) -> bool:
    """Whether ``directory`` and the directories from ``base`` down to it are real
    directories of this user (or root) that nobody else may write to.

    The key crosses the shared connection: a socket planted at the path (say, under the
    invoking user's XDG_RUNTIME_DIR or HOME kept by sudo -E) would receive it.
    """
    import os
    import stat

    me = os.geteuid()
    path = directory
    while True:
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (me, 0):
            return False
        if st.st_mode & 0o022 or (path == directory and st.st_mode & 0o077):
            return False
        if os.path.samefile(path, base) or os.path.dirname(path) == path:
            return True
        path = os.path.dirname(path)


#: Host names, addresses (IPv4, IPv6 with zone) and ssh_config aliases, with an optional
#: user: nothing a shell, ssh or a terminal would read as more than a name.
_NODE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:%@")


def validate_node(node: str) -> str:
    if (
        not node
        or node.startswith("-")
        or not set(node) <= _NODE_CHARACTERS
        or node.count("@") > 1
        or node.endswith("@")
    ):
        shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in node)
        raise UsageError(
            f"{shlex.quote(shown)} is not a node name or address",
            hint="give names as in ssh_config or corosync.conf (letters, digits, . - _ : %), "
            "e.g. --nodes node1,node2",
            reference="bad-node-name",
        )
    return node


def validate_path(path: str) -> str:
    """An absolute path naming a file: not a directory (``/``, ``/.``, ``/..`` at the end)."""
    if not path.startswith("/") or any(not c.isprintable() for c in path):
        shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in path)
        raise UsageError(
            f"{shlex.quote(shown)} is not an absolute path",
            hint="remote key paths must be absolute, e.g. /etc/corosync/authkey",
            reference="bad-key-path",
        )
    name = path.rsplit("/", 1)[1]
    if name in ("", ".", ".."):
        raise UsageError(
            f"{shlex.quote(path)} names a directory, not a key file",
            hint="name the file, e.g. --key-path /etc/corosync/authkey",
            reference="bad-key-path",
        )
    return path


def resolve_nodes(nodes: "Optional[str]", config: "Optional[str]") -> "List[str]":
    """``--nodes A,B`` as given, else the nodelist of corosync.conf (name, else ring0_addr)."""
    if nodes:
        names = [validate_node(n.strip()) for n in nodes.split(",") if n.strip()]
        if names:
            return list(dict.fromkeys(names))
    from corokey.corosync_conf import load_local_conf

    conf = load_local_conf(config)
    names = [n.name or (n.addresses[0] if n.addresses else "") for n in conf.nodes()]
    names = [validate_node(n) for n in names if n]
    if not names:
        raise UsageError(
            f"{conf.path} lists no nodes",
            hint="name the nodes with --nodes A,B,C",
        )
    return names
