# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)

DOCUMENTATION = r"""
---
name: cluster_key
short_description: One key per cluster, kept on the controller, made on first use
version_added: "0.1.0"
description:
  - Returns the key of each named cluster, base64-encoded, as the
    C(corokey.corosync.authkey) module's O(corokey.corosync.authkey#module:content_b64) wants it.
  - The first use makes the key with corokey's generator (the kernel's CSPRNG) and keeps it
    in O(dir) (a directory of mode 0700) as C(CLUSTER/PROFILE.key), mode 0600, written as
    corokey writes keys (temp file created exclusively, fsync, rename, directory fsync).
    Later uses return the same key, so a playbook run twice does not make a new one.
  - For a rotation, O(next=true) returns the cluster's next key (made on first use, beside
    the current one as C(PROFILE.key.next)), and O(promote=true) makes the next key the
    current one (the previous kept as C(PROFILE.key.old)) and returns it; call it only once
    the cluster runs on the next key.
author:
  - corokey maintainers (@corokey)
options:
  _terms:
    description: Names of clusters (letters, digits, C(.), C(_), C(-)).
    required: true
    type: list
    elements: str
  dir:
    description:
      - Where the keys are kept. Defaults to C(corokey/clusters) under the user's data
        directory (C($XDG_DATA_HOME), else C(~/.local/share)).
    type: path
    env:
      - name: COROKEY_KEY_DIR
    vars:
      - name: corokey_key_dir
  profile:
    description: Which kind of secret (its default size and the sizes allowed).
    type: str
    default: corosync
    choices: [corosync, pacemaker, fence-xvm]
  size:
    description:
      - Size in bytes of a key made now (the profile's default when not given).
      - A stored key of another size is an error, not silently returned.
    type: int
  next:
    description: Return the next key of the cluster instead of the current one.
    type: bool
    default: false
  promote:
    description: Make the next key the current one, then return it.
    type: bool
    default: false
notes:
  - The keys are the secrets of whole clusters; keep O(dir) on an encrypted, backed-up disk
    that persists between runs (AWX and AAP execution environments lose C(~) after each job;
    point O(dir) at a persistent volume).
  - Every change (a key made, a next key promoted) happens under an exclusive lock of the
    cluster's directory, so parallel forks and concurrent playbooks agree on one key.
  - In check mode (C(ansible_check_mode)) nothing is written; a key that does not exist yet
    is stood in for by a value derived from the cluster's name, the same for every host,
    so that a check run plans as a real run would. It is never stored or installed.
"""

EXAMPLES = r"""
- name: Put each cluster's key on its nodes
  corokey.corosync.authkey:
    content_b64: "{{ lookup('corokey.corosync.cluster_key', corokey_cluster) }}"

- name: A 512-byte fence_xvm key kept in a directory of its own
  corokey.corosync.authkey:
    profile: fence-xvm
    content_b64: "{{ lookup('corokey.corosync.cluster_key', 'lab', profile='fence-xvm', size=512, dir='/srv/keys') }}"
"""

RETURN = r"""
_raw:
  description: The key of each cluster, base64-encoded.
  type: list
  elements: str
"""

import base64

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import PROFILES
from ansible_collections.corokey.corosync.plugins.plugin_utils.keystore import (
    ClusterKeys,
    corokey_failure,
    default_dir,
)


def key_for(cluster, directory, profile, size, want_next, promote, check_mode=False):
    """The key of ``cluster`` (bytes), as the lookup returns it base64-encoded."""
    keys = ClusterKeys(directory, cluster, profile, check_mode)
    if promote:
        return keys.promote()
    return keys.get(size, want_next)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        profile = PROFILES[self.get_option("profile")]
        directory = self.get_option("dir") or default_dir()
        check_mode = bool((variables or {}).get("ansible_check_mode", False))
        values = []
        for cluster in terms:
            try:
                data = key_for(
                    cluster,
                    directory,
                    profile,
                    self.get_option("size"),
                    self.get_option("next"),
                    self.get_option("promote"),
                    check_mode,
                )
            except CorokeyError as exc:
                raise AnsibleLookupError(str(corokey_failure(exc)))
            except AnsibleLookupError:
                raise
            except AnsibleError as exc:
                raise AnsibleLookupError(getattr(exc, "message", str(exc)))
            values.append(base64.b64encode(data).decode("ascii"))
        return values
