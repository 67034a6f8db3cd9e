"""The tools compared by bench/push_latency.py: each puts one key file on N hosts.

Every tool gets the same job and the same ssh_config (one per RTT and connection mode, written
by :func:`ssh_config`): install the key at /etc/corosync/authkey on node1..nodeN, mode 0400,
owned by root.  A tool is a shell command line run in the admin namespace; the key is in
``job.keyfile`` (mode 0400) and on the command's stdin.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Sequence

DEST = "/etc/corosync/authkey"
RELAY = Path(__file__).resolve().parent / "latency_relay.py"
#: OpenSSH 9.2's default key exchange, pinned so that every tool does the same one.
KEX = "sntrup761x25519-sha512@openssh.com"


class Job(NamedTuple):
    hosts: Sequence[str]  # node1..nodeN
    ssh_config: Path
    keyfile: Path
    workdir: Path  # a fresh directory of this run (inventories, cold control sockets)
    warm: bool  # masters are open: the ssh_config names them (ControlPath)
    control_base: Path  # XDG_RUNTIME_DIR under which the warm masters' sockets are
    python: str


class Tool(NamedTuple):
    name: str
    command: Callable[[Job], str]  # a sh command line
    env: Callable[[Job], Dict[str, str]]
    verified: str  # does the tool itself check what the nodes hold?
    atomic: str  # can a node ever hold a partial or missing key?
    max_hosts: int = 32


def ssh_config(
    hosts: Sequence[tuple[str, str]],
    identity: Path,
    known_hosts: Path,
    rtt_ms: int,
    relay_cgroup: Path,
    control_dir: Path | None,
) -> str:
    """One ssh_config for every tool: same key exchange, no compression, the latency relay as
    ProxyCommand (moved into its own cgroup first, so its CPU is counted apart), and with
    ``control_dir`` the shared ControlMaster sockets of the warm runs."""
    proxy = (
        f"/bin/sh -c 'echo $$ > {relay_cgroup}/cgroup.procs; "
        f"exec {sys.executable} -S {RELAY} {rtt_ms} %h %p'"
    )
    common = [
        "    User root",
        "    Port 22",
        f"    IdentityFile {identity}",
        "    IdentitiesOnly yes",
        f"    UserKnownHostsFile {known_hosts}",
        "    GlobalKnownHostsFile /dev/null",
        "    StrictHostKeyChecking yes",
        "    BatchMode yes",
        "    Compression no",
        f"    KexAlgorithms {KEX}",
        "    ConnectTimeout 30",
        "    ServerAliveInterval 0",
        "    LogLevel ERROR",
        f"    ProxyCommand {proxy}",
    ]
    if control_dir is not None:
        common += [
            "    ControlMaster auto",
            f"    ControlPath {control_dir}/%C",
            "    ControlPersist yes",
        ]
    blocks = [
        f"Host {name}\n    HostName {address}\n" + "\n".join(common) + "\n"
        for name, address in hosts
    ]
    return "\n".join(blocks)


def _quote(value: object) -> str:
    return shlex.quote(str(value))


def _names(job: Job) -> str:
    return ",".join(job.hosts)


def _plain_env(job: Job) -> Dict[str, str]:
    return {}


# ---------------------------------------------------------------------------- corokey


def _corokey_env(job: Job) -> Dict[str, str]:
    # corokey shares one connection per node under $XDG_RUNTIME_DIR/corokey/ssh: cold, a
    # fresh directory (its own masters, kept across its steps); warm, the directory where
    # the benchmark opened the masters for every tool.
    return {"XDG_RUNTIME_DIR": str(job.control_base if job.warm else job.workdir)}


def _corokey(subcommands: Sequence[str]) -> Callable[[Job], str]:
    def command(job: Job) -> str:
        common = f"--nodes {_names(job)} -F {_quote(job.ssh_config)}"
        steps = []
        for sub in subcommands:
            source = " - " if sub == "push" else " "
            steps.append(f"{_quote(job.python)} -m corokey {sub}{source}{common} >/dev/null")
        return " && ".join(steps)

    return command


# ---------------------------------------------------------------------------- Ansible

PLAYBOOK = f"""- hosts: all
  gather_facts: false
  tasks:
    - name: the key
      ansible.builtin.copy:
        src: "{{{{ keyfile }}}}"
        dest: {DEST}
        mode: "0400"
        owner: root
        group: root
