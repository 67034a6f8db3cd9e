"""The corokey.corosync authkey role against the ha_cluster way, on 3 test hosts.

Both put a new key on every node of a running 3-node cluster from a controller:

* corokey: the ``authkey`` role (stage everywhere, commit when all agree) then
  ``authkey_reload`` once (``corosync-cfgtool -R``): the cluster stays up;
* ha_cluster's way: ``copy`` of the key (``content: "{{ key | b64decode }}"``, as the
  ha_cluster role writes it) then a restart of corosync on every node (here
  ``corosync-cfgtool -H --force`` from the playbook, then the harness starts corosync
  again, as systemd would).

Measured per round: wall time until the cluster is whole on the new key, and downtime
(how long any node saw less than the full membership, polled every 0.2 s).
Needs root. Run: .venv/bin/python bench/ansible_roles.py [ROUNDS]
"""

from __future__ import annotations

import base64
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.ansible.helpers import COLLECTION, VENV_BIN
from tests.testhosts import Network, network

from corokey.key import generate_key

COROKEY_PLAY = """
- name: Put the cluster's key on its nodes
  hosts: all
  gather_facts: false
  roles:
    - corokey.corosync.authkey
  post_tasks:
    - name: Make the running cluster take it
      corokey.corosync.authkey_reload:
        settle_seconds: 0
      when: inventory_hostname == corokey_cluster_nodes[0]
"""

HA_CLUSTER_PLAY = """
- name: Put the cluster's key on its nodes, the ha_cluster way
  hosts: all
  gather_facts: false
  tasks:
    - name: Distribute the key
      ansible.builtin.copy:
        content: "{{ key_b64 | b64decode }}"
        dest: /etc/corosync/authkey
        owner: root
        group: root
        mode: "0400"
      no_log: true
    - name: Stop corosync (the harness starts it again, as systemd would)
      ansible.builtin.command: corosync-cfgtool -H --force
      changed_when: true
"""


class Downtime:
    """Polls every host's membership; adds up the time any host saw less than all."""

    def __init__(self, net: Network) -> None:
        self.hosts = net.corosync_hosts()
        self.everyone = {h.nodeid for h in self.hosts}
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            whole = all(h.members() == self.everyone for h in self.hosts)
            now = time.perf_counter()
            if not whole:
                self.seconds += now - last
            last = now
            time.sleep(0.2)

    def __enter__(self) -> Downtime:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def setup(net: Network, workdir: Path) -> Dict[str, str]:
    inventory = workdir / "inventory.ini"
    inventory.write_text(
        "[cluster]\n"
        + "".join(f"{h.name}\n" for h in net.corosync_hosts())
        + "[all:vars]\ncorokey_cluster=bench\nansible_python_interpreter=/usr/bin/python3\n"
        + f"ansible_ssh_common_args=-F {net.ssh_config}\n"
    )
    config = workdir / "ansible.cfg"
    config.write_text(
        f"[defaults]\nforks = 6\nlocal_tmp = {workdir / 'local'}\n"
        f"[ssh_connection]\npipelining = True\ncontrol_path_dir = {workdir / 'cp'}\n"
    )
    (workdir / "corokey.yml").write_text(COROKEY_PLAY)
    (workdir / "ha_cluster.yml").write_text(HA_CLUSTER_PLAY)
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTION.parent.parent.parent),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def playbook(net: Network, workdir: Path, env: Dict[str, str], name: str, *extra: str) -> None:
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(workdir / "inventory.ini")]
    result = net.run_admin([*argv, str(workdir / name), *extra], env=env, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")


def corokey_round(
    net: Network, workdir: Path, env: Dict[str, str], round_no: int
) -> tuple[float, float]:
    keys = workdir / f"keys-{round_no}"  # a new key each round
    with Downtime(net) as downtime:
        started = time.perf_counter()
        playbook(net, workdir, {**env, "COROKEY_KEY_DIR": str(keys)}, "corokey.yml")
        net.wait_for_membership()
        elapsed = time.perf_counter() - started
    key = (keys / "bench" / "corosync.key").read_bytes()
    assert all(h.read_key() == key for h in net.corosync_hosts())
    return elapsed, downtime.seconds


def ha_cluster_round(net: Network, workdir: Path, env: Dict[str, str]) -> tuple[float, float]:
    key = generate_key()
    extra = ("-e", f"key_b64={base64.b64encode(key).decode()}")
    with Downtime(net) as downtime:
        started = time.perf_counter()
        playbook(net, workdir, env, "ha_cluster.yml", *extra)
        for host in net.corosync_hosts():
            host.stop_corosync()  # reap the stopped daemon
            host.start_corosync(wait=False)
        net.wait_for_membership(timeout=60)
        elapsed = time.perf_counter() - started
    return elapsed, downtime.seconds


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rows: Dict[str, List[tuple[float, float]]] = {
        "corokey authkey role + reload": [],
        "ha_cluster copy + restart": [],
    }
    with network() as net:
        net.add_hosts(3)
        net.wait_for_membership()
        net.wait_for_stable_ring(seconds=5)
        workdir = Path(tempfile.mkdtemp(prefix="ckansible"))
        env = setup(net, workdir)
        for round_no in range(rounds):
            rows["corokey authkey role + reload"].append(corokey_round(net, workdir, env, round_no))
            net.wait_for_stable_ring(seconds=5)
            rows["ha_cluster copy + restart"].append(ha_cluster_round(net, workdir, env))
            net.wait_for_stable_ring(seconds=5)
    print(f"{'way':<32} {'median wall s':>13} {'median downtime s':>17} {'max downtime s':>14}")
    for name, samples in rows.items():
        walls = [s[0] for s in samples]
        downs = [s[1] for s in samples]
        print(
            f"{name:<32} {statistics.median(walls):>13.1f} {statistics.median(downs):>17.1f} "
            f"{max(downs):>14.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
