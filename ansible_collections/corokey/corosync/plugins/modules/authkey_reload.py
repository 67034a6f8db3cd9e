#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)

DOCUMENTATION = r"""
---
module: authkey_reload
short_description: Make a running Corosync cluster take its new key, online
version_added: "0.1.0"
description:
  - Runs C(corosync-cfgtool -R), which tells every corosync of the cluster to reload its
    configuration and key (corosync 3.1 and later), then watches for O(settle_seconds) that
    the reload succeeded (cmap C(config.reload_status)), that no reload error was recorded,
    and that the membership and the ring id stayed what they were; a node whose key differs
    would drop out and change both.
  - Run it on one node per cluster (C(run_once), or C(when) on one member), after the new
    key is in place on every node. corosync 3.1.7 does not say which key a node uses, so
    check every node with M(corokey.corosync.authkey_info) afterwards.
author:
  - corokey maintainers (@corokey)
options:
  settle_seconds:
    description:
      - How long membership and ring id must stay unchanged after the reload, counted
        after a quiet period of 2 seconds in which the module does not query corosync.
      - The watch lasts at least the cluster's token plus consensus timeouts and 2 seconds
        more (from cmap), whatever is given here - a node that switched keys alone drops out
        of the membership only after a token timeout and a consensus, seconds after the
        reload (corosync 3.1.7 under load).
    type: float
    default: 5
  expected_members:
    description:
      - Node ids that must be members before and after. Defaults to the members seen before
        the reload.
    type: list
    elements: int
  node_only:
    description:
      - Reload on this node within whatever membership it sees now, without the checks
        before and the watch after; only the reload's status is checked. For a node that
        switched keys alone during a cluster-wide reload (it is out of the membership, so
        only its own reload reaches it) and for a rollback. Run it on every node of the
        cluster, one at a time (task keyword C(throttle) set to 1), then wait for the whole membership, as
        C(corokey rotate) does.
    type: bool
    default: false
extends_documentation_fragment:
  - action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is reloaded; the checks before the reload are made.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - corosync 3.1 or later on the node, running.
seealso:
  - module: corokey.corosync.authkey
  - module: corokey.corosync.authkey_info
"""

EXAMPLES = r"""
- name: Reload the key, once per cluster
  corokey.corosync.authkey_reload:
    settle_seconds: 8
  when: inventory_hostname == corokey_cluster_nodes[0]
"""

RETURN = r"""
members_before:
  description: Node ids joined before the reload.
  returned: always
  type: list
  elements: int
members:
  description: Node ids joined after the settle time.
  returned: success
  type: list
  elements: int
ring_id_before:
  description: The ring id before the reload.
  returned: always
  type: str
ring_id:
  description: The ring id after the settle time.
  returned: success
  type: str
reload_status:
  description: cmap C(config.reload_status) after the reload (C(1) is success).
  returned: success
  type: str
version:
  description: corosync's version.
  returned: always
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.corokey.corosync.plugins.module_utils.python_floor import python_too_old

if python_too_old() is None:  # the library does not parse on older Pythons
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.runtime import (
        cmap_values,
        live_state,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import (
        ONLINE_RELOAD_SINCE,
        version_tuple,
    )

    #: cmap config.reload_status after a successful reload (CS_OK).
    RELOAD_OK = "1"
    POLL_SECONDS = 0.5
    #: Quiet after corosync-cfgtool -R before the first look: on a loaded machine, queries
    #: made during the crypto switch starved a corosync between its phases (corokey's
    #: docs/rotate.md); corokey rotate waits as long.
    QUIET_SECONDS = 2.0


def reload_problem():
    values = cmap_values("config.reload")
    if values is None:
        return "corosync stopped answering"
    status = values.get("config.reload_status")
    error = values.get("config.reload_error_message")
    if error:
        return "the reload failed: %s" % error
    if status is not None and status != RELOAD_OK:
        return "the reload failed (config.reload_status %s)" % status
    return None


def watch(before, expected, seconds):
    """Poll until ``seconds`` pass; the first problem seen, else the last state."""
    deadline = time.monotonic() + seconds
    while True:
        problem = reload_problem()
        state = live_state()
        if problem is None and not state.running:
            problem = "corosync stopped answering"
        elif problem is None and state.members != expected:
            problem = "membership changed from %s to %s" % (sorted(expected), sorted(state.members))
        elif problem is None and state.ring_id != before.ring_id:
            problem = "the ring id changed from %s to %s: the cluster re-formed" % (before.ring_id, state.ring_id)
        if problem is not None or time.monotonic() >= deadline:
            return problem, state
        time.sleep(POLL_SECONDS)


def watch_seconds(asked):
    """``asked``, or longer: until a node that switched alone would have dropped out
    (token + consensus + 2 s after the reload, less the quiet pause)."""
    values = cmap_values("runtime.config.totem") or {}
    try:
        token = float(values["runtime.config.totem.token"]) / 1000.0
        consensus = float(values["runtime.config.totem.consensus"]) / 1000.0
    except (KeyError, ValueError):
        token, consensus = 3.0, 3.6  # corosync's defaults
    return max(asked, token + consensus + 2.0 - QUIET_SECONDS)


def run_reload(module, result):
    """corosync-cfgtool -R (not in check mode: exits there), then the quiet pause."""
    result["changed"] = True
    if module.check_mode:
        module.exit_json(**result)
    rc, out, err = module.run_command(["corosync-cfgtool", "-R"])
    if rc != 0:
        module.fail_json(msg="corosync-cfgtool -R failed (exit %d): %s" % (rc, (err or out).strip()), **result)
    time.sleep(QUIET_SECONDS)


def reload_node_only(module, result):
    """corosync-cfgtool -R on this node as it is; fails on a failed reload, else exits."""
    run_reload(module, result)
    problem = reload_problem()
    after = live_state()
    values = cmap_values("config.reload") or {}
    result.update(members=sorted(after.members), ring_id=after.ring_id, reload_status=values.get("config.reload_status"))
    if problem is not None:
        module.fail_json(msg="after corosync-cfgtool -R: %s" % problem, **result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            settle_seconds=dict(type="float", default=5),
            expected_members=dict(type="list", elements="int"),
            node_only=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    too_old = python_too_old()
    if too_old is not None:
        module.fail_json(msg=too_old, reference="python-too-old")
    before = live_state()
    result = {
        "changed": False,
        "members_before": sorted(before.members),
        "ring_id_before": before.ring_id,
        "version": before.version,
    }
    if not before.running:
        module.fail_json(msg="corosync does not answer on this node; start it, or reload from a member", **result)
    if version_tuple(before.version) < ONLINE_RELOAD_SINCE:
        module.fail_json(
            msg="corosync %s cannot reload its key online (3.1 or later can); restart the cluster instead"
            % before.version,
            **result
        )
    if module.params["node_only"]:
        reload_node_only(module, result)
    expected = set(module.params["expected_members"] or before.members)
    if before.members != expected:
        module.fail_json(
            msg="members are %s, not the expected %s; bring every node back before a reload"
            % (sorted(before.members), sorted(expected)),
            **result
        )
    run_reload(module, result)
    problem, after = watch(before, expected, watch_seconds(module.params["settle_seconds"]))
    result.update(members=sorted(after.members), ring_id=after.ring_id, reload_status=None)
    values = cmap_values("config.reload") or {}
    result["reload_status"] = values.get("config.reload_status")
    if problem is not None:
        module.fail_json(msg="after corosync-cfgtool -R: %s" % problem, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
