#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)

DOCUMENTATION = r"""
---
module: pacemaker_window
short_description: Hold a Pacemaker cluster over the key caches' window of a new Pacemaker Remote key
version_added: "0.2.0"
description:
  - Pacemaker before 3.0.2 reads Pacemaker Remote's key at each TLS handshake through a cache
    of 60 seconds per process, and never re-keys an established connection. After a new key
    is committed on every cluster and remote node, a process that read the old key just
    before may use it until its 60 seconds are over, so a connection recovered inside that
    window can fail its handshake (and a remote node whose connection cannot be recovered
    can be fenced). This module holds the cluster in maintenance-mode over the window, as
    C(corokey rotate --profile pacemaker) does, with corokey's own watch of C(crm_mon).
  - Run it on one cluster node per cluster (the C(corokey.corosync.rotate) role does, for
    C(corokey_profile=pacemaker)).
  - O(state=entered) sets the cluster option maintenance-mode (unless it already was on).
  - O(state=watched) waits O(window_seconds) from now (the commit just ended) while counting
    how long each remote and guest node was offline, then switches maintenance-mode off when
    O(release) is true, then waits until every remote and guest node has been online for
    O(stable_seconds) in a row (crm_mon shows a node online during a connection attempt
    that then fails), within O(online_timeout). It fails, saying which, when one does not
    come back.
  - O(state=left) (after a rollback) waits O(window_seconds) (a process may have cached the
    new key) and then switches maintenance-mode off when O(release) is true.
author:
  - corokey maintainers (@corokey)
options:
  state:
    description: See above.
    type: str
    required: true
    choices: [entered, watched, left]
  window_seconds:
    description:
      - How long the key caches may hold the old key, counted from now; Pacemaker's 60 seconds
        in whole seconds, plus one.
    type: float
    default: 61
  release:
    description:
      - With O(state=watched) or O(state=left), switch maintenance-mode off after the window.
        Give the C(maintenance_set) of O(state=entered), so that a maintenance-mode the admin
        had set stays on.
    type: bool
    default: true
  online_timeout:
    description: With O(state=watched), how long every remote and guest node may take to be online again.
    type: float
    default: 120
  stable_seconds:
    description: With O(state=watched), how long a node must be online in a row to count as online.
    type: float
    default: 15
  nodes:
    description:
      - The remote and guest nodes (Pacemaker's names) to watch. By default every remote and
        guest node of the CIB.
    type: list
    elements: str
extends_documentation_fragment:
  - action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is set or waited for; the result says what would be done.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - Python 3.9 or later on the node; a cluster node where Pacemaker runs (C(crm_attribute), C(crm_mon), C(cibadmin)).
seealso:
  - module: corokey.corosync.authkey
  - module: corokey.corosync.authkey_info
"""

EXAMPLES = r"""
- name: Maintenance-mode over the window
  corokey.corosync.pacemaker_window:
    state: entered
  register: window
  run_once: true

# ... stage and commit the new key on every cluster and remote node ...

- name: Wait out the key caches, leave maintenance-mode, see every remote node back
  corokey.corosync.pacemaker_window:
    state: watched
    release: "{{ window.maintenance_set }}"
  run_once: true
"""

RETURN = r"""
maintenance_before:
  description: maintenance-mode before the task.
  returned: always
  type: bool
maintenance_set:
  description: With O(state=entered), whether this task switched maintenance-mode on (it was off).
  returned: always
  type: bool
maintenance:
  description: maintenance-mode after the task (in check mode, the prediction).
  returned: always
  type: bool
window_seconds:
  description: The seconds waited for the key caches.
  returned: when O(state) is V(watched) or V(left)
  type: float
offline_seconds:
  description:
    - Per remote and guest node, the seconds crm_mon showed it offline while the module
      watched; -1 for a node that was not online again within O(online_timeout).
  returned: when O(state=watched)
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.corokey.corosync.plugins.module_utils.python_floor import python_too_old

if python_too_old() is None:  # the library does not parse on older Pythons
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.pacemaker_window import watch
    from ansible_collections.corokey.corosync.plugins.module_utils import pacemaker_node


def watched_nodes(params):
    if params["nodes"] is not None:
        return list(params["nodes"])
    nodes = pacemaker_node.cib_nodes() or []
    return [node["name"] for node in nodes if node["kind"] in ("remote", "guest")]


def switch(module, result, on):
    if module.check_mode:
        result["maintenance"] = on
        return
    problem = pacemaker_node.set_maintenance(module.run_command, on)
    if problem is not None:
        module.fail_json(msg=problem, **result)
    result["maintenance"] = on


def entered(module, result):
    if result["maintenance_before"]:
        return
    result.update(changed=True, maintenance_set=True)
    switch(module, result, True)


def watched(module, result):
    params = module.params
    nodes = watched_nodes(params)
    started = time.monotonic()
    offline = watch(pacemaker_node.node_states, nodes, started + params["window_seconds"], False)
    result["window_seconds"] = round(time.monotonic() - started, 1)
    if params["release"] and result["maintenance_before"]:
        result["changed"] = True
        switch(module, result, False)
    back = watch(
        pacemaker_node.node_states,
        nodes,
        time.monotonic() + params["online_timeout"],
        True,
        stable=params["stable_seconds"],
    )
    result["offline_seconds"] = dict(
        (name, -1.0 if back[name] < 0 else round(offline[name] + back[name], 1)) for name in nodes
    )
    still = sorted(name for name in nodes if back[name] < 0)
    if still:
        module.fail_json(
            msg="%s did not come back online within %g s after the key caches' window; run corokey "
            "doctor --profile pacemaker there and on a cluster node" % (", ".join(still), params["online_timeout"]),
            reference="pacemaker-remote-offline",
            **result
        )


def left(module, result):
    params = module.params
    started = time.monotonic()
    time.sleep(max(0.0, params["window_seconds"]))
    result["window_seconds"] = round(time.monotonic() - started, 1)
    if params["release"] and result["maintenance_before"]:
        result["changed"] = True
        switch(module, result, False)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["entered", "watched", "left"]),
            window_seconds=dict(type="float", default=61),
            release=dict(type="bool", default=True),
            online_timeout=dict(type="float", default=120),
            stable_seconds=dict(type="float", default=15),
            nodes=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    too_old = python_too_old()
    if too_old is not None:
        module.fail_json(msg=too_old, reference="python-too-old")
    before = pacemaker_node.maintenance()
    result = {"changed": False, "maintenance_before": before, "maintenance_set": False, "maintenance": before}
    if before is None:
        module.fail_json(
            msg="crm_attribute cannot read maintenance-mode here: run this on a cluster node where Pacemaker runs",
            reference="pacemaker-not-running",
            **result
        )
    state = module.params["state"]
    if state == "entered":
        entered(module, result)
    elif module.check_mode:
        result["changed"] = module.params["release"] and before
        result["maintenance"] = before and not module.params["release"]
    elif state == "watched":
        watched(module, result)
    else:
        left(module, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