"""


def _ansible_env(job: Job) -> Dict[str, str]:
    # Ansible's default ssh_args are "-C -o ControlMaster=auto -o ControlPersist=60s": the
    # same without -C (no compression, as for every tool) when cold; warm, none of its own,
    # so the ssh_config's masters are used.
    ssh_args = f"-F {job.ssh_config}"
    if not job.warm:
        ssh_args += " -o ControlMaster=auto -o ControlPersist=60s"
    return {
        "ANSIBLE_CONFIG": str(job.workdir / "ansible.cfg"),  # none: every setting from here
        "ANSIBLE_SSH_ARGS": ssh_args,
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(job.workdir / "cp"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_FORKS": str(len(job.hosts)),
        "ANSIBLE_LOCAL_TEMP": str(job.workdir / "ansible-local"),
        "ANSIBLE_HOME": str(job.workdir / "ansible-home"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
    }


def _ansible(job: Job) -> str:
    inventory = job.workdir / "inventory.ini"
    inventory.write_text("".join(f"{h}\n" for h in job.hosts))
    playbook = job.workdir / "key.yml"
    playbook.write_text(PLAYBOOK)
    binary = Path(job.python).parent / "ansible-playbook"
    return (
        f"{_quote(binary)} -i {_quote(inventory)} -f {len(job.hosts)} "
        f"-e keyfile={_quote(job.keyfile)} {_quote(playbook)} >/dev/null"
    )


# ---------------------------------------------------------------------------- pssh, clush


def _pssh(legacy_scp: bool) -> Callable[[Job], str]:
    def command(job: Job) -> str:
        hosts = job.workdir / "hosts.txt"
        hosts.write_text("".join(f"{h}\n" for h in job.hosts))
        extra = f"-F {job.ssh_config}" + (" -O" if legacy_scp else "")
        common = f"-h {_quote(hosts)} -p {len(job.hosts)} -t 0"
        fix = f"chown root:root {DEST} && chmod 0400 {DEST}"
        return (
            f"parallel-scp {common} -x {_quote(extra)} {_quote(job.keyfile)} {DEST} >/dev/null"
            f" && parallel-ssh {common} -x {_quote('-F ' + str(job.ssh_config))} "
            f"{_quote(fix)} >/dev/null"
        )

    return command


def _clush(job: Job) -> str:
    return (
        f"clush -w {_quote(','.join(job.hosts))} -f {len(job.hosts)} "
        f"-o {_quote('-F ' + str(job.ssh_config))} --copy {_quote(job.keyfile)} --dest {DEST}"
    )


# ---------------------------------------------------------------------------- loops


def _one_node(job: Job, host: str) -> str:
    config = _quote(job.ssh_config)
    install = f"install -D --owner=0 --group=0 --mode=0400 /root/authkey.new {DEST}"
    return (
        f"scp -q -F {config} {_quote(job.keyfile)} {host}:/root/authkey.new && "
        f"ssh -F {config} {host} {_quote(install + ' && rm /root/authkey.new')}"
    )


def _loop_parallel(job: Job) -> str:
    starts = " ".join(f'( {_one_node(job, h)} ) & pids="$pids $!";' for h in job.hosts)
    return f'pids=""; {starts} rc=0; for p in $pids; do wait "$p" || rc=1; done; exit $rc'


def _loop_sequential(job: Job) -> str:
    return "set -e; " + "; ".join(_one_node(job, h) for h in job.hosts)


def _ssh_true(job: Job) -> str:
    starts = " ".join(
        f'ssh -F {_quote(job.ssh_config)} {h} true & pids="$pids $!";' for h in job.hosts
    )
    return f'pids=""; {starts} rc=0; for p in $pids; do wait "$p" || rc=1; done; exit $rc'


# verified: whether the tool itself checks what a node holds afterwards; atomic: whether a
# node can ever hold a partial, missing or wrongly-moded key (from how each tool writes).
ALL_OR_NOTHING = "yes: rename, all nodes or none"
IN_PLACE = "no: written in place"
TOOLS: List[Tool] = [
    Tool("corokey push", _corokey(["push"]), _corokey_env, "yes: read back", ALL_OR_NOTHING),
    Tool(
        "corokey push+verify",
        _corokey(["push", "verify"]),
        _corokey_env,
        "yes: read back, verify",
        ALL_OR_NOTHING,
    ),
    Tool("ansible copy", _ansible, _ansible_env, "yes: checksum", "per node: rename"),
    Tool("parallel-scp + ssh", _pssh(False), _plain_env, "no", IN_PLACE + ", then chmod"),
    Tool("parallel-scp -O + ssh", _pssh(True), _plain_env, "no", IN_PLACE + ", then chmod"),
    Tool("clush --copy", _clush, _plain_env, "no", IN_PLACE),
    Tool("scp+ssh loop, parallel", _loop_parallel, _plain_env, "no", "no: install unlinks first"),
    Tool(
        "scp+ssh loop, sequential",
        _loop_sequential,
        _plain_env,
        "no",
        "no: install unlinks first",
        max_hosts=8,
    ),
]
#: Calibration of the relay: a bare ssh connection running `true` (not a way to copy a key).
SSH_TRUE = Tool("ssh true (calibration)", _ssh_true, _plain_env, "-", "-", max_hosts=1)


def tool_names() -> List[str]:
    return [t.name for t in TOOLS]


def by_name(name: str) -> Tool:
    for tool in [*TOOLS, SSH_TRUE]:
        if tool.name == name:
            return tool
    raise KeyError(name)


def check_installed(python: str) -> List[str]:
    """What is missing to run every tool, with the way to install it."""
    missing = []
    for binary, package in (("parallel-scp", "pssh"), ("clush", "clustershell")):
        if not any(
            os.access(os.path.join(d, binary), os.X_OK)
            for d in os.environ.get("PATH", "").split(":")
        ):
            missing.append(f"{binary}: apt-get install {package}")
    if not (Path(python).parent / "ansible-playbook").exists():
        missing.append("ansible-playbook: .venv/bin/pip install -e '.[bench]'")
    return missing
