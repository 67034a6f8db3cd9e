"""Capture a CIB and crm_mon's XML from a real Pacemaker cluster on the test hosts, for
tests/test_cib.py: 2 cluster nodes, a remote node, a guest node (a Dummy 'VM' with
remote-node), and a remote node stopped on purpose. Needs root.

Run: .venv/bin/python -m tests.capture_pacemaker_cib   (rewrites tests/data/pacemaker/
cib-cluster.xml and crm_mon-cluster.xml)
"""

import sys

from tests import pacemakerhosts
from tests.pacemaker_cib import DATA
from tests.pacemaker_guests import add_guest
from tests.testhosts import network

STOPPED_REMOTE = (
    '<primitive class="ocf" provider="pacemaker" type="remote" id="parked">'
    '<instance_attributes id="parked-ia"><nvpair id="parked-server" name="server" '
    'value="192.0.2.7"/></instance_attributes>'
    '<meta_attributes id="parked-meta"><nvpair id="parked-tr" name="target-role" '
    'value="Stopped"/></meta_attributes></primitive>'
)


def main() -> int:
    with network() as net:
        cluster = net.add_hosts(2, pacemaker=True)
        net.wait_for_pacemaker(cluster)
        remotes = net.add_remote_hosts(1)
        guest = add_guest(net, cluster, cluster[0].read_key(pacemakerhosts.PACEMAKER_KEY_PATH))
        cluster[0].run(
            ["cibadmin", "--create", "--scope", "resources", "--xml-text", STOPPED_REMOTE]
        )
        net.wait_for_pacemaker([*cluster, *remotes, guest])
        cib = cluster[0].run(["cibadmin", "-Q"]).stdout
        crm_mon = cluster[0].run(["crm_mon", "-1", "--output-as=xml"]).stdout
    (DATA / "cib-cluster.xml").write_text(cib)
    (DATA / "crm_mon-cluster.xml").write_text(crm_mon)
    return 0


if __name__ == "__main__":
    sys.exit(main())
