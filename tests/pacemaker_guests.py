"""Guest-style Pacemaker Remote nodes on the test hosts (beside tests/pacemakerhosts.py's
cluster and remote nodes): a host running pacemaker-remoted that Pacemaker reaches as the
guest of a resource, as it would a VM's."""

from __future__ import annotations

from typing import List

from tests import pacemakerhosts
from tests.testhosts import Host, Network

KEY = pacemakerhosts.PACEMAKER_KEY_PATH


def add_guest(net: Network, cluster: List[Host], key: bytes) -> Host:
    """A guest-style node: pacemaker-remoted on a host of its own, run by Pacemaker as the
    guest of an ocf:pacemaker:Dummy resource (the 'VM') with remote-node and remote-addr."""
    (guest,) = net.add_hosts(1, corosync=False)
    guest.runs_remoted = True
    pacemakerhosts.prepare_dirs(guest)
    pacemakerhosts.install_remoted(guest)
    guest.write_key(key, KEY, mode=pacemakerhosts.DEBIAN_KEY_MODE, group="haclient")
    guest.start_pacemaker()
    rid = f"vm-{guest.name}"
    cluster[0].run(
        [
            "cibadmin",
            "--create",
            "--scope",
            "resources",
            "--xml-text",
            f'<primitive class="ocf" provider="pacemaker" type="Dummy" id="{rid}">'
            f'<meta_attributes id="{rid}-meta">'
            f'<nvpair id="{rid}-rn" name="remote-node" value="{guest.name}"/>'
            f'<nvpair id="{rid}-ra" name="remote-addr" value="{guest.address}"/>'
            "</meta_attributes></primitive>",
        ]
    )
    return guest
