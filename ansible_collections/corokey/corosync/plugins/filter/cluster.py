# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""What the corokey roles decide for one cluster, from what every node answered.

The roles look at every node first (``authkey_info``, registered on each host) and
then decide for the whole cluster here, in one place that can be read and tested,
instead of in long Jinja expressions: is the play's set of hosts exactly the
cluster's nodelist, does corosync run, do the nodes hold one sound key, can the
cluster reload its key online.  Fingerprints, node ids and names only: no key
bytes pass through here.
"""


def _answered(info):
    return isinstance(info, dict) and not info.get("failed") and not info.get("unreachable") and "key" in info


def _node_id(info):
    corosync = info.get("corosync") or {}
    if corosync.get("running"):
        return corosync.get("this_node")
    return corosync.get("conf_node")


def _nodelist(info):
    return sorted(node.get("nodeid") for node in info.get("nodes") or [] if node.get("nodeid") is not None)


def identity_problems(names, infos):
    """The play's hosts must be exactly the nodelist, each node once (as the CLI refuses
    one node named twice): node ids from the running corosync, else from the nodelist
    entry whose addresses are this host's."""
    problems = []
    lists = {tuple(_nodelist(info)) for info in infos}
    if len(lists) > 1:
        problems.append(
            "the nodes' corosync.conf list different nodelists (%s): make them the same"
            % "; ".join("%s: %s" % (name, _nodelist(info)) for name, info in zip(names, infos))
        )
        return problems
    nodelist = list(lists.pop()) if lists else []
    running = any((info.get("corosync") or {}).get("running") for info in infos)
    if not nodelist and not running:
        return problems  # no corosync.conf yet (a key put before the cluster is set up)
    by_id = {}
    for name, info in zip(names, infos):
        nodeid = _node_id(info)
        if nodeid is None:
            problems.append(
                "%s is no node of the nodelist (corosync does not run there and none of its "
                "addresses is a nodelist address)" % name
            )
            continue
        by_id.setdefault(nodeid, []).append(name)
    for nodeid, hosts in sorted(by_id.items()):
        if len(hosts) > 1:
            problems.append(
                "%s are one node (nodeid %s): name each node once in the play" % (" and ".join(hosts), nodeid)
            )
        elif nodeid not in nodelist:
            problems.append("%s is nodeid %s, which the nodelist does not have" % (hosts[0], nodeid))
    missing = [nodeid for nodeid in nodelist if nodeid not in by_id]
    if missing:
        problems.append(
            "nodeid %s of the nodelist %s not in the play: every node of a cluster must be"
            % (", ".join(str(n) for n in missing), "is" if len(missing) == 1 else "are")
        )
    return problems


def _pacemaker(info):
    return info.get("pacemaker") or {}


def _cib_nodes(infos):
    """The CIB's nodes as the first cluster node where Pacemaker runs reports them, or None."""
    for info in infos:
        pacemaker = _pacemaker(info)
        if pacemaker.get("role") == "cluster" and pacemaker.get("nodes") is not None:
            return pacemaker["nodes"]
    return None


