"""Test hosts: real corosync and sshd in network and mount namespaces, on one machine.

A :class:`Network` is a bridge in its own network namespace, an admin
namespace (where the admin's tools run), and up to 32 hosts.  Each host has
its own network namespace (a veth into the bridge, an address in a private
/24 that exists only inside these namespaces) and its own mount namespace in
which /etc/corosync, /etc/pacemaker, /etc/cluster, /run, /var/lib/corosync,
/var/log/corosync, /var/lib/pacemaker and /var/log/pacemaker are private bind mounts
and /dev/shm a private tmpfs.  In it run, as separate real processes, ``corosync -f``
(optional), ``sshd``, and Pacemaker's ``pacemakerd`` or ``pacemaker-remoted`` (optional,
tests/pacemakerhosts.py).

Everything started is recorded (PIDs with their command lines, namespace
names) in a state directory, so teardown ends exactly what this run started,
and a later run cleans up after one that was killed.  See tests/README.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Union

from tests import pacemakerhosts

STATE_ROOT = Path("/run/corokey-testhosts")
PRIVATE_DIRS = (
    "/etc/corosync",
    "/etc/pacemaker",
    "/etc/cluster",
    "/run",
    "/var/lib/corosync",
    "/var/log/corosync",
    "/var/lib/pacemaker",
    "/var/log/pacemaker",
)
#: A file of each host's own where it exists on the machine (Debian's pacemaker installs it):
#: the daemons' environment, PCMK_authkey_location among it.
PRIVATE_FILES = ("/etc/default/pacemaker",)
#: Hidden (an empty, non-executable file over it) on hosts made without Pacemaker.
PACEMAKERD = "/usr/sbin/pacemakerd"
#: With Network(private_home=True) root's home is private too, so ssh sessions do not run
#: the build machine's ~/.bashrc (benchmarks). Off by default: the checkout and its Python
#: may live under /root, and tests run them inside hosts.
PRIVATE_HOME = "/root"
#: What bash reads in an ssh session (Debian's bash sources it for sshd's commands);
#: each host sees an empty one.
SHELL_RC = "/root/.bashrc"
KEY_PATH = "/etc/corosync/authkey"
#: Home directories of add_login()'s users, in each host's private /run.
LOGINS = "/run/logins"
LOG_PATH = "/var/log/corosync/corosync.log"
CLUSTER_NAME = "corokeytest"


class TestHostError(RuntimeError):
    """A test host could not be set up or did not reach the expected state."""


def unavailable_reason() -> Optional[str]:
    """Why test hosts cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "test hosts need root (network and mount namespaces)"
    for tool in ("ip", "unshare", "nsenter", "corosync", "corosync-cmapctl", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (sh scripts/test.sh installs it)"
    if not Path("/usr/sbin/sshd").exists():
        return "sshd is not installed (apt-get install openssh-server)"
    probe = f"ckprobe{os.getpid()}"
    try:
        _run(["ip", "netns", "add", probe])
        _run(["ip", "netns", "del", probe])
    except TestHostError as exc:
        return f"network namespaces are unavailable: {exc}"
    return None


def _run(argv: Sequence[str], input: Optional[bytes] = None, timeout: float = 30) -> str:
    result = subprocess.run(
        list(argv), input=input, capture_output=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise TestHostError(
            f"{' '.join(argv)} failed ({result.returncode}): "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout.decode(errors="replace")


def _cmdline(pid: int) -> Optional[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None


def _identity(pid: int) -> Optional[str]:
    """The process's start time: with the PID, it names one process for ever."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class Host:
    """One test host: a network and a mount namespace with corosync and sshd."""

    def __init__(
        self, network: Network, index: int, corosync: bool, corosync_version: Optional[str] = None
    ) -> None:
        self.network = network
        #: None: Debian's corosync 3.x; "2.3.5" or "2.4.6": that build (tests/corosync2.py).
        self.corosync_version = corosync_version
        self.index = index
        self.nodeid = index
        self.name = f"node{index}"
        self.address = f"{network.subnet}.{index}"
        self.netns = f"{network.prefix}-h{index}"
        self.root = network.workdir / self.name
        self.runs_corosync = corosync
        self.holder_pid = 0
        self.corosync_process: Optional[subprocess.Popen[bytes]] = None
        self.sshd_process: Optional[subprocess.Popen[bytes]] = None
        #: A cluster node with pacemakerd, or a remote node with pacemaker-remoted.
        self.runs_pacemaker = False
        self.runs_remoted = False
        self.pacemaker_process: Optional[subprocess.Popen[bytes]] = None

    def __repr__(self) -> str:
        return f"Host({self.name}, {self.address})"

    # ------------------------------------------------------------------ set-up

    def private_dirs(self) -> Sequence[str]:
        return (*PRIVATE_DIRS, PRIVATE_HOME) if self.network.private_home else PRIVATE_DIRS

    def create(self) -> None:
        for directory in self.private_dirs():
            (self.root / directory.strip("/").replace("/", "-")).mkdir(parents=True)
            Path(directory).mkdir(parents=True, exist_ok=True)  # mount points
        (self.root / "run" / "sshd").mkdir(mode=0o755)
        self.network.add_namespace(self.netns)
        self.network.plug(self.netns, f"{self.network.prefix}h{self.index}", self.address)
        binds = " && ".join(
            f"mount --bind {self.root / d.strip('/').replace('/', '-')} {d}"
            for d in self.private_dirs()
        )
        # libqb's shared-memory IPC (corosync 3.x and Pacemaker's daemons) lives here: a
        # host's own tmpfs keeps it apart and leaves nothing behind when the host goes.
        binds += " && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm"
        for name in PRIVATE_FILES:
            if os.path.isfile(name):
                own = self.root / name.strip("/").replace("/", "-")
                own.touch()
                binds += f" && mount --bind {own} {name}"
        if not self.runs_pacemaker and os.path.isfile(PACEMAKERD):
            # A host made without Pacemaker does not have it installed, whatever the
            # machine has: corokey asks a node whether pacemakerd is there.
            absent = self.root / "no-pacemakerd"
            absent.touch(mode=0o644)
            binds += f" && mount --bind {absent} {PACEMAKERD}"
        if not self.network.private_home and os.path.isfile(SHELL_RC):
            # A server's root has a plain shell start-up; the build machine's (pyenv
            # init) costs about 100 ms of CPU in every ssh session, and with every host
            # on the same 2 cores that load made rotations flap (docs/rotate.md).
            empty = self.root / "empty-bashrc"
            empty.touch()
            binds += f" && mount --bind {empty} {SHELL_RC}"
        if self.corosync_version:
            binds += "".join(f" && {b}" for b in _corosync2_binds(self.corosync_version))
        holder = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"{binds} && exec sleep infinity",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.network.record(holder.pid)
        # Wait until the binds are in place: the holder then sleeps.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if holder.poll() is not None:
                why = holder.stderr.read() if holder.stderr else b""
                raise TestHostError(f"{self.name}: mount namespace failed: {why!r}")
            if (_cmdline(holder.pid) or "").startswith("sleep"):
                break
            time.sleep(0.01)
        else:
            raise TestHostError(f"{self.name}: mount namespace did not come up")
        self.holder_pid = holder.pid
        self._write_sshd_config()

    def _write_sshd_config(self) -> None:
        ssh = self.root / "ssh"
        ssh.mkdir()
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "host_key")])
        (ssh / "sshd_config").write_text(
            "\n".join(
                [
                    f"ListenAddress {self.address}",
                    "Port 22",
                    f"HostKey {ssh / 'host_key'}",
                    "PermitRootLogin prohibit-password",
                    # The second for add_login()'s users (the run's directory is root's).
                    f"AuthorizedKeysFile {self.network.workdir / 'authorized_keys'} "
                    f"{LOGINS}/%u/authorized_keys",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PidFile /run/sshd.pid",
                    "Subsystem sftp internal-sftp",
                    "MaxStartups 100:30:200",
                    "MaxSessions 50",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )

    def host_key_line(self) -> str:
        public = (self.root / "ssh" / "host_key.pub").read_text().split()
        return f"{self.address} {public[0]} {public[1]}"

    # ------------------------------------------------------------------ commands

    def command(self, argv: Sequence[str]) -> List[str]:
        """The argv that runs ``argv`` inside this host."""
        return ["nsenter", "-t", str(self.holder_pid), "-m", "-n", "--", *argv]

    def run(
        self,
        argv: Sequence[str],
        input: Optional[bytes] = None,
        check: bool = True,
        timeout: float = 30,
        env: Optional[Dict[str, str]] = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host; text output."""
        result = subprocess.run(
            self.command(argv),
            input=input.decode("latin-1") if input is not None else None,
            capture_output=True,
            text=True,
            encoding="latin-1",
            timeout=timeout,
            check=False,
            env=env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise TestHostError(
                f"{self.name}: {' '.join(argv)} failed ({result.returncode}): {result.stderr}"
            )
        return result

    def path(self, inside: str) -> Path:
        """Where a path of the host is seen from outside (through the holder's root)."""
        return Path(f"/proc/{self.holder_pid}/root{inside}")

    def read_key(self, path: str = KEY_PATH) -> bytes:
        return self.path(path).read_bytes()

    def write_key(
        self, data: bytes, path: str = KEY_PATH, mode: int = 0o400, group: str = "root"
    ) -> None:
        target = self.path(path)
        temp = target.with_name(target.name + ".testhost-tmp")
        temp.write_bytes(data)
        temp.chmod(mode)
        shutil.chown(temp, "root", group)
        temp.rename(target)

    def log_text(self) -> str:
        try:
            return self.path(LOG_PATH).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ accounts

    def _accounts(self) -> List[Path]:
        """This host's own /etc/passwd and /etc/group: copies of the machine's, bound
        over them in the host's mount namespace on first use (edited in place after)."""
        copies = [self.root / "passwd", self.root / "group"]
        if not copies[0].exists():
            for copy, real in zip(copies, ("/etc/passwd", "/etc/group")):
                shutil.copyfile(real, copy)
                copy.chmod(0o644)
                self.run(["mount", "--bind", str(copy), real])
        return copies

    def add_account(self, name: str, uid: int, login_shell: str = "/bin/sh") -> None:
        """A user and its group (same id) on this host only; no password."""
        passwd, group = self._accounts()
        with passwd.open("a") as entries:
            entries.write(f"{name}:*:{uid}:{uid}::{LOGINS}/{name}:{login_shell}\n")
        with group.open("a") as entries:
            entries.write(f"{name}:x:{uid}:\n")

    def remove_accounts(self, *names: str) -> None:
        """Remove the users and the groups called ``names`` on this host only (in place:
        the bind mounts hold these inodes)."""
        for entries in self._accounts():
            lines = entries.read_text().splitlines(keepends=True)
            kept = [line for line in lines if line.split(":", 1)[0] not in names]
            with entries.open("r+") as rewritten:
                rewritten.write("".join(kept))
                rewritten.truncate()

    def add_login(self, name: str, uid: int, login_shell: str = "/bin/sh") -> None:
        """A user who logs in over ssh with the run's test key: ``ssh NAME@nodeN``."""
        self.add_account(name, uid, login_shell)
        home = self.path(f"{LOGINS}/{name}")
        home.mkdir(parents=True)
        os.chown(home, uid, uid)
        keys = home / "authorized_keys"  # sshd_config: AuthorizedKeysFile .../%u/...
        keys.write_text((self.network.workdir / "authorized_keys").read_text())
        keys.chmod(0o644)

    def set_login_shell(self, name: str, shell: str) -> None:
        """Change an account's login shell on this host only (root's, say, to zsh)."""
        passwd = self._accounts()[0]
        lines = passwd.read_text().splitlines(keepends=True)
        for index, line in enumerate(lines):
            fields = line.rstrip("\n").split(":")
            if fields[0] == name:
                lines[index] = ":".join([*fields[:6], shell]) + "\n"
        with passwd.open("r+") as entries:  # in place: the bind mount holds this inode
            entries.write("".join(lines))
            entries.truncate()

    # ------------------------------------------------------------------ daemons

    def write_corosync_conf(self, hosts: Sequence[Host], extra_totem: str = "") -> None:
        if self.corosync_version:
            self.path("/etc/corosync/corosync.conf").write_text(
                _corosync2_conf(self.network.subnet, hosts, extra_totem)
            )
            return
        nodes = "".join(
            f"    node {{\n        name: {h.name}\n        nodeid: {h.nodeid}\n"
            f"        ring0_addr: {h.address}\n    }}\n"
            for h in hosts
        )
        self.path("/etc/corosync/corosync.conf").write_text(
            f"""totem {{
    version: 2
    cluster_name: {CLUSTER_NAME}
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
    keyfile: {KEY_PATH}
    token: 3000
    consensus: 3600
    join: 50
{extra_totem}}}

"""
            + _conf_tail(nodes)
        )

    def start_corosync(self, wait: bool = True) -> subprocess.Popen[bytes]:
        """Start ``corosync -f``; with ``wait``, until it answers on IPC."""
        if self.corosync_running():
            raise TestHostError(f"{self.name}: corosync is already running")
        stderr = open(self.root / "corosync.stderr", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            self.command(["corosync", "-f"]),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
        stderr.close()
        self.network.record(process.pid)
        self.corosync_process = process
        if wait:
            self.wait_until(
                lambda: self.run(["corosync-cfgtool", "-s"], check=False).returncode == 0,
                f"corosync on {self.name} to answer",
                process=process,
            )
        return process

    def start_or_refused(self, timeout: float = 20) -> Optional[subprocess.Popen[bytes]]:
        """Start ``corosync -f`` and wait until it answers (its process) or exits (None:
        it refused the set-up; corosync_stderr() and log_text() say why)."""
        process = self.start_corosync(wait=False)
        self.wait_until(
            lambda: (
                process.poll() is not None
                or self.run(["corosync-cfgtool", "-s"], check=False).returncode == 0
            ),
            f"corosync on {self.name} to answer or exit",
            timeout=timeout,
        )
        return process if process.poll() is None else None

    def corosync_running(self) -> bool:
        return self.corosync_process is not None and self.corosync_process.poll() is None

    def stop_corosync(self, kill: bool = False) -> None:
        process = self.corosync_process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill_daemon_corosync(self) -> None:
        """End a corosync started inside the host by other means (over ssh, by rotate
        --restart): found by its pid file in the host's private /run."""
        if not self.holder_pid:
            return
        pidfile = self.path("/run/corosync.pid")
        try:
            pid = int(pidfile.read_text().split()[0])
            program = (_cmdline(pid) or "").split("\0")[0]
            # The same pid file seen from the process: it lives in this host (no reused pid).
            theirs = os.stat(f"/proc/{pid}/root/run/corosync.pid").st_ino
            if program.endswith("corosync") and theirs == pidfile.stat().st_ino:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            return

    def corosync_stderr(self) -> str:
        path = self.root / "corosync.stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_sshd(self) -> None:
        process = subprocess.Popen(
            self.command(
                ["/usr/sbin/sshd", "-D", "-e", "-f", str(self.root / "ssh" / "sshd_config")]
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "sshd.stderr", "ab"),  # noqa: SIM115
            start_new_session=True,
        )
        self.network.record(process.pid)
        self.sshd_process = process
        self.wait_until(self._sshd_listening, f"sshd on {self.name} to listen", process=process)

    def _sshd_listening(self) -> bool:
        result = self.run(["ss", "-Htln", f"src {self.address}:22"], check=False)
        return ":22" in result.stdout

    def stop_sshd(self) -> None:
        """Stop sshd and every connection it serves, as a host going down would."""
        if self.sshd_process is not None and self.sshd_process.poll() is None:
            # Connection children call setsid(): find them by parentage, not by group.
            for pid in [*_descendants(self.sshd_process.pid), self.sshd_process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.sshd_process.wait(timeout=10)

    # ------------------------------------------------------------------ pacemaker

    def start_pacemaker(self) -> subprocess.Popen[bytes]:
        """Start ``pacemakerd`` (cluster node) or ``pacemaker-remoted`` (remote node) with
        the environment of the host's /etc/default/pacemaker; not waited for (see
        Network.wait_for_pacemaker)."""
        if not (self.runs_pacemaker or self.runs_remoted):
            raise TestHostError(f"{self.name} was not made a Pacemaker node")
        if self.pacemaker_running():
            raise TestHostError(f"{self.name}: Pacemaker is already running")
        program = (
            str(pacemakerhosts.remoted_program()) if self.runs_remoted else "/usr/sbin/pacemakerd"
        )
        stderr = open(self.root / "pacemaker.stderr", "ab")  # noqa: SIM115 - for the child
        process = subprocess.Popen(
            self.command([program]),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
            env=pacemakerhosts.environment(self),
        )
        stderr.close()
        self.network.record(process.pid)
        self.pacemaker_process = process
        if self.runs_remoted:
            self.wait_until(
                self._remoted_listening, f"pacemaker-remoted on {self.name}", process=process
            )
        return process

    def _remoted_listening(self) -> bool:
        result = self.run(["ss", "-Htln", f"sport = :{pacemakerhosts.REMOTE_PORT}"], check=False)
        return f":{pacemakerhosts.REMOTE_PORT}" in result.stdout

    def pacemaker_running(self) -> bool:
        return self.pacemaker_process is not None and self.pacemaker_process.poll() is None

    def stop_pacemaker(self, kill: bool = False, timeout: float = 120) -> None:
        """Stop pacemakerd (it stops its daemons first) or pacemaker-remoted; ``kill``:
        SIGKILL them all, as a crash would."""
        process = self.pacemaker_process
        if process is None or process.poll() is not None:
            return
        if kill:
            for pid in [*_descendants(process.pid), process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def crm_mon(self) -> Optional[pacemakerhosts.ClusterStatus]:
        """``crm_mon --output-as=xml`` on this cluster node, parsed; None while it cannot say."""
        return pacemakerhosts.crm_mon(self)

    def pacemaker_log(self) -> str:
        return pacemakerhosts.log_text(self)

    # ------------------------------------------------------------------ state

    def members(self) -> Set[int]:
        """Node ids this host's corosync sees as joined members."""
        # 3.x: runtime.members.2.status; 2.x: runtime.totem.pg.mrp.srp.members.2.status
        prefix = "runtime.totem.pg.mrp.srp.members" if self.corosync_version else "runtime.members"
        result = self.run(["corosync-cmapctl", "-b", prefix], check=False)
        members = set()
        for line in result.stdout.splitlines():
            key, _, value = line.partition(" = ")
            parts = key[len(prefix) + 1 :].split(".")
            if len(parts) >= 2 and parts[1].startswith("status") and value.strip() == "joined":
                members.add(int(parts[0]))
        return members

    def wait_until(
        self,
        condition: object,
        what: str,
        timeout: float = 30,
        process: Optional[subprocess.Popen[bytes]] = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise TestHostError(
                    f"waiting for {what}: the process exited with {process.returncode}; "
                    f"log tail:\n{self.diagnostics()}"
                )
            if condition():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise TestHostError(f"timed out waiting for {what}; log tail:\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        parts = [self.log_text()[-2000:], self.corosync_stderr()[-1000:]]
        if self.runs_pacemaker or self.runs_remoted:
            parts.append(self.pacemaker_log()[-3000:])
        return "\n".join(parts)


class Network:
    """A bridge, an admin namespace, and the hosts attached to them."""

    def __init__(self, private_home: bool = False) -> None:
        self.private_home = private_home
        reason = unavailable_reason()
        if reason:
            raise TestHostError(reason)
        clean_stale_runs()
        self.prefix, self.subnet = _allocate()
        self.state_dir = STATE_ROOT / self.prefix
        self.state_dir.mkdir(parents=True)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"corokey-{self.prefix}-"))
        self._state_lock = threading.Lock()
        self.state: Dict[str, Any] = {
            "owner": os.getpid(),
            "owner_identity": _identity(os.getpid()),
            "subnet": self.subnet,
            "workdir": str(self.workdir),
            "namespaces": [],
            "processes": [],
        }
        self._save()
        self.hosts: List[Host] = []
        self.bridge_ns = f"{self.prefix}-br"
        self.admin_ns = f"{self.prefix}-adm"
        self.admin_address = f"{self.subnet}.254"
        self.ssh_config = self.workdir / "ssh_config"
        self.known_hosts = self.workdir / "known_hosts"
        self.identity = self.workdir / "id_ed25519"
        self._closed = False
        try:
            self.add_namespace(self.bridge_ns)
            _run(["ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", self.bridge_ns, "link", "set", "br0", "up"])
            self.add_namespace(self.admin_ns)
            self.plug(self.admin_ns, f"{self.prefix}a", self.admin_address)
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.identity)])
            (self.workdir / "authorized_keys").write_text(
                (self.workdir / "id_ed25519.pub").read_text()
            )
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ bookkeeping

    def _save(self) -> None:
        # Hosts start in parallel threads: one writer at a time, and a rename so that a
        # run killed mid-write leaves the previous whole state (clean_stale_runs reads it).
        with self._state_lock:
            temp = self.state_dir / f"state.json.{threading.get_ident()}"
            temp.write_text(json.dumps(self.state))
            os.replace(temp, self.state_dir / "state.json")

    def record(self, pid: int) -> None:
        processes = self.state["processes"]
        assert isinstance(processes, list)
        identity = _identity(pid) or ""
        with self._state_lock:
            processes.append([pid, identity])
        self._save()

    def add_namespace(self, name: str) -> None:
        namespaces = self.state["namespaces"]
        assert isinstance(namespaces, list)
        with self._state_lock:
            namespaces.append(name)
        self._save()
        _run(["ip", "netns", "add", name])
        _run(["ip", "-n", name, "link", "set", "lo", "up"])

    def plug(self, namespace: str, veth: str, address: str) -> None:
        """A veth from ``namespace`` (as eth0, with ``address``) into the bridge."""
        outer = veth + "b"
        _run(["ip", "link", "add", outer, "type", "veth", "peer", "name", veth])
        _run(["ip", "link", "set", outer, "netns", self.bridge_ns])
        _run(["ip", "link", "set", veth, "netns", namespace])
        _run(["ip", "-n", self.bridge_ns, "link", "set", outer, "master", "br0", "up"])
        _run(["ip", "-n", namespace, "link", "set", veth, "name", "eth0"])
        _run(["ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0"])
        _run(["ip", "-n", namespace, "link", "set", "eth0", "up"])

    # ------------------------------------------------------------------ hosts

    def add_hosts(
        self,
        count: int,
        corosync: bool = True,
        key: Optional[bytes] = None,
        corosync_version: Optional[str] = None,
        pacemaker: bool = False,
        pacemaker_key: Union[bytes, str] = "shared",
    ) -> List[Host]:
        """Create ``count`` hosts (in parallel), start sshd (and corosync, not waited for).

        ``corosync_version`` "2.3.5" or "2.4.6" runs that build instead of Debian's 3.x.
        ``pacemaker``: start pacemakerd too (wait with wait_for_pacemaker); its key is
        ``pacemaker_key``: "shared" (one random 4096-byte key on every node, root:haclient
        0640 as Debian makes it), "per-node" (a different one on each: Debian's stock
        state), "corosync" (no /etc/pacemaker/authkey: Pacemaker 2.x falls back to
        corosync's key, written root:haclient 0440 so pacemaker-controld can read it), or
        the key's bytes (shared).
        """
        if pacemaker:
            reason = pacemakerhosts.unavailable_reason()
            if reason:
                raise TestHostError(reason)
        first = len(self.hosts) + 1
        if first + count - 1 > 32:
            raise TestHostError("at most 32 test hosts")
        new = [
            Host(self, index, corosync, corosync_version) for index in range(first, first + count)
        ]
        self.hosts.extend(new)
        for host in new:
            host.runs_pacemaker = pacemaker
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda h: h.create(), new))
        self._write_ssh_config()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda h: h.start_sshd(), new))
        if corosync:
            from corokey.key import generate_key

            shared = key if key is not None else generate_key()
            cluster = [h for h in self.hosts if h.runs_corosync]
            for host in cluster:
                host.write_corosync_conf(cluster)
            for host in new:
                if pacemaker and pacemaker_key == "corosync":
                    host.write_key(shared, mode=0o440, group="haclient")
                else:
                    host.write_key(shared)
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda h: h.start_corosync(), new))
        if pacemaker:
            self._set_up_pacemaker(new, pacemaker_key)
            for host in new:
                host.start_pacemaker()
        return new

    def _set_up_pacemaker(self, new: Sequence[Host], pacemaker_key: Union[bytes, str]) -> None:
        shared = (
            pacemaker_key
            if isinstance(pacemaker_key, bytes)
            else os.urandom(pacemakerhosts.DEBIAN_KEY_SIZE)
        )
        if pacemaker_key not in ("shared", "per-node", "corosync") and not isinstance(
            pacemaker_key, bytes
        ):
            raise TestHostError(f"unknown pacemaker_key {pacemaker_key!r}")
        for host in new:
            host.runs_pacemaker = True
            pacemakerhosts.prepare_dirs(host)
            pacemakerhosts.seed_cib(host, pacemakerhosts.TEST_CLUSTER_OPTIONS)
            if pacemaker_key == "corosync":
                continue
            data = os.urandom(len(shared)) if pacemaker_key == "per-node" else shared
            host.write_key(
                data,
                pacemakerhosts.PACEMAKER_KEY_PATH,
                mode=pacemakerhosts.DEBIAN_KEY_MODE,
                group="haclient",
            )

    def pacemaker_hosts(self) -> List[Host]:
        return [h for h in self.hosts if h.runs_pacemaker]

    def remote_hosts(self) -> List[Host]:
        return [h for h in self.hosts if h.runs_remoted]

    def cluster_status(self) -> Optional[pacemakerhosts.ClusterStatus]:
        """crm_mon from the first cluster node that answers."""
        for host in self.pacemaker_hosts():
            if host.pacemaker_running():
                status = host.crm_mon()
                if status is not None:
                    return status
        return None

    def wait_for_pacemaker(
        self, online: Optional[Sequence[Host]] = None, timeout: float = 90
    ) -> pacemakerhosts.ClusterStatus:
        """Wait until a DC with quorum sees ``online`` (default: every Pacemaker cluster and
        remote host) online, remote nodes connected (ClusterStatus.connected)."""
        hosts = online or [*self.pacemaker_hosts(), *self.remote_hosts()]
        wanted = sorted(h.name for h in hosts)
        found: List[Optional[pacemakerhosts.ClusterStatus]] = [None]

        def up(status: pacemakerhosts.ClusterStatus, host: Host) -> bool:
            if host.runs_remoted:
                return status.connected(host.name)
            return host.name in status.online()

        def ready() -> bool:
            status = found[0] = self.cluster_status()
            return status is not None and status.quorum and all(up(status, h) for h in hosts)

        def diagnostics() -> str:
            return f"saw {found[0]}\n" + "\n".join(
                f"--- {h.name}\n{h.pacemaker_log()[-3000:]}" for h in self.hosts
            )

        pacemakerhosts.wait_for(ready, f"Pacemaker with {wanted} online", timeout, diagnostics)
        assert found[0] is not None
        return found[0]

    def restart_pacemaker_remote(
        self, remote: Host, timeout: float = 90, wait: bool = True
    ) -> None:
        """Stop pacemaker-remoted, wait until the cluster sees the remote node offline, start
        it, and (``wait``) wait until the cluster has connected again (a new TLS handshake).

        A stop can race the controller: when pacemaker-remoted is gone before the controller
        has acknowledged its shutdown request, the lost connection is recorded as a failed
        monitor and the node is not started again until that failure is cleared (seen on a
        loaded host: "node2 will not be started under current conditions").  The failure is
        cleared before the start, as an admin would (crm_resource --cleanup)."""
        remote.stop_pacemaker()

        def offline() -> bool:
            status = self.cluster_status()
            node = status.nodes.get(remote.name) if status else None
            return node is not None and not node.online

        pacemakerhosts.wait_for(
            offline, f"{remote.name} to be seen offline", timeout, self._pacemaker_diagnostics
        )
        self.pacemaker_hosts()[0].run(["crm_resource", "--cleanup", "--resource", remote.name])
        remote.start_pacemaker()
        if wait:
            self.wait_for_pacemaker(timeout=timeout)

    def _pacemaker_diagnostics(self) -> str:
        return f"saw {self.cluster_status()}\n" + "\n".join(
            f"--- {h.name}\n{h.pacemaker_log()[-3000:]}" for h in self.hosts
        )

    def add_remote_hosts(
        self,
        count: int,
        key: Optional[bytes] = None,
        key_path: str = pacemakerhosts.PACEMAKER_KEY_PATH,
        wait: bool = True,
        environment: Optional[Dict[str, str]] = None,
        pacemaker_accounts: bool = True,
    ) -> List[Host]:
        """Pacemaker Remote nodes: hosts with sshd and pacemaker-remoted (port 3121), each
        added to the running cluster's CIB as an ocf:pacemaker:remote resource named after
        the host, whose server is its address. Their key (root:haclient 0640 at
        ``key_path``) is ``key``, by default the one the first cluster node's Pacemaker
        reads (its /etc/pacemaker/authkey, else corosync's key). ``environment``: their
        /etc/default/pacemaker (PCMK_authkey_location=...). Without ``pacemaker_accounts``
        they have no user hacluster and no group haclient (a remote node built without
        Pacemaker's packages): their directories and key (0600, as an admin copied it) are
        root's."""
        reason = pacemakerhosts.remoted_unavailable_reason()
        if reason:
            raise TestHostError(reason)
        cluster = self.pacemaker_hosts()
        if not cluster:
            raise TestHostError("add the cluster first: add_hosts(n, pacemaker=True)")
        self.wait_for_pacemaker(cluster)
        if key is None:
            own = cluster[0].path(pacemakerhosts.PACEMAKER_KEY_PATH)
            key = own.read_bytes() if own.exists() else cluster[0].read_key()
        new = self.add_hosts(count, corosync=False)
        for host in new:
            host.runs_remoted = True
            pacemakerhosts.install_remoted(host)
            if pacemaker_accounts:
                pacemakerhosts.prepare_dirs(host)
                host.write_key(key, key_path, mode=pacemakerhosts.DEBIAN_KEY_MODE, group="haclient")
            else:
                host.remove_accounts("hacluster", "haclient")
                pacemakerhosts.prepare_dirs(host, owner="root")
                host.write_key(key, key_path, mode=0o600)
            if environment:
                pacemakerhosts.set_defaults(host, **environment)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda h: h.start_pacemaker(), new))
        for host in new:
            pacemakerhosts.add_remote_resource(cluster[0], host)
        if wait:
            self.wait_for_pacemaker()
        return new

    def _write_ssh_config(self) -> None:
        self.known_hosts.write_text("".join(h.host_key_line() + "\n" for h in self.hosts))
        blocks = [
            f"Host {h.name}\n"
            f"    HostName {h.address}\n"
            "    User root\n"
            "    Port 22\n"
            f"    IdentityFile {self.identity}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.known_hosts}\n"
            "    GlobalKnownHostsFile /dev/null\n"
            "    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n"
            "    ConnectTimeout 5\n"
            "    LogLevel ERROR\n"
            for h in self.hosts
        ]
        self.ssh_config.write_text("\n".join(blocks))

    def corosync_hosts(self) -> List[Host]:
        return [h for h in self.hosts if h.runs_corosync]

    def wait_for_membership(
        self, expected: Optional[Dict[Host, Set[int]]] = None, timeout: float = 40
    ) -> None:
        """Wait until each host sees the expected members (default: all corosync hosts)."""
        cluster = self.corosync_hosts()
        everyone = {h.nodeid for h in cluster}
        wanted = expected or {h: everyone for h in cluster}
        deadline = time.monotonic() + timeout
        seen: Dict[str, Set[int]] = {}
        while time.monotonic() < deadline:
            seen = {h.name: h.members() for h in wanted}
            if all(seen[h.name] == members for h, members in wanted.items()):
                return
            time.sleep(0.2)
        tails = "\n".join(f"--- {h.name}\n{h.diagnostics()}" for h in wanted)
        raise TestHostError(f"membership not reached: saw {seen}\n{tails}")

    def ring_ids(self) -> Dict[str, Optional[str]]:
        def ring(host: Host) -> Optional[str]:
            output = host.run(["corosync-quorumtool", "-s"], check=False).stdout
            for line in output.splitlines():
                if line.startswith("Ring ID:"):
                    return line.split(":", 1)[1].strip()
            return None

        return {h.name: ring(h) for h in self.corosync_hosts()}

    def wait_for_stable_ring(
        self, seconds: float = 2.0, timeout: float = 30
    ) -> Dict[str, Optional[str]]:
        """Wait until no host's ring id has changed for ``seconds`` (a fresh cluster settles)."""
        deadline = time.monotonic() + timeout
        last = self.ring_ids()
        since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            current = self.ring_ids()
            if current != last:
                last, since = current, time.monotonic()
            elif time.monotonic() - since >= seconds:
                return current
        raise TestHostError(f"ring ids did not settle: {last}")

    # ------------------------------------------------------------------ admin

    def admin_command(self, argv: Sequence[str]) -> List[str]:
        return ["ip", "netns", "exec", self.admin_ns, *argv]

    def run_admin(
        self,
        argv: Sequence[str],
        input: Optional[bytes] = None,
        timeout: float = 120,
        env: Optional[Dict[str, str]] = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.admin_command(argv),
            input=input.decode("latin-1") if input is not None else None,
            capture_output=True,
            text=True,
            encoding="latin-1",
            timeout=timeout,
            env=env,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def popen_admin(
        self, argv: Sequence[str], env: Optional[Dict[str, str]] = None
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.admin_command(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

    # ------------------------------------------------------------------ teardown

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for host in self.hosts:
            host.kill_daemon_corosync()
        _teardown(self.state)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _teardown(state: Dict[str, Any]) -> None:
    """End the recorded processes (only if still the same programs) and namespaces."""
    processes = [p for p in state.get("processes", []) if isinstance(p, list)]
    # Whatever runs in a host's mount namespace belongs to the host, whoever its parent is
    # now (pacemakerd's daemons outlive a pacemakerd killed first).
    own = _mount_namespace(os.getpid())
    host_namespaces = {
        ns
        for pid, cmdline in processes
        if cmdline and _identity(pid) == cmdline
        for ns in [_mount_namespace(pid)]
        if ns is not None and ns != own
    }
    alive = []
    for pid, cmdline in reversed(processes):
        if _identity(pid) == cmdline and cmdline:
            # Frozen first, so that no parent (pacemakerd) respawns a child killed below.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
            # Their children too: sshd's connection processes, shells run over ssh.
            for child in _descendants(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                os.kill(pid, signal.SIGCONT)
                alive.append((pid, cmdline))
    for pid in _in_namespaces(host_namespaces):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive and time.monotonic() < deadline:
        alive = [(pid, cmd) for pid, cmd in alive if _identity(pid) == cmd and not _zombie(pid)]
        time.sleep(0.05)
    for pid, _ in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid, _ in processes:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
    for name in reversed([n for n in state.get("namespaces", []) if isinstance(n, str)]):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    workdir = state.get("workdir")
    if isinstance(workdir, str) and workdir.startswith(tempfile.gettempdir()):
        shutil.rmtree(workdir, ignore_errors=True)


def _corosync2_binds(version: str) -> List[str]:
    """Mounts that put the 2.x build's programs over Debian's in /usr/sbin (in a host's
    mount namespace only); their RUNPATH finds the build's own libraries."""
    from tests.corosync2 import Corosync2Unavailable, get_build

    try:
        build = get_build(version)
    except Corosync2Unavailable as exc:
        raise TestHostError(str(exc)) from None
    return [
        f"mount --bind {program} /usr/sbin/{program.name}"
        for program in sorted(build.sbin.iterdir())
        if Path("/usr/sbin", program.name).is_file()
    ]


def _conf_tail(nodes: str) -> str:
    """What both generations' corosync.conf end with: nodelist, votequorum, the log file."""
    return f"""nodelist {{
{nodes}}}

quorum {{
    provider: corosync_votequorum
}}

logging {{
    to_logfile: yes
    logfile: {LOG_PATH}
    to_stderr: yes
    to_syslog: no
    timestamp: on
}}
"""


def _corosync2_conf(subnet: str, hosts: Sequence[Host], extra_totem: str) -> str:
    """corosync.conf for 2.x: udpu, crypto, nodelist, votequorum, IPC per namespace.
    2.x's parser wants one ``key: value`` per line; the key file is 2.x's default path."""
    nodes = "".join(
        f"    node {{\n        ring0_addr: {h.address}\n        nodeid: {h.nodeid}\n    }}\n"
        for h in hosts
    )
    totem = f"""totem {{
    version: 2
    cluster_name: {CLUSTER_NAME}
    transport: udpu
    crypto_cipher: aes256
    crypto_hash: sha256
    token: 3000
    consensus: 3600
    join: 50
    interface {{
        ringnumber: 0
        bindnetaddr: {subnet}.0
        mcastport: 5405
    }}
{extra_totem}}}

"""
    return totem + _conf_tail(nodes) + "\nqb {\n    ipc_type: socket\n}\n"


def _mount_namespace(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _in_namespaces(namespaces: Set[str]) -> List[int]:
    """Every process whose mount namespace is one of ``namespaces``."""
    if not namespaces:
        return []
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and _mount_namespace(int(entry)) in namespaces
    ]


def _descendants(root: int) -> List[int]:
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found: List[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def clean_stale_runs() -> None:
    """Tear down what runs whose owner process is gone left behind."""
    if not STATE_ROOT.exists():
        return
    for directory in STATE_ROOT.iterdir():
        try:
            state = json.loads((directory / "state.json").read_text())
        except (OSError, ValueError):
            continue
        owner = state.get("owner")
        if isinstance(owner, int) and _identity(owner) == state.get("owner_identity"):
            continue  # a live run
        _teardown(state)
        shutil.rmtree(directory, ignore_errors=True)


def _allocate() -> tuple[str, str]:
    """A short unique prefix and a /24 no live run uses (10.250.X)."""
    used = set()
    if STATE_ROOT.exists():
        for directory in STATE_ROOT.iterdir():
            with contextlib.suppress(OSError, ValueError):
                used.add(json.loads((directory / "state.json").read_text())["subnet"])
    for attempt in range(250):
        third = (os.getpid() + attempt) % 250 + 1
        subnet = f"10.250.{third}"
        prefix = f"ck{os.getpid() % 100000}{'abcdefghij'[attempt % 10]}"
        if subnet not in used and not (STATE_ROOT / prefix).exists():
            return prefix, subnet
    raise TestHostError("no free test subnet")


@contextlib.contextmanager
def network(private_home: bool = False) -> Iterator[Network]:
    """A network for a bench or a script: torn down however the block ends."""
    net = Network(private_home)
    try:
        yield net
    finally:
        net.close()
