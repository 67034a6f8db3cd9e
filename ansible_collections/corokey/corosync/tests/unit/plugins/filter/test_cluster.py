# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""The roles' decisions for one cluster (filters cluster_state and rotate_problems)."""

from ansible_collections.corokey.corosync.plugins.filter.cluster import cluster_state, rotate_problems

NODELIST = [{"name": "n%d" % i, "nodeid": i, "addresses": ["10.0.0.%d" % i]} for i in (1, 2, 3)]


def info(this_node, running=True, fingerprint="SHA256:a", status="ok", conf_node=None, members=(1, 2, 3), **key):
    return {
        "changed": False,
        "key": dict({"path": "/etc/corosync/authkey", "source": "file", "fingerprint": fingerprint, "status": status}, **key),
        "nodes": NODELIST,
        "corosync": {
            "running": running,
            "this_node": this_node if running else None,
            "conf_node": conf_node,
            "members": list(members) if running else [],
            "online_reload": True,
            "reload_error_message": None,
        },
    }


def test_a_whole_running_cluster_with_one_key():
    state = cluster_state(["a", "b", "c"], [info(1), info(2), info(3)])
    assert state["problems"] == [] and state["running"] and state["fingerprint"] == "SHA256:a"
    assert rotate_problems(state, ["a", "b", "c"], [info(1), info(2), info(3)]) == []


def test_one_node_named_twice_and_one_left_out():
    state = cluster_state(["a", "a2", "b"], [info(1), info(1), info(2)])
    assert "a and a2 are one node (nodeid 1): name each node once in the play" in state["problems"]
    assert "nodeid 3 of the nodelist is not in the play: every node of a cluster must be" in state["problems"]


def test_a_stopped_cluster_is_matched_by_its_addresses():
    infos = [info(None, running=False, conf_node=i) for i in (1, 2, 3)]
    assert cluster_state(["a", "b", "c"], infos)["problems"] == []
    infos[2] = info(None, running=False, conf_node=None)
    assert cluster_state(["a", "b", "c"], infos)["problems"][0].startswith("c is no node of the nodelist")


def test_other_profiles_are_not_nodelist_members():
    state = cluster_state(["host1"], [info(None, running=False)], profile="fence-xvm")
    assert state["problems"] == []


def test_rotation_refuses_inline_keys_partial_membership_and_different_keys():
    infos = [info(1, source="inline"), info(2, members=(1, 2)), info(3, fingerprint="SHA256:b")]
    state = cluster_state(["a", "b", "c"], infos)
    assert any("inline" in p for p in state["problems"])
    infos[0] = info(1)
    state = cluster_state(["a", "b", "c"], infos)
    problems = rotate_problems(state, ["a", "b", "c"], infos)
    assert any("b sees members [1, 2], not the whole nodelist [1, 2, 3]" in p for p in problems)
    assert any("the nodes hold different keys" in p for p in problems)


def test_an_unanswered_node_stops_everything():
    state = cluster_state(["a", "b"], [info(1), {"unreachable": True, "msg": "ssh: timeout"}])
    assert state["problems"] == ["b could not be looked at (ssh: timeout)"]


def pacemaker_info(role, this_node=None, nodes=None, fingerprint="SHA256:a", version="2.1.5", **pacemaker):
    base = info(this_node, running=this_node is not None, fingerprint=fingerprint)
    if role == "remote":  # no corosync on a remote node
        base["nodes"] = []
        base["corosync"] = {"running": False, "this_node": None, "conf_node": None, "members": []}
    base["key"]["path"] = "/etc/pacemaker/authkey"
    base["pacemaker"] = dict(
        {"role": role, "version": version, "reads_once": False, "location": None,
         "running": nodes is not None, "maintenance": False if nodes is not None else None, "nodes": nodes},
        **pacemaker
    )
    return base


