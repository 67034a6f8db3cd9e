"""Two corosync clusters of three test hosts each, driven by ansible-playbook.

One Network (one bridge, one admin namespace) with six hosts: node1-3 form
cluster alpha, node4-6 cluster beta (each host's corosync.conf lists only its own
cluster's nodes, and the two clusters start with different keys).  Ansible runs
in the admin namespace with the network's ssh_config and known_hosts.
"""

import os
import time
from pathlib import Path
from typing import Dict, List, Optional

from corokey.key import generate_key
from tests.ansible.helpers import COLLECTION, VENV_BIN
from tests.testhosts import Host, Network

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
CLUSTERS = {"alpha": (1, 2, 3), "beta": (4, 5, 6)}


def failure_summary(output: str, lines_after: int = 30) -> str:
    """The failed tasks of an ansible-playbook run, put first: a CI log shows the head
    and the tail of a long output, and -vvv puts the failure in its middle."""
    lines = output.splitlines()
    picked: List[str] = []
    for index, line in enumerate(lines):
        if line.lstrip().startswith(("fatal:", "failed:")) or "FAILED!" in line:
            task = next(
                (lines[i] for i in range(index - 1, -1, -1) if lines[i].startswith("TASK [")),
                "TASK [?]",
            )
            picked += [task, *lines[index : index + lines_after], ""]
    if not picked:
        return ""
    return "=== failed tasks ===\n" + "\n".join(picked) + "\n=== whole output ===\n"


class Fleet:
    def __init__(self, net: Network, workdir: Path, bin_dir: Path = VENV_BIN) -> None:
        self.net = net
        self.workdir = workdir
        self.bin_dir = bin_dir  # the ansible-core release that runs the playbooks
        self.hosts = net.add_hosts(6)
        net.wait_for_membership()  # one cluster of six first, as add_hosts makes it
        for host in self.hosts:
            host.stop_corosync()
        for ids in CLUSTERS.values():
            members = [h for h in self.hosts if h.nodeid in ids]
            key = generate_key()
            for host in members:
                host.write_corosync_conf(members)
                host.write_key(key)
        for host in self.hosts:
            host.start_corosync(wait=False)
        self.wait_whole()
        self.set_up_controller()

    def set_up_controller(self, groups: "Optional[Dict[str, List[str]]]" = None) -> None:
        """The controller's key store, inventory (``groups``, by default the two
        clusters') and ansible.cfg, in the work directory."""
        workdir = self.workdir
        self.keys = workdir / "controller-keys"
        self.inventory = workdir / "inventory.ini"
        self.inventory.write_text(self._inventory(groups))
        self.config = workdir / "ansible.cfg"
        self.config.write_text(
            "[defaults]\n"
            "forks = 6\n"
            "host_key_checking = True\n"
            f"local_tmp = {workdir / 'ansible-local'}\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
            f"control_path_dir = {workdir / 'cp'}\n"
        )

    def _inventory(
        self, groups: "Optional[Dict[str, List[str]]]" = None, cluster_vars: bool = True
    ) -> str:
        """Groups of host lines (each ``name [var=value ...]``), by default one per cluster."""
        if groups is None:
            groups = {name: [f"node{i}" for i in ids] for name, ids in CLUSTERS.items()}
        lines = []
        for name, hosts in groups.items():
            lines.append(f"[{name}]")
            lines += hosts
            if cluster_vars:
                lines += [f"[{name}:vars]", f"corokey_cluster={name}"]
            lines.append("")
        lines += [
            "[all:vars]",
            "ansible_python_interpreter=/usr/bin/python3",
            f"ansible_ssh_common_args=-F {self.net.ssh_config}",
            "",
        ]
        return "\n".join(lines)

    def cluster(self, name: str) -> List[Host]:
        return [h for h in self.hosts if h.nodeid in CLUSTERS[name]]

    def wait_whole(self, timeout: float = 60) -> None:
        expected = {h: set(ids) for ids in CLUSTERS.values() for h in self.hosts if h.nodeid in ids}
        self.net.wait_for_membership(expected, timeout=timeout)
        self.net.wait_for_stable_ring()

    def write_inventory(
        self, name: str, groups: "Dict[str, List[str]]", cluster_vars: bool = True
    ) -> Path:
        path = self.workdir / name
        path.write_text(self._inventory(groups, cluster_vars))
        return path

    def playbook(
        self,
        name: str,
        *options: str,
        keys: Optional[Path] = None,
        inventory: Optional[Path] = None,
    ) -> "tuple[int, str]":
        env = dict(os.environ)
        env.update(
            ANSIBLE_CONFIG=str(self.config),
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTION.parent.parent.parent),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            COROKEY_KEY_DIR=str(keys or self.keys),
            PATH=f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}",
        )
        result = self.net.run_admin(
            [
                str(self.bin_dir / "ansible-playbook"),
                "-i",
                str(inventory or self.inventory),
                str(PLAYBOOKS / name),
                *options,
            ],
            env=env,
            timeout=600,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            output = failure_summary(output) + output
        return result.returncode, output

    def controller_key(self, cluster: str, keys: Optional[Path] = None) -> bytes:
        return ((keys or self.keys) / cluster / "corosync.key").read_bytes()

    def node_keys(self) -> Dict[str, bytes]:
        """Each host's key; a link (whose target is inside the host) reads as b"link"."""
        return {
            h.name: b"link" if h.path("/etc/corosync/authkey").is_symlink() else h.read_key()
            for h in self.hosts
        }

    def key_dir_entries(self, host: Host) -> List[str]:
        return sorted(p.name for p in host.path("/etc/corosync").iterdir() if "authkey" in p.name)

    def reload(self, cluster: str) -> None:
        self.cluster(cluster)[0].run(["corosync-cfgtool", "-R"])
        time.sleep(1)