def pacemaker_problems(names, infos, pacemaker_names, state):
    """The pacemaker profile's nodes: cluster nodes (pacemakerd) are the corosync nodelist,
    each once; remote nodes (pacemaker-remoted only) are the CIB's remote and guest nodes,
    and every one of those is in the play (the key must reach all of them, or a connection
    fails)."""
    problems = []
    roles = [_pacemaker(info).get("role") for info in infos]
    neither = [name for name, role in zip(names, roles) if role not in ("cluster", "remote")]
    if neither:
        problems.append(
            "%s %s neither pacemakerd nor pacemaker-remoted installed: install pacemaker (a cluster "
            "node) or pacemaker-remote (a remote node) first, or take %s out of this corokey_cluster"
            % (", ".join(neither), "has" if len(neither) == 1 else "have", "it" if len(neither) == 1 else "them")
        )
    cluster = [(name, info) for name, info, role in zip(names, infos, roles) if role == "cluster"]
    state["cluster_nodes"] = [name for name, _info in cluster]
    state["remote_nodes"] = [name for name, role in zip(names, roles) if role == "remote"]
    if not cluster:
        problems.append(
            "no host of this cluster is a cluster node (pacemakerd): put the cluster nodes in the "
            "play with the remote nodes, under the same corokey_cluster"
        )
    else:
        # corosync's nodelist identity: cluster nodes only (remote nodes run no corosync).
        problems.extend(identity_problems([n for n, _i in cluster], [i for _n, i in cluster]))
    corosyncs = [info.get("corosync") or {} for _name, info in cluster]
    state["nodeids"] = [_node_id(info) for _name, info in cluster]
    state["members"] = sorted(corosyncs[0].get("members") or []) if corosyncs else []
    state["running"] = any(_pacemaker(info).get("running") for _name, info in cluster)
    state["all_running"] = bool(cluster) and all(_pacemaker(info).get("running") for _name, info in cluster)
    state["maintenance"] = any(_pacemaker(info).get("maintenance") for _name, info in cluster)
    cib = _cib_nodes(infos)
    state["cib_nodes"] = cib
    if cib is None:
        return problems  # Pacemaker runs on no cluster node: no CIB to compare with
    by_name = dict(zip(pacemaker_names, names))
    remote_kinds = ("remote", "guest")
    wanted = [node for node in cib if node.get("kind") in remote_kinds]
    missing = [node["name"] for node in wanted if node["name"] not in by_name]
    if missing:
        problems.append(
            "the CIB's %s %s not in the play: every remote and guest node must get the key with "
            "the cluster nodes (add it to the inventory with this corokey_cluster; "
            "corokey_pacemaker_node maps a host to its Pacemaker node name)"
            % (", ".join("%s (%s)" % (n["name"], n["kind"]) for n in wanted if n["name"] in missing),
               "is" if len(missing) == 1 else "are")
        )
    known = {node["name"] for node in wanted}
    for name, pname, role in zip(names, pacemaker_names, roles):
        if role == "remote" and pname not in known:
            problems.append(
                "%s runs pacemaker-remoted but the CIB has no remote or guest node %s: add its "
                "connection resource first, or set corokey_pacemaker_node to its Pacemaker node name"
                % (name, pname)
            )
    return problems


def cluster_state(names, infos, profile="corosync", pacemaker_names=None):
    names = list(names)
    infos = list(infos)
    state = {
        "profile": profile,
        "problems": [],
        "running": False,
        "all_running": False,
        "fingerprints": [],
        "fingerprint": None,
        "sound": False,
        "online_reload": False,
        "members": [],
        "nodeids": [],
        "key_paths": [],
    }
    problems = state["problems"]
    if len(names) != len(infos) or not names:
        problems.append("no host of this cluster answered")
        return state
    silent = [name for name, info in zip(names, infos) if not _answered(info)]
    if silent:
        problems.append(
            "%s could not be looked at (%s)"
            % (", ".join(silent), "; ".join(str(info.get("msg", "unreachable")) for name, info in zip(names, infos)
                                            if name in silent and isinstance(info, dict)))
        )
        return state
    keys = [info["key"] for info in infos]
    state["fingerprints"] = [key.get("fingerprint") for key in keys]
    state["key_paths"] = [key.get("path") for key in keys]
    distinct = set(state["fingerprints"])
    if len(distinct) == 1 and None not in distinct:
        state["fingerprint"] = state["fingerprints"][0]
    state["sound"] = all(key.get("status") != "error" for key in keys)
    if profile == "pacemaker":
        pacemaker_names = list(pacemaker_names) if pacemaker_names else names
        problems.extend(pacemaker_problems(names, infos, pacemaker_names, state))
        return state
    if profile != "corosync":
        return state
    inline = [name for name, key in zip(names, keys) if key.get("source") == "inline"]
    if inline:
        problems.append(
            "%s hold the key inline in corosync.conf (totem.key); corokey manages key files: "
            "move it to a file (totem.keyfile)" % ", ".join(inline)
        )
    if len(set(state["key_paths"])) > 1:
        problems.append(
            "the nodes' corosync reads its key from different files (%s): make totem.keyfile the same"
            % ", ".join("%s: %s" % (n, p) for n, p in zip(names, state["key_paths"]))
        )
    corosyncs = [info.get("corosync") or {} for info in infos]
    state["running"] = any(c.get("running") for c in corosyncs)
    state["all_running"] = all(c.get("running") for c in corosyncs)
    state["online_reload"] = all(c.get("online_reload") for c in corosyncs)
    state["members"] = sorted(corosyncs[0].get("members") or [])
    state["nodeids"] = [_node_id(info) for info in infos]
    problems.extend(identity_problems(names, infos))
    return state


