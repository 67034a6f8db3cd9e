"""corokey nodes --profile pacemaker and corokey.pacemaker_nodes without a cluster: a CIB
Pacemaker's tools wrote (tests/data/pacemaker), the name map, the errors."""

import json

import pytest

from corokey.errors import UsageError
from corokey.pacemaker_nodes import PacemakerNodesError, parse_ssh_names, topology_from_texts
from tests.cli_helpers import corokey
from tests.pacemaker_cib import DATA

CIB = (DATA / "cib-tools.xml").read_text()
CRM_MON = (DATA / "crm_mon-tools.xml").read_text()


def test_targets_are_cluster_remote_and_guest_nodes_by_their_ssh_names() -> None:
    topology = topology_from_texts("node1", CIB, CRM_MON, {"guest2": "g2.example"})
    assert topology.targets() == [
        "node1",
        "node2",
        "node3",
        "remote1",
        "remote2",
        "guest1",
        "g2.example",
    ]
    # Left out by Pacemaker's name or by ssh's.
    assert topology.targets(["remote2", "g2.example"]) == [
        "node1",
        "node2",
        "node3",
        "remote1",
        "guest1",
    ]


def test_a_name_map_for_a_node_the_cib_does_not_name_is_refused() -> None:
    with pytest.raises(UsageError, match="nosuch"):
        topology_from_texts("node1", CIB, None, {"nosuch": "host"})


@pytest.mark.parametrize("value", ["remote1", "=host", "remote1=", "remote1=-oProxyCommand=x"])
def test_bad_ssh_names_are_refused(value: str) -> None:
    with pytest.raises(UsageError):
        parse_ssh_names([value])


def test_a_cib_without_nodes_is_refused() -> None:
    empty = "<cib><configuration><nodes/><resources/></configuration><status/></cib>"
    with pytest.raises(PacemakerNodesError, match="names no node"):
        topology_from_texts("node1", empty, None, {})


def test_nodes_shows_which_is_which_and_which_are_down() -> None:
    done = corokey("nodes", "--profile", "pacemaker", "--cib", str(DATA / "cib-tools.xml"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "CONNECTS", "TO", "SSH", "STATE"]
    assert lines[4].split() == ["remote1", "remote", "10.0.0.21:3122", "remote1", "unknown"]
    assert "stopped on purpose" in lines[5]
    assert "bind-mounted" in done.stdout


def test_nodes_json() -> None:
    done = corokey(
        "nodes", "--profile", "pacemaker", "--json", "--cib", str(DATA / "cib-tools.xml")
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    kinds = [(n["name"], n["kind"], n["ssh"]) for n in document["nodes"]]
    assert ("guest1", "guest", "guest1") in kinds
    assert ("httpd-bundle-0", "bundle", None) in kinds


def test_an_unreadable_cib_file_is_one_error() -> None:
    done = corokey("nodes", "--profile", "pacemaker", "--cib", "/nonexistent/cib.xml")
    assert done.returncode == 2
    assert done.stderr.startswith("corokey: error[pacemaker-nodes]: cannot read the CIB file")
