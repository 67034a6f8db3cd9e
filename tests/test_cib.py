"""The CIB reader (corokey.cib): which nodes hold Pacemaker Remote's key.

The fixtures were written by Pacemaker's own tools (tests/pacemaker_cib.py); the
differential test rebuilds them with the installed Pacemaker and holds corokey's
reading against crm_mon's node list.
"""

import tempfile
from pathlib import Path
from typing import List

import pytest

from corokey.cib import (
    BUNDLE,
    CLUSTER,
    GUEST,
    OFFLINE,
    ONLINE,
    REMOTE,
    UNKNOWN,
    CibError,
    PacemakerNode,
    nodes_from_cib,
    states_from_crm_mon,
    with_states,
)
from tests import pacemaker_cib

DATA = pacemaker_cib.DATA


def _fixture_nodes() -> "List[PacemakerNode]":
    nodes = nodes_from_cib((DATA / "cib-tools.xml").read_text())
    return with_states(nodes, states_from_crm_mon((DATA / "crm_mon-tools.xml").read_text()))


def test_every_kind_of_node_from_a_cib_pacemaker_wrote() -> None:
    table = [
        (n.name, n.kind, n.address, n.port, n.resource, n.state, n.stopped)
        for n in _fixture_nodes()
    ]
    assert table == [
        ("node1", CLUSTER, "node1", 3121, None, ONLINE, False),
        ("node2", CLUSTER, "node2", 3121, None, ONLINE, False),
        ("node3", CLUSTER, "node3", 3121, None, OFFLINE, False),
        ("remote1", REMOTE, "10.0.0.21", 3122, "remote1", OFFLINE, False),
        ("remote2", REMOTE, "remote2", 3121, "remote2", OFFLINE, True),
        ("guest1", GUEST, "10.0.0.31", 3121, "vm-guest1", OFFLINE, False),
        ("guest2", GUEST, "guest2", 3121, "vm-guest2", OFFLINE, False),
        ("httpd-bundle-0", BUNDLE, "httpd-bundle-0", 3121, "httpd-bundle", OFFLINE, False),
        ("httpd-bundle-1", BUNDLE, "httpd-bundle-1", 3121, "httpd-bundle", OFFLINE, False),
    ]


def test_a_cib_a_running_cluster_held() -> None:
    # tests/capture_pacemaker_cib.py: 2 cluster nodes, a remote node, a guest node (a Dummy
    # 'VM'), and a remote node stopped on purpose, from a real Pacemaker 2.1.5 cluster.
    nodes = nodes_from_cib((DATA / "cib-cluster.xml").read_text())
    states = states_from_crm_mon((DATA / "crm_mon-cluster.xml").read_text())
    table = [(n.name, n.kind, n.resource, n.state, n.stopped) for n in with_states(nodes, states)]
    assert table == [
        ("node1", CLUSTER, None, ONLINE, False),
        ("node2", CLUSTER, None, ONLINE, False),
        ("node3", REMOTE, "node3", ONLINE, False),
        ("parked", REMOTE, "parked", OFFLINE, True),
        ("node4", GUEST, "vm-node4", ONLINE, False),
    ]
    assert [n.address for n in nodes][3] == "192.0.2.7"
    assert nodes[2].address.startswith("10.250.") and nodes[4].address.startswith("10.250.")
    assert sorted(states) == sorted(n.name for n in nodes)


@pytest.mark.slow
def test_the_same_nodes_as_crm_mon_on_a_cib_the_installed_pacemaker_writes() -> None:
    missing = pacemaker_cib.tools_missing()
    if missing:
        pytest.skip(f"Pacemaker's tools are not installed: {', '.join(missing)}")
    with tempfile.TemporaryDirectory() as directory:
        captured = pacemaker_cib.build(Path(directory))
    ours = nodes_from_cib(captured["cib"])
    theirs = states_from_crm_mon(captured["crm_mon"])
    assert sorted(n.name for n in ours) == sorted(theirs)
    assert {n.name for n in ours if n.kind == CLUSTER} == set(pacemaker_cib.CLUSTER_NODES)


def _cib(resources: str, nodes: str = '<node id="1" uname="node1"/>') -> str:
    return (
        '<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">'
        f"<configuration><crm_config/><nodes>{nodes}</nodes>"
        f"<resources>{resources}</resources><constraints/></configuration><status/></cib>"
    )


def _remote(body: str) -> str:
    return f'<primitive id="r1" class="ocf" provider="pacemaker" type="remote">{body}</primitive>'


