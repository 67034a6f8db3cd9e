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
    description: Size in bytes of a key made now (the profile's default when not given).
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
  - The keys are the secrets of whole clusters; keep O(dir) on an encrypted, backed-up disk.
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
import os
import re

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.key import generate_key
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import (
    PROFILES,
    key_size,
)
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.secretfile import (
    lstat_facts,
    read_secret,
    write_secret,
)
from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import error_message

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FILE_MODE = 0o600
DIR_MODE = 0o700


def default_dir():
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "corokey", "clusters")


def private_dir(path):
    """Create ``path`` (and parents) as needed; insist that it is a 0700 directory of ours."""
    if not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent and not os.path.isdir(parent):
            os.makedirs(parent, mode=DIR_MODE)
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            pass  # made by a concurrent run: checked below like any other
    facts = lstat_facts(path)
    if facts.kind != "directory":
        raise AnsibleLookupError(
            "cluster_key: %s is a %s, not a directory; move it away or pass dir=" % (path, facts.kind)
        )
    if facts.uid != os.geteuid() or facts.mode & 0o077:
        raise AnsibleLookupError(
            "cluster_key: %s is mode %04o (owner uid %d): cluster keys need a directory of "
            "mode 0700 owned by you; run: chmod 0700 %s" % (path, facts.mode, facts.uid, path)
        )


def read_key(path, profile):
    """The key kept at ``path``, or None; refuses one others may read or of a bad size."""
    if lstat_facts(path).kind == "missing":
        return None
    content = read_secret(path)
    if content.facts.mode & 0o077:
        raise AnsibleLookupError(
            "cluster_key: %s is mode %04o, readable by others; the key may be exposed: "
            "run chmod 0600 %s and consider rotating the cluster's key" % (path, content.facts.mode, path)
        )
    key_size(profile, len(content.data))
    return content.data


def key_for(cluster, directory, profile, size, want_next, promote):
    if not _CLUSTER_NAME.match(cluster or ""):
        raise AnsibleLookupError(
            "cluster_key: %r is no cluster name; use letters, digits, '.', '_' and '-'" % (cluster,)
        )
    private_dir(directory)
    cluster_dir = os.path.join(directory, cluster)
    private_dir(cluster_dir)
    current_path = os.path.join(cluster_dir, profile.name + ".key")
    next_path = current_path + ".next"
    current = read_key(current_path, profile)
    if promote:
        pending = read_key(next_path, profile)
        if pending is None:
            if current is None:
                raise AnsibleLookupError("cluster_key: %s has no key to promote" % cluster)
            return current  # promoted before: nothing pending
        write_secret(current_path, pending, mode=FILE_MODE, keep_old=current is not None)
        os.unlink(next_path)
        return pending
    path = next_path if want_next else current_path
    data = read_key(path, profile)
    if data is None:
        data = create_once(path, generate_key(key_size(profile, size)), profile)
    return data


def create_once(path, data, profile):
    """Put ``data`` at ``path`` unless another run got there first; return what is there.

    Ansible runs a lookup once per host, in parallel forks: the nodes of one cluster
    must all get the key the first fork made.  So the key is written whole under a
    name of its own, then linked to ``path``, which fails if ``path`` exists.
    """
    directory, name = os.path.split(path)
    mine = os.path.join(directory, ".%s.%d-%s" % (name, os.getpid(), os.urandom(4).hex()))
    write_secret(mine, data, mode=FILE_MODE)
    try:
        os.link(mine, path)
    except FileExistsError:
        data = read_key(path, profile)
    finally:
        os.unlink(mine)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return data


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        profile = PROFILES[self.get_option("profile")]
        directory = self.get_option("dir") or default_dir()
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
                )
            except CorokeyError as exc:
                raise AnsibleLookupError("cluster_key: " + error_message(exc))
            values.append(base64.b64encode(data).decode("ascii"))
        return values
