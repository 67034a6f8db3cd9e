"""CIBs written by Pacemaker's own tools, for the CIB reader's tests.

``build(directory)`` makes a CIB with ``cibadmin`` and ``crm_resource`` in file mode
(``CIB_file``: no cluster runs), brings the cluster nodes up with ``crm_simulate`` (so
the status section is Pacemaker's), and captures ``cibadmin -Q`` and ``crm_mon
--output-as=xml`` as an admin would on a cluster node.  ``python3 -m
tests.pacemaker_cib`` rewrites the captured files in tests/data/pacemaker/.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

DATA = Path(__file__).parent / "data" / "pacemaker"
TOOLS = ("cibadmin", "crm_resource", "crm_simulate", "crm_mon")

#: What the CIB configures, as cibadmin --create takes it (section, XML).
RESOURCES: "List[str]" = [
    # A remote node named by its resource id, reached at its server.
    '<primitive id="remote1" class="ocf" provider="pacemaker" type="remote">'
    '<instance_attributes id="remote1-ia">'
    '<nvpair id="remote1-server" name="server" value="10.0.0.21"/>'
    '<nvpair id="remote1-port" name="port" value="3122"/>'
    "</instance_attributes></primitive>",
    # No server: Pacemaker connects to the resource id.
    '<primitive id="remote2" class="ocf" provider="pacemaker" type="remote"/>',
    # A guest node: a VM resource with remote-node and remote-addr.
    '<primitive id="vm-guest1" class="ocf" provider="heartbeat" type="VirtualDomain">'
    '<instance_attributes id="vm-guest1-ia">'
    '<nvpair id="vm-guest1-config" name="config" value="/etc/libvirt/guest1.xml"/>'
    "</instance_attributes>"
    '<meta_attributes id="vm-guest1-meta">'
    '<nvpair id="vm-guest1-rn" name="remote-node" value="guest1"/>'
    '<nvpair id="vm-guest1-ra" name="remote-addr" value="10.0.0.31"/>'
    "</meta_attributes></primitive>",
    # A guest node without remote-addr: reached by its node name.
    '<primitive id="vm-guest2" class="ocf" provider="heartbeat" type="VirtualDomain">'
    '<instance_attributes id="vm-guest2-ia">'
    '<nvpair id="vm-guest2-config" name="config" value="/etc/libvirt/guest2.xml"/>'
    "</instance_attributes>"
    '<meta_attributes id="vm-guest2-meta">'
    '<nvpair id="vm-guest2-rn" name="remote-node" value="guest2"/>'
    "</meta_attributes></primitive>",
    # A bundle of two replicas: two guest nodes, httpd-bundle-0 and -1.
    '<bundle id="httpd-bundle"><podman image="localhost/pcmk:http" replicas="2"/>'
    '<network ip-range-start="192.168.122.131" control-port="3121"/>'
    '<primitive class="ocf" id="httpd" provider="heartbeat" type="apache"/></bundle>',
    # Not a Pacemaker Remote node at all.
    '<primitive id="ip1" class="ocf" provider="heartbeat" type="IPaddr2">'
    '<instance_attributes id="ip1-ia"><nvpair id="ip1-ip" name="ip" value="10.0.0.99"/>'
    "</instance_attributes></primitive>",
]
CLUSTER_NODES = ("node1", "node2", "node3")


def tools_missing() -> "List[str]":
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _run(argv: "List[str]", env: "Dict[str, str]") -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv}: {done.returncode}: {done.stderr}")
    return done.stdout


def build(directory: Path) -> "Dict[str, str]":
    """The captured texts: ``cib`` (cibadmin -Q) and ``crm_mon`` (crm_mon --output-as=xml)."""
    cib = directory / "cib.xml"
    env = {**os.environ, "CIB_file": str(cib), "LC_ALL": "C"}
    cib.write_text(_run(["cibadmin", "--empty"], env))
    for number, name in enumerate(CLUSTER_NODES, 1):
        _run(["cibadmin", "-C", "-o", "nodes", "-X", f'<node id="{number}" uname="{name}"/>'], env)
    for resource in RESOURCES:
        _run(["cibadmin", "-C", "-o", "resources", "-X", resource], env)
    # remote2 is stopped on purpose.
    _run(["crm_resource", "-r", "remote2", "--meta", "-p", "target-role", "-v", "Stopped"], env)
    # node3 is down; the others up (crm_simulate writes the status section).
    simulated = directory / "simulated.xml"
    _run(
        ["crm_simulate", "-x", str(cib), "-u", "node1", "-u", "node2", "-S", "-O", str(simulated)],
        env,
    )
    env["CIB_file"] = str(simulated)
    return {
        "cib": _run(["cibadmin", "-Q"], env),
        "crm_mon": _run(["crm_mon", "--output-as=xml"], env),
    }


def main() -> int:
    import tempfile

    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        captured = build(Path(directory))
    (DATA / "cib-tools.xml").write_text(captured["cib"])
    (DATA / "crm_mon-tools.xml").write_text(captured["crm_mon"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