@pytest.mark.parametrize(
    ("resources", "address", "port"),
    [
        # controld_remote_ra.c: "addr" is an alias of "server"; the last one counts.
        (
            _remote(
                '<instance_attributes id="a"><nvpair id="b" name="addr" value="h1"/>'
                "</instance_attributes>"
            ),
            "h1",
            3121,
        ),
        (
            _remote(
                '<instance_attributes id="a"><nvpair id="b" name="server" value="h1"/>'
                '<nvpair id="c" name="addr" value="h2"/></instance_attributes>'
            ),
            "h2",
            3121,
        ),
        # Names without case, as Pacemaker compares them.
        (
            _remote(
                '<instance_attributes id="a"><nvpair id="b" name="Server" value="h3"/>'
                '<nvpair id="c" name="PORT" value="4000"/></instance_attributes>'
            ),
            "h3",
            4000,
        ),
        # A set with a rule applies only where the rule holds: not read.
        (
            _remote(
                '<instance_attributes id="a"><rule id="ru" score="INFINITY">'
                '<date_expression id="d" operation="lt" end="2000-01-01"/></rule>'
                '<nvpair id="b" name="server" value="never"/></instance_attributes>'
            ),
            "r1",
            3121,
        ),
        # A port that is not a port: Pacemaker's default.
        (
            _remote(
                '<instance_attributes id="a"><nvpair id="b" name="port" value="x"/>'
                "</instance_attributes>"
            ),
            "r1",
            3121,
        ),
        # An nvpair by reference.
        (
            _remote('<instance_attributes id="a"><nvpair id-ref="shared"/></instance_attributes>')
            + '<primitive id="other" class="ocf" provider="heartbeat" type="Dummy">'
            '<instance_attributes id="o"><nvpair id="shared" name="server" value="h4"/>'
            "</instance_attributes></primitive>",
            "h4",
            3121,
        ),
    ],
)
def test_where_pacemaker_connects_to_a_remote_node(resources: str, address: str, port: int) -> None:
    remote = [n for n in nodes_from_cib(_cib(resources)) if n.kind == REMOTE]
    assert [(n.name, n.address, n.port) for n in remote] == [("r1", address, port)]


def test_a_remote_node_from_a_template() -> None:
    template = (
        '<template id="t" class="ocf" provider="pacemaker" type="remote">'
        '<instance_attributes id="ti"><nvpair id="ts" name="server" value="from-template"/>'
        '<nvpair id="tp" name="port" value="3200"/></instance_attributes></template>'
        '<primitive id="r2" template="t"><instance_attributes id="ri">'
        '<nvpair id="rs" name="server" value="own"/></instance_attributes></primitive>'
    )
    (remote,) = [n for n in nodes_from_cib(_cib(template)) if n.kind == REMOTE]
    assert (remote.name, remote.address, remote.port) == ("r2", "own", 3200)


def test_guest_meta_attributes_as_pacemaker_reads_them() -> None:
    # expand_remote_rsc_meta: every meta set of the resource, rules or not, the last wins;
    # a remote-node that names an existing resource makes no guest.
    resources = (
        '<primitive id="vm" class="ocf" provider="heartbeat" type="VirtualDomain">'
        '<meta_attributes id="m1"><nvpair id="m1n" name="Remote-Node" value="g1"/>'
        '<nvpair id="m1a" name="remote-addr" value="a1"/></meta_attributes>'
        '<meta_attributes id="m2"><rule id="r" score="0"><date_expression id="d" '
        'operation="lt" end="2000-01-01"/></rule>'
        '<nvpair id="m2a" name="remote-addr" value="a2"/>'
        '<nvpair id="m2p" name="remote-port" value="3300"/></meta_attributes></primitive>'
        '<primitive id="vm2" class="ocf" provider="heartbeat" type="VirtualDomain">'
        '<meta_attributes id="m3"><nvpair id="m3n" name="remote-node" value="vm"/>'
        "</meta_attributes></primitive>"
    )
    guests = [n for n in nodes_from_cib(_cib(resources)) if n.kind == GUEST]
    assert [(n.name, n.address, n.port, n.resource) for n in guests] == [("g1", "a2", 3300, "vm")]


def test_a_remote_node_with_attributes_is_not_a_cluster_node() -> None:
    nodes = '<node id="1" uname="node1"/><node id="r1" uname="r1" type="remote"/>'
    found = nodes_from_cib(_cib(_remote(""), nodes))
    assert [(n.name, n.kind) for n in found] == [("node1", CLUSTER), ("r1", REMOTE)]


def test_nodes_crm_mon_does_not_name_are_of_unknown_state() -> None:
    (node,) = with_states(nodes_from_cib(_cib("")), {})
    assert node.state == UNKNOWN


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not xml",
        "<cib/>",
        "<pacemaker-result/>",
        '<?xml version="1.0"?><!DOCTYPE cib [<!ENTITY a "aaaa">]><cib><configuration/></cib>',
    ],
)
def test_text_that_is_no_cib_is_refused(text: str) -> None:
    with pytest.raises(CibError):
        nodes_from_cib(text)


@pytest.mark.parametrize("text", ["", "<cib/>", "<pacemaker-result/>"])
def test_text_that_is_no_crm_mon_output_is_refused(text: str) -> None:
    with pytest.raises(CibError):
        states_from_crm_mon(text)
