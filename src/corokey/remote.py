"""Reaching other nodes: the system OpenSSH client, in parallel, key bytes on stdin only.

Every remote step is a fixed POSIX sh script sent as ssh's remote command; its
parameters are validated and shell-quoted, and never contain key bytes.  What
a node needs: sshd, a POSIX shell, and coreutils (cat, chmod, chown, cut, head,
ln, mktemp, mv, readlink, rm, sha256sum, stat, sync >= 8.24, wc) — nothing is
installed on nodes.

Host keys are always checked: ``StrictHostKeyChecking=yes`` is passed unless
the admin passes their own StrictHostKeyChecking with ``--ssh-option``.
"""

import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, TypeVar

from corokey.errors import CorokeyError, UsageError
from corokey.record import Record

DEFAULT_CONCURRENCY = 32
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_TIMEOUT = 60
CONTROL_PERSIST_SECONDS = 60
#: ssh's own exit status when it could not connect or authenticate.
SSH_FAILED = 255

T = TypeVar("T")


class RemoteResult(Record):
    """What one remote command did on one node."""

    __slots__ = ("node", "status", "stderr", "stdout")
    node: str
    status: int
    stdout: str
    stderr: str

    def __init__(self, node: str, status: int, stdout: str, stderr: str) -> None:
        self._set(node=node, status=status, stdout=stdout, stderr=stderr)

    @property
    def unreachable(self) -> bool:
        return self.status == SSH_FAILED

    def why(self) -> str:
        """The last line ssh or the remote script wrote on stderr."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit status {self.status}"


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
        argv += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if not any(o.lower().startswith("stricthostkeychecking") for o in self.options):
            argv += ["-o", "StrictHostKeyChecking=yes"]
        if self.multiplex:
            argv += _multiplex_options()
        for option in self.options:
            argv += ["-o", option]
        return [*argv, "--", node, command]

    def run(self, node: str, command: str, stdin: bytes = b"") -> "RemoteResult":
        try:
            result = subprocess.run(
                self.argv(node, command),
                input=stdin,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return RemoteResult(node, SSH_FAILED, "", f"timed out after {self.timeout:g} s")
        except FileNotFoundError:
            raise _no_ssh() from None
        return RemoteResult(
            node,
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
        )

    def run_bytes(self, node: str, command: str) -> "Tuple[int, bytes, str]":
        """Run and keep stdout as bytes (to carry a key from a node, in memory only)."""
        try:
            result = subprocess.run(
                self.argv(node, command), capture_output=True, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return SSH_FAILED, b"", f"timed out after {self.timeout:g} s"
        except FileNotFoundError:
            raise _no_ssh() from None
        return result.returncode, result.stdout, result.stderr.decode(errors="replace")

    def command_line(self, node: str, command: str) -> str:
        """The shell command line an admin can paste to run ``command`` on ``node``
        with the same ssh options (the connection-sharing ones left out)."""
        argv = self.argv(node, command)
        if self.multiplex:
            control = {a for a in _multiplex_options() if a != "-o"}
            argv = [a for i, a in enumerate(argv) if not _is_option_pair(argv, i, control)]
        return " ".join(shlex.quote(a) for a in argv)

    def each(self, nodes: "Sequence[str]", work: "Callable[[str], T]") -> "Dict[str, T]":
        """``work(node)`` for every node, at most ``concurrency`` at once; results by node."""
        if not nodes:
            return {}
        with ThreadPoolExecutor(max(1, min(self.concurrency, len(nodes)))) as pool:
            return dict(zip(nodes, pool.map(work, nodes)))


def _no_ssh() -> "CorokeyError":
    return CorokeyError(
        "the ssh client is not installed",
        hint="install OpenSSH's client (apt-get install openssh-client)",
        reference="no-ssh",
    )


def _is_option_pair(argv: "List[str]", index: int, values: "Set[str]") -> bool:
    """Whether argv[index] is a ``-o`` whose value is in ``values``, or such a value."""
    if argv[index] == "-o":
        return index + 1 < len(argv) and argv[index + 1] in values
    return argv[index] in values and index > 0 and argv[index - 1] == "-o"


def _multiplex_options() -> "List[str]":
    """One connection per node, reused by every step and by the next command for a
    minute (as Ansible does): each step then costs a session, not a key exchange."""
    import os

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


def validate_node(node: str) -> str:
    if not node or node.startswith("-") or any(c.isspace() for c in node):
        raise UsageError(
            f"'{node}' is not a node name or address",
            hint="give names as in ssh_config or corosync.conf, e.g. --nodes node1,node2",
        )
    return node


def validate_path(path: str) -> str:
    if not path.startswith("/") or "\n" in path or "\0" in path:
        raise UsageError(
            f"'{path}' is not an absolute path",
            hint="remote key paths must be absolute, e.g. /etc/corosync/authkey",
        )
    return path


def quote(value: str) -> str:
    return shlex.quote(value)


def resolve_nodes(nodes: "Optional[str]", config: "Optional[str]") -> "List[str]":
    """``--nodes A,B`` as given, else the nodelist of corosync.conf (name, else ring0_addr)."""
    if nodes:
        names = [validate_node(n.strip()) for n in nodes.split(",") if n.strip()]
        if names:
            return list(dict.fromkeys(names))
    from corokey.corosync_conf import DEFAULT_CONF_PATH, load_conf

    conf = load_conf(config or DEFAULT_CONF_PATH)
    names = [n.name or (n.addresses[0] if n.addresses else "") for n in conf.nodes()]
    names = [validate_node(n) for n in names if n]
    if not names:
        raise UsageError(
            f"{conf.path} lists no nodes",
            hint="name the nodes with --nodes A,B,C",
        )
    return names
