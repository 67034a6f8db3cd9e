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
    state = cluster_state(["remote1"], [info(None, running=False)], profile="pacemaker")
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
