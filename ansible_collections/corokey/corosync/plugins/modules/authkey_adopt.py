#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)

DOCUMENTATION = r"""
---
module: authkey_adopt
short_description: Keep the key a cluster's nodes already hold as its key on the controller
version_added: "0.2.0"
description:
  - For a cluster whose nodes all hold one sound key while the controller's key store
    (the C(corokey.corosync.cluster_key) lookup's directory) has none for it, for example
    a new admin or a fresh job container, this makes the nodes' key the cluster's key in
    the store, so that the next run of the C(corokey.corosync.authkey) role changes
    nothing on the nodes.
  - The action plugin reads the key on one node (this module, run once, no link followed)
    and writes it to the store on the controller; the key bytes never appear in the task's
    result, in facts or in output. A store that already holds a key for the cluster is
    left alone and its fingerprint reported.
  - The C(corokey.corosync.authkey) role runs it after checking every node; run it alone
    only where you have checked that every node of the cluster holds the same key.
author:
  - corokey maintainers (@corokey)
options:
  cluster:
    description: The cluster's name (the cluster_key lookup's term).
    type: str
    required: true
  path:
    description: The key file on the node.
    type: path
    required: true
  profile:
    description: Which kind of secret (its sizes).
    type: str
    default: corosync
    choices: [corosync, fence-xvm, pacemaker]
  expected_fingerprint:
    description: The fingerprint every node reported; a key read now that differs is refused.
    type: str
    required: true
  key_dir:
    description:
      - The key store. Defaults to the C(corokey_key_dir) variable, else C(COROKEY_KEY_DIR),
        else C(corokey/clusters) under the user's data directory.
    type: path
  pad_b64:
    description:
      - Set by the action plugin, not by hand. A one-time pad of random bytes the key is
        masked with on its way back (C(-vvv) shows what a module prints), base64-encoded.
    type: str
extends_documentation_fragment:
  - action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written on the controller.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - Python 3.9 or later on the node.
seealso:
  - module: corokey.corosync.authkey_info
  - module: corokey.corosync.authkey
"""

EXAMPLES = r"""
- name: Keep the nodes' key as the cluster's key
  corokey.corosync.authkey_adopt:
    cluster: prod-db
    path: /etc/corosync/authkey
    expected_fingerprint: "{{ info.key.fingerprint }}"
  run_once: true
"""

RETURN = r"""
adopted:
  description: Whether the nodes' key became the cluster's key in the store now.
  returned: success
  type: bool
stored_fingerprint:
  description: Fingerprint of the cluster's key in the store after the task.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.corokey.corosync.plugins.module_utils.python_floor import python_too_old

if python_too_old() is None:  # the library does not parse on older Pythons
    import base64

    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.key import fingerprint
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.secretfile import (
        forbid_core_dumps,
        read_secret,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import error_message


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            path=dict(type="path", required=True),
            profile=dict(type="str", default="corosync", choices=["corosync", "fence-xvm", "pacemaker"]),
            expected_fingerprint=dict(type="str", required=True),
            key_dir=dict(type="path"),
            pad_b64=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    too_old = python_too_old()
    if too_old is not None:
        module.fail_json(msg=too_old, reference="python-too-old")
    forbid_core_dumps()
    pad = base64.b64decode(module.params["pad_b64"] or "")
    if not pad:
        module.fail_json(
            msg="authkey_adopt runs through its action plugin (it sets pad_b64)", reference="adopt-without-action"
        )
    try:
        content = read_secret(module.params["path"], limit=len(pad))
    except CorokeyError as exc:
        module.fail_json(msg=error_message(exc), reference=exc.reference)
    # What a module prints can be shown (-vvv prints the raw answer): the key leaves the
    # node only masked with the controller's one-time pad, as long as the key.
    masked = bytes(a ^ b for a, b in zip(content.data, pad))
    module.exit_json(
        changed=False,
        fingerprint=fingerprint(content.data),
        masked_b64=base64.b64encode(masked).decode("ascii"),
    )


if __name__ == "__main__":
    main()