def _key_problems(state, names, infos):
    if state["fingerprint"] is None:
        return [
            "the nodes hold different keys (%s): corokey verify / corokey doctor say which is wrong"
            % ", ".join("%s: %s" % (n, f) for n, f in zip(names, state["fingerprints"]))
        ]
    if not state["sound"]:
        bad = [
            "%s: %s" % (n, "; ".join(f.get("message", "") for f in i["key"].get("findings", []) if f.get("severity") == "error"))
            for n, i in zip(names, infos)
            if i["key"].get("status") == "error"
        ]
        return ["the current key is unsound (%s)" % ", ".join(bad)]
    return []


def pacemaker_rotate_problems(state, names, infos):
    """What stops an online rotation of Pacemaker Remote's key, as corokey rotate --profile
    pacemaker refuses it (corokey.pacemaker_rotate)."""
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.pacemaker_window import (
        RESTART_PROCEDURE,
        bundle_problem,
    )

    problems = []
    if state["cib_nodes"] is None:
        return [
            "Pacemaker answers on no cluster node (cibadmin -Q): nothing runs on the old key; "
            "put the key with the authkey role instead"
        ]
    for name, info in zip(names, infos):
        pacemaker = _pacemaker(info)
        if pacemaker.get("version") is None:
            problems.append("%s: Pacemaker's version unknown (no pacemakerd or pacemaker-remoted answered)" % name)
        elif pacemaker.get("reads_once"):
            problems.append("%s: Pacemaker %s. %s" % (name, pacemaker["version"], RESTART_PROCEDURE))
        location = pacemaker.get("location")
        if location and location != info["key"].get("path"):
            problems.append(
                "%s: PCMK_authkey_location is %s, not %s: set corokey_key_path when every node uses "
                "that location" % (name, location, info["key"].get("path"))
            )
    bundles = [node.get("resource") or node["name"] for node in state["cib_nodes"] if node.get("kind") == "bundle"]
    if bundles:
        problems.append(bundle_problem(set(bundles)))
    for node in state["cib_nodes"]:
        if node.get("kind") == "bundle" or node.get("state") == "online":
            continue
        if node.get("stopped"):
            problems.append(
                "%s (%s) is stopped on purpose (target-role Stopped): the rotate role leaves no node "
                "out; start it, or rotate with corokey rotate --profile pacemaker --leave-out %s"
                % (node["name"], node.get("kind"), node["name"])
            )
        else:
            problems.append("%s (%s) is %s: bring it back first" % (node["name"], node.get("kind"), node.get("state")))
    return problems + _key_problems(state, names, infos)


def rotate_problems(state, names, infos):
    """What stops an online rotation of this cluster (besides ``state['problems']``)."""
    problems = list(state["problems"])
    if problems:
        return problems
    if state.get("profile") == "pacemaker":
        return pacemaker_rotate_problems(state, names, infos)
    corosyncs = [info.get("corosync") or {} for info in infos]
    stopped = [n for n, c in zip(names, corosyncs) if not c.get("running")]
    if stopped:
        problems.append("corosync does not run on %s: start it, or use the authkey role" % ", ".join(stopped))
        return problems
    old = [n for n, c in zip(names, corosyncs) if not c.get("online_reload")]
    if old:
        problems.append(
            "corosync on %s cannot reload its key online (3.1 or later can): restart the cluster "
            "instead (corokey_apply: restart of the authkey role)" % ", ".join(old)
        )
    nodelist = sorted(state["nodeids"])
    for name, corosync in zip(names, corosyncs):
        if sorted(corosync.get("members") or []) != nodelist:
            problems.append(
                "%s sees members %s, not the whole nodelist %s: bring every node back first"
                % (name, sorted(corosync.get("members") or []), nodelist)
            )
        if corosync.get("reload_error_message"):
            problems.append(
                "%s's last configuration reload failed (%s): fix it first" % (name, corosync["reload_error_message"])
            )
    return problems + _key_problems(state, names, infos)


class FilterModule(object):
    def filters(self):
        return {"cluster_state": cluster_state, "rotate_problems": rotate_problems}
