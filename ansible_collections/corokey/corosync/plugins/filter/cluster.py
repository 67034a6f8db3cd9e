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


def cluster_state(names, infos, profile="corosync"):
    names = list(names)
    infos = list(infos)
    state = {
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


def rotate_problems(state, names, infos):
    """What stops an online rotation of this cluster (besides ``state['problems']``)."""
    problems = list(state["problems"])
    if problems:
        return problems
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
    if state["fingerprint"] is None:
        problems.append(
            "the nodes hold different keys (%s): corokey verify / corokey doctor say which is wrong"
            % ", ".join("%s: %s" % (n, f) for n, f in zip(names, state["fingerprints"]))
        )
    elif not state["sound"]:
        bad = [
            "%s: %s" % (n, "; ".join(f.get("message", "") for f in i["key"].get("findings", []) if f.get("severity") == "error"))
            for n, i in zip(names, infos)
            if i["key"].get("status") == "error"
        ]
        problems.append("the current key is unsound (%s)" % ", ".join(bad))
    return problems


class FilterModule(object):
    def filters(self):
        return {"cluster_state": cluster_state, "rotate_problems": rotate_problems}