CIB = [
    {"name": "n%d" % i, "kind": "cluster", "address": "n%d" % i, "state": "online", "stopped": False} for i in (1, 2, 3)
] + [{"name": "r1", "kind": "remote", "address": "10.0.0.21", "state": "online", "stopped": False}]


def pacemaker_cluster(cib=CIB, **remote):
    names = ["n1", "n2", "n3", "r1"]
    infos = [pacemaker_info("cluster", i, cib) for i in (1, 2, 3)] + [pacemaker_info("remote", **remote)]
    return names, infos


def test_pacemaker_remote_nodes_are_checked_against_the_cib_not_the_nodelist():
    names, infos = pacemaker_cluster()
    state = cluster_state(names, infos, profile="pacemaker")
    assert state["problems"] == []
    assert state["cluster_nodes"] == ["n1", "n2", "n3"] and state["remote_nodes"] == ["r1"]
    assert rotate_problems(state, names, infos) == []
    # The nodelist identity still holds for cluster nodes: one left out is named.
    state = cluster_state(names[1:], infos[1:], profile="pacemaker")
    assert "nodeid 1 of the nodelist is not in the play: every node of a cluster must be" in state["problems"]


def test_a_remote_node_of_the_cib_left_out_of_the_play_is_refused():
    names, infos = pacemaker_cluster()
    state = cluster_state(names[:3], infos[:3], profile="pacemaker")
    assert any(p.startswith("the CIB's r1 (remote) is not in the play") for p in state["problems"])
    # A host that runs pacemaker-remoted under another name is matched by corokey_pacemaker_node.
    state = cluster_state(["n1", "n2", "n3", "host21"], infos, profile="pacemaker")
    assert any("host21 runs pacemaker-remoted but the CIB has no remote or guest node host21" in p for p in state["problems"])
    state = cluster_state(["n1", "n2", "n3", "host21"], infos, profile="pacemaker",
                          pacemaker_names=["n1", "n2", "n3", "r1"])
    assert state["problems"] == []


def test_pacemaker_rotation_refuses_what_the_cli_refuses():
    offline = [dict(n, state="offline", stopped=True) if n["kind"] == "remote" else n for n in CIB]
    names, infos = pacemaker_cluster(cib=offline)
    problems = rotate_problems(cluster_state(names, infos, profile="pacemaker"), names, infos)
    assert any("r1 (remote) is stopped on purpose" in p and "--leave-out r1" in p for p in problems)
    bundle = CIB + [{"name": "web-bundle-0", "kind": "bundle", "resource": "web-bundle", "state": "online"}]
    names, infos = pacemaker_cluster(cib=bundle)
    problems = rotate_problems(cluster_state(names, infos, profile="pacemaker"), names, infos)
    assert any(p.startswith("bundle(s) web-bundle:") for p in problems)
    names, infos = pacemaker_cluster(version="3.0.2", reads_once=True)
    problems = rotate_problems(cluster_state(names, infos, profile="pacemaker"), names, infos)
    assert any(p.startswith("r1: Pacemaker 3.0.2. Pacemaker 3.0.2 and later read the key once") for p in problems)
    names, infos = pacemaker_cluster(fingerprint="SHA256:b")
    problems = rotate_problems(cluster_state(names, infos, profile="pacemaker"), names, infos)
    assert any(p.startswith("the nodes hold different keys") for p in problems)
    names, infos = pacemaker_cluster(cib=None)
    for one in infos[:3]:
        one["pacemaker"].update(nodes=None, running=False)
    problems = rotate_problems(cluster_state(names, infos, profile="pacemaker"), names, infos)
    assert problems[0].startswith("Pacemaker answers on no cluster node")


def test_a_host_with_neither_pacemaker_daemon_is_refused():
    names, infos = pacemaker_cluster()
    infos[3]["pacemaker"]["role"] = None
    state = cluster_state(names, infos, profile="pacemaker")
    assert any(p.startswith("r1 has neither pacemakerd nor pacemaker-remoted installed") for p in state["problems"])
