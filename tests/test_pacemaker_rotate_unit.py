"""rotate --profile pacemaker's refusals, decided from a CIB Pacemaker's tools wrote and
from node facts (the cluster tests run the rotation itself)."""

from corokey.cib import ONLINE
from corokey.pacemaker_nodes import Topology, topology_from_texts
from corokey.pacemaker_rotate import NodeFacts, facts_problems, topology_problems
from tests.pacemaker_cib import DATA

CIB = (DATA / "cib-tools.xml").read_text()
CRM_MON = (DATA / "crm_mon-tools.xml").read_text()


def _all_online(topology: "Topology") -> "Topology":
    for member in topology.members:
        member.node = member.node.with_state(ONLINE)
    return topology


def test_bundles_and_down_nodes_are_refused_with_the_reason() -> None:
    problems = topology_problems(topology_from_texts("node1", CIB, CRM_MON, {}), [])
    text = "\n".join(problems)
    assert "httpd-bundle" in problems[0] and "bind-mounts" in problems[0]
    assert "node3 (cluster) is offline" in text
    assert "remote2 (remote) is stopped on purpose" in text and "--leave-out remote2" in text


def test_a_node_stopped_on_purpose_may_be_left_out() -> None:
    topology = topology_from_texts(
        "node1", CIB.replace("<bundle", "<bundlex").replace("</bundle>", "</bundlex>"), CRM_MON, {}
    )
    for member in topology.members:
        if member.node.name != "remote2":
            member.node = member.node.with_state(ONLINE)
    assert any("remote2" in p for p in topology_problems(topology, []))
    assert topology_problems(topology, ["remote2"]) == []


def test_unknown_states_are_refused() -> None:
    topology = topology_from_texts("node1", CIB, None, {})
    assert any("node states unknown" in p for p in topology_problems(topology, []))


def test_pacemaker_3_0_2_is_refused_with_the_procedure() -> None:
    topology = _all_online(topology_from_texts("node1", CIB, CRM_MON, {}))
    facts = {
        "node1": NodeFacts("2.1.5", "cluster", False, ""),
        "remote1": NodeFacts("3.0.2", "remote", False, ""),
        "guest1": NodeFacts("2.1.5", "remote", False, "/etc/pacemaker/moved"),
        "guest2": NodeFacts(None, "none", False, ""),
    }
    problems = facts_problems(facts, "/etc/pacemaker/authkey", topology)
    assert any(
        "remote1: Pacemaker 3.0.2" in p and "restart pacemaker_remote" in p for p in problems
    )
    assert any("PCMK_authkey_location is /etc/pacemaker/moved" in p for p in problems)
    assert any(p.startswith("guest2: Pacemaker not found") for p in problems)
    assert not any(p.startswith("node1") for p in problems)


def test_leaving_out_a_name_the_cib_lacks_or_every_cluster_node_is_refused() -> None:
    topology = _all_online(topology_from_texts("node1", CIB, CRM_MON, {}))
    assert any("nosuch" in p for p in topology_problems(topology, ["nosuch"]))
    every = ["node1", "node2", "node3"]
    assert any("no cluster node" in p for p in topology_problems(topology, every))
