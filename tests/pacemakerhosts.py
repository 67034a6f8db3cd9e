"""Pacemaker on the test hosts: cluster nodes (corosync + pacemakerd) and remote nodes
(pacemaker-remoted), from Debian's packages.

Cluster nodes run the machine's ``pacemakerd`` (Debian's ``pacemaker``, which
scripts/test.sh installs).  Remote nodes run ``pacemaker-remoted`` from Debian's
``pacemaker-remote``, which conflicts with ``pacemaker`` and so cannot be installed
beside it: its .deb is fetched with ``apt-get download`` once per machine and unpacked
with ``dpkg -x`` into ``/var/cache/corokey-tests/pacemaker-remote-HASH/`` (HASH: the
first 16 hex digits of the .deb's SHA-256 as apt's index gives it, so a new package
version unpacks anew and a cached one needs no network).  Its libraries are those of
``pacemaker``'s dependencies, already installed.

The daemons get the environment systemd would give them (the unit files'
``EnvironmentFile=-/etc/default/pacemaker``): the host's private /etc/default/pacemaker.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional

if TYPE_CHECKING:
    from tests.testhosts import Host

CACHE_ROOT = Path(os.environ.get("COROKEY_TEST_CACHE", "/var/cache/corokey-tests"))
PACEMAKER_KEY_PATH = "/etc/pacemaker/authkey"
DEFAULTS_PATH = "/etc/default/pacemaker"
LOG_PATH = "/var/log/pacemaker/pacemaker.log"
REMOTE_PORT = 3121
#: Debian's pacemaker-common postinst: 4096 random bytes, root:haclient 0640.
DEBIAN_KEY_SIZE = 4096
DEBIAN_KEY_MODE = 0o640
#: What Debian's packages create under /var/lib/pacemaker (hacluster:haclient 0750).
LIB_SUBDIRS = ("blackbox", "cib", "cores", "pengine")
DC_DEADTIME = "3s"
RECONNECT_INTERVAL = "5s"
#: Cluster options of the tests' CIB (seeded before the first start): no fencing device
#: exists, so stonith is off (a test that needs it turns it on); a node that starts waits
#: dc-deadtime (default 20 s) for a DC before it calls an election: 3 s makes a fresh
#: cluster ready in a few seconds, still well above the hosts' corosync token (3 s).
TEST_CLUSTER_OPTIONS = {"stonith-enabled": "false", "dc-deadtime": DC_DEADTIME}


class PacemakerUnavailable(RuntimeError):
    """Pacemaker or pacemaker-remoted cannot run on these test hosts."""


def unavailable_reason() -> Optional[str]:
    """Why Pacemaker test hosts cannot run here, or None when they can."""
    for program in ("/usr/sbin/pacemakerd", "/usr/sbin/crm_mon", "/usr/sbin/cibadmin"):
        if not Path(program).exists():
            return (
                f"{program} is not installed (sh scripts/test.sh installs pacemaker and "
                "pacemaker-cli-utils)"
            )
    try:
        pwd.getpwnam("hacluster")
        grp.getgrnam("haclient")
    except KeyError:
        return "user hacluster or group haclient is missing (Debian's pacemaker makes them)"
    if not Path(DEFAULTS_PATH).exists():
        return f"{DEFAULTS_PATH} is missing (Debian's pacemaker installs it)"
    return None


def remoted_unavailable_reason() -> Optional[str]:
    try:
        remoted_program()
    except PacemakerUnavailable as exc:
        return str(exc)
    return unavailable_reason()


# ---------------------------------------------------------------------- pacemaker-remoted


def _remote_deb_sha256() -> str:
    """The SHA-256 of the candidate pacemaker-remote .deb, from apt's index (no network)."""
    result = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", "pacemaker-remote"],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("SHA256:"):
            return line.split(":", 1)[1].strip()
    raise PacemakerUnavailable(
        "apt knows no pacemaker-remote package (apt-get update, on Debian 12 or later)"
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def remoted_program() -> Path:
    """``pacemaker-remoted`` unpacked from Debian's pacemaker-remote, cached per .deb."""
    sha256 = _remote_deb_sha256()
    target = CACHE_ROOT / f"pacemaker-remote-{sha256[:16]}"
    program = target / "usr" / "sbin" / "pacemaker-remoted"
    if program.exists():
        return program
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE_ROOT / f"pacemaker-remote-{sha256[:16]}.lock"):
        if program.exists():
            return program
        with tempfile.TemporaryDirectory(dir=CACHE_ROOT, prefix=".pacemaker-remote-") as temp:
            download = subprocess.run(
                ["apt-get", "download", "pacemaker-remote"],
                cwd=temp,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            debs = list(Path(temp).glob("pacemaker-remote_*.deb"))
            if download.returncode != 0 or len(debs) != 1:
                raise PacemakerUnavailable(
                    f"apt-get download pacemaker-remote failed: {download.stderr.strip()}"
                )
            if hashlib.sha256(debs[0].read_bytes()).hexdigest() != sha256:
                raise PacemakerUnavailable(f"{debs[0].name} does not match apt's SHA-256")
            unpacked = Path(temp) / "root"
            subprocess.run(["dpkg", "-x", str(debs[0]), str(unpacked)], check=True, timeout=60)
            os.rename(unpacked, target)
    return program


# ---------------------------------------------------------------------- host state


def install_remoted(host: Host) -> None:
    """pacemaker-remoted on the host's PATH, as Debian's pacemaker-remote installs it
    (/usr/sbin there): the unpacked package's usr/sbin bind-mounted at /usr/local/sbin in
    the host's mount namespace (empty on the machine and on root's PATH), so that what
    corokey asks a node (``command -v pacemaker-remoted``, its version) finds it."""
    sbin = remoted_program().parent
    host.run(["mount", "--bind", str(sbin), "/usr/local/sbin"])


def prepare_dirs(host: Host, owner: str = "hacluster") -> None:
    """The private Pacemaker directories as Debian's packages leave them (hacluster:haclient;
    ``owner`` "root": root:root, where those accounts do not exist)."""
    group = "haclient" if owner == "hacluster" else owner
    lib = host.path("/var/lib/pacemaker")
    for name in LIB_SUBDIRS:
        (lib / name).mkdir(mode=0o750, exist_ok=True)
        shutil.chown(lib / name, owner, group)
    log = host.path("/var/log/pacemaker")
    (log / "bundles").mkdir(mode=0o770, exist_ok=True)
    for directory in (log, log / "bundles"):
        shutil.chown(directory, owner, group)
        directory.chmod(0o770)


def seed_cib(host: Host, options: Dict[str, str]) -> None:
    """A first cib.xml holding ``options`` (pacemaker-based accepts one without a .sig
    file: lib/cib/cib_file.c cib_file_verify_digest), so the cluster starts with them."""
    nvpairs = "".join(
        f'<nvpair id="cib-bootstrap-options-{name}" name="{name}" value="{value}"/>'
        for name, value in options.items()
    )
    cib = host.path("/var/lib/pacemaker/cib/cib.xml")
    cib.write_text(
        '<cib validate-with="pacemaker-3.0" epoch="1" num_updates="0" admin_epoch="0">'
        "<configuration><crm_config>"
        f'<cluster_property_set id="cib-bootstrap-options">{nvpairs}</cluster_property_set>'
        "</crm_config><nodes/><resources/><constraints/></configuration><status/></cib>\n"
    )
    cib.chmod(0o600)
    shutil.chown(cib, "hacluster", "haclient")


def environment(host: Host) -> Dict[str, str]:
    """The daemons' environment: PATH plus the host's /etc/default/pacemaker, read as
    systemd's EnvironmentFile= reads a plain ``NAME=value`` file."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    try:
        text = host.path(DEFAULTS_PATH).read_text()
    except FileNotFoundError:
        return env
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        name, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[name.strip()] = value
    return env


def set_defaults(host: Host, **values: str) -> None:
    """Write the host's /etc/default/pacemaker (``PCMK_authkey_location=...``); the
    daemons read it when they start."""
    host.path(DEFAULTS_PATH).write_text("".join(f"{k}={v}\n" for k, v in values.items()))


# ---------------------------------------------------------------------- status


@dataclass
class NodeStatus:
    name: str
    online: bool
    type: str  # "member" or "remote"
    is_dc: bool


@dataclass
class ClusterStatus:
    """What ``crm_mon --output-as=xml`` says, the parts tests use."""

    dc: Optional[str]
    quorum: bool
    nodes: Dict[str, NodeStatus] = field(default_factory=dict)
    #: resource id -> the node names it is active on
    resources: Dict[str, List[str]] = field(default_factory=dict)
    #: resource id -> its role ("Started", "Starting", "Stopped", ...) and failed flag
    roles: Dict[str, str] = field(default_factory=dict)
    failed: Dict[str, bool] = field(default_factory=dict)
    stonith_enabled: bool = True

    def connected(self, remote: str) -> bool:
        """A remote node is connected when it is online and its connection resource (of
        the same id, as add_remote_resource makes it) is started and not failed: while
        the resource is starting crm_mon shows the node online already, even when the TLS
        handshake then fails (seen with a wrong key)."""
        node = self.nodes.get(remote)
        return (
            node is not None
            and node.online
            and self.roles.get(remote) == "Started"
            and not self.failed.get(remote, False)
        )

    def online(self, node_type: Optional[str] = None) -> List[str]:
        return sorted(
            n.name
            for n in self.nodes.values()
            if n.online and (node_type is None or n.type == node_type)
        )


def parse_crm_mon(xml_text: str) -> ClusterStatus:
    root = ET.fromstring(xml_text)  # noqa: S314 - crm_mon of a test host
    dc = root.find("./summary/current_dc")
    present = dc is not None and dc.get("present") == "true"
    status = ClusterStatus(
        dc=dc.get("name") if present and dc is not None else None,
        quorum=present and dc is not None and dc.get("with_quorum") == "true",
    )
    options = root.find("./summary/cluster_options")
    if options is not None:
        status.stonith_enabled = options.get("stonith-enabled") == "true"
    for node in root.iterfind("./nodes/node"):
        name = node.get("name", "")
        status.nodes[name] = NodeStatus(
            name=name,
            online=node.get("online") == "true",
            type=node.get("type", ""),
            is_dc=node.get("is_dc") == "true",
        )
    for resource in root.iter("resource"):
        rid = resource.get("id", "")
        status.resources[rid] = [n.get("name", "") for n in resource.iterfind("node")]
        status.roles[rid] = resource.get("role", "")
        status.failed[rid] = resource.get("failed") == "true"
    return status


def crm_mon(host: Host) -> Optional[ClusterStatus]:
    """The cluster's status as ``host`` sees it; None while its Pacemaker cannot say."""
    result = host.run(["crm_mon", "-1", "--output-as=xml"], check=False, timeout=30)
    if "<pacemaker-result" not in result.stdout or "<summary>" not in result.stdout:
        return None
    try:
        return parse_crm_mon(result.stdout)
    except ET.ParseError:
        return None


# ---------------------------------------------------------------------- the CIB


def set_cluster_options(host: Host, options: Dict[str, str]) -> None:
    for name, value in options.items():
        host.run(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value])


def remote_primitive(remote: Host, monitor: str = "5s") -> str:
    """An ocf:pacemaker:remote resource whose id is the remote host's name (so its
    Pacemaker node name is the ssh name too) and whose server is its address."""
    rid = remote.name
    return (
        f'<primitive class="ocf" provider="pacemaker" type="remote" id="{rid}">'
        f'<instance_attributes id="{rid}-ia">'
        f'<nvpair id="{rid}-server" name="server" value="{remote.address}"/>'
        f'<nvpair id="{rid}-port" name="port" value="{REMOTE_PORT}"/>'
        f'<nvpair id="{rid}-reconnect" name="reconnect_interval" value="{RECONNECT_INTERVAL}"/>'
        "</instance_attributes>"
        "<operations>"
        f'<op id="{rid}-monitor" name="monitor" interval="{monitor}" timeout="15s"/>'
        "</operations>"
        "</primitive>"
    )


def add_remote_resource(cluster_node: Host, remote: Host) -> None:
    cluster_node.run(
        ["cibadmin", "--create", "--scope", "resources", "--xml-text", remote_primitive(remote)]
    )


# ---------------------------------------------------------------------- logs


def log_text(host: Host) -> str:
    try:
        return host.path(LOG_PATH).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for(condition: object, what: str, timeout: float, diagnostics: object) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.3)
    from tests.testhosts import TestHostError

    raise TestHostError(f"timed out waiting for {what}:\n{diagnostics()}")  # type: ignore[operator]
