#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)

DOCUMENTATION = r"""
---
module: authkey
short_description: Put a Corosync (or Pacemaker, fence_xvm) key on a node, safely
version_added: "0.1.0"
description:
  - Writes a cluster secret exactly as C(corokey) does, with corokey's own library
    shipped in this collection's module_utils. A temp file in the key's directory,
    created exclusively without following links and with its final mode from the
    first instant, written, fsynced and renamed into place, then the directory
    fsynced. A symbolic link, directory or other non-regular file at the key's path
    is refused, never followed or replaced.
  - With O(state=staged) the key is written next to the live key as
    C(.NAME.corokey-staged) (same owner and mode), and O(state=committed) later
    puts it in place after checking its fingerprint, so that a playbook can stage
    a key on every node of a cluster and commit only when all of them staged it.
  - Key bytes are never shown; results and diffs carry the fingerprint
    (C(SHA256:) and base64, as ssh-keygen prints), size, owner and mode.
author:
  - corokey maintainers (@corokey)
options:
  path:
    description:
      - The key file. Defaults to the profile's path (C(/etc/corosync/authkey) for
        the corosync profile).
    type: path
  profile:
    description:
      - Which kind of secret this is. It gives the default path, the owner, the mode and
        the sizes allowed.
      - C(corosync) is C(/etc/corosync/authkey), root:root, 0400, 128 to 4096 bytes;
        C(pacemaker) is C(/etc/pacemaker/authkey), hacluster:haclient, 0400;
        C(fence-xvm) is C(/etc/cluster/fence_xvm.key), root:root, 0600.
    type: str
    default: corosync
    choices: [corosync, pacemaker, fence-xvm]
  content_b64:
    description:
      - The key, base64-encoded (what the C(corokey.corosync.cluster_key) lookup returns).
      - Required for O(state=present) and O(state=staged) unless O(src) is given.
    type: str
  src:
    description:
      - A key file on the controller, read as bytes by this module's action plugin
        and sent instead of O(content_b64). Relative paths are searched as the
        C(copy) module searches them (the role's or playbook's C(files/)).
    type: path
  state:
    description:
      - V(present) puts the key at O(path).
      - V(staged) writes it as the staged copy next to O(path), leaving the live key alone.
      - V(committed) puts the staged copy in place (and removes it). Without a staged
        copy it succeeds, unchanged, only when the live key already has O(expected_fingerprint).
      - V(aborted) removes the staged copy, if any.
      - V(restored) puts the backup C(PATH.old) back in place (written as the key, with the
        key's owner and mode; C(PATH.old) stays), to undo a commit.
    type: str
    default: present
    choices: [present, staged, committed, aborted, restored]
  expected_fingerprint:
    description:
      - With O(state=committed), the fingerprint the staged copy must have
        (C(SHA256:...) or 64 hex digits); another staged copy is refused and left alone.
      - In check mode, where the staging before did not write either, a commit without a
        staged copy predicts the commit of this fingerprint.
    type: str
  backup:
    description:
      - Keep the key being replaced as C(PATH.old), with its owner and its mode less any
        group or other bits.
    type: bool
    default: false
extends_documentation_fragment:
  - action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows fingerprint, size, owner and mode, never key bytes.
  platform:
    platforms: posix
notes:
  - Enable pipelining (C(ANSIBLE_PIPELINING=true)) so that the module and its arguments,
    the key among them, reach the node through ssh's standard input instead of a file
    in the remote temp directory.
requirements:
  - Python 3.9 or later on the node.
seealso:
  - module: corokey.corosync.authkey_info
  - module: corokey.corosync.authkey_reload
"""

EXAMPLES = r"""
- name: Put the cluster's key on the node
  corokey.corosync.authkey:
    content_b64: "{{ lookup('corokey.corosync.cluster_key', 'prod-db') }}"

- name: Stage a key from a file on the controller
  corokey.corosync.authkey:
    src: keys/prod-db.authkey
    state: staged
  register: staged

- name: Commit it once every node staged the same key
  corokey.corosync.authkey:
    state: committed
    expected_fingerprint: "{{ staged.staged_fingerprint }}"
    backup: true

- name: Pacemaker Remote's key
  corokey.corosync.authkey:
    profile: pacemaker
    content_b64: "{{ lookup('corokey.corosync.cluster_key', 'prod-db', profile='pacemaker') }}"
"""

RETURN = r"""
path:
  description: The key file.
  returned: always
  type: str
  sample: /etc/corosync/authkey
fingerprint:
  description: Fingerprint of the key at O(path) after the task (null when there is none).
  returned: always
  type: str
  sample: "SHA256:0dH0Tb3pB6bJ0mEJo9Q8r7n5yJv0VtK2a8S2Yqk0b1E"
previous_fingerprint:
  description: Fingerprint of the key at O(path) before the task (null when there was none).
  returned: always
  type: str
staged_fingerprint:
  description: Fingerprint of the staged copy (or, when the live key already is the wanted
    key, of the live key).
  returned: when O(state) is V(staged) or V(committed)
  type: str
staged_path:
  description: Where the staged copy is kept.
  returned: always
  type: str
  sample: /etc/corosync/.authkey.corokey-staged
staged:
  description: Whether a staged copy is waiting to be committed after the task.
  returned: always
  type: bool
backup_file:
  description: The C(.old) copy made of the replaced key.
  returned: when a key was replaced with O(backup=true)
  type: str
  sample: /etc/corosync/authkey.old
size:
  description: Size in bytes of the key at O(path) after the task.
  returned: when the key exists
  type: int
  sample: 256
owner:
  description: Owner of the key at O(path) after the task.
  returned: when the key exists
  type: str
  sample: root
group:
  description: Group of the key at O(path) after the task.
  returned: when the key exists
  type: str
  sample: root
mode:
  description: Permission bits of the key at O(path) after the task.
  returned: when the key exists
  type: str
  sample: "0400"
reference:
  description: corokey's short reference of the error, on failure.
  returned: failure
  type: str
  sample: symlink
"""

import base64
import binascii
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.corokey.corosync.plugins.module_utils._corokey.checks import content_errors
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.key import fingerprint
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import PROFILES
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.secretfile import write_secret
from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import (
    describe,
    description,
    diff_text,
    error_message,
    read_if_present,
    remove_file,
    same_fingerprint,
    staged_path,
)


class Refused(Exception):
    """A precondition failed: message, corokey-style reference."""

    def __init__(self, message, reference):
        super(Refused, self).__init__(message)
        self.message = message
        self.reference = reference


def decode_key(params, profile):
    text = params["content_b64"]
    if text is None:
        raise Refused(
            "state=%s needs the key: give content_b64 or src" % params["state"], "no-key"
        )
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(
            "content_b64 is not valid base64; pass the lookup's value or base64 of the key file",
            "bad-base64",
        )
    errors = content_errors(data, profile, "content_b64")
    if errors:
        raise Refused(errors[0].message, errors[0].reference)
    return data


def wanted_owner(profile):
    """The owner to set, or None when not root (a key is then written as the caller)."""
    if os.geteuid() != 0:
        return None
    return profile.owner_ids()


def is_exactly(content, data, mode, owner):
    return (
        content is not None
        and content.data == data
        and content.facts.mode == mode
        and content.facts.nlink == 1
        and (owner is None or (content.facts.uid, content.facts.gid) == tuple(owner))
    )


def predicted(data, mode, owner):
    """What describe() will say of the file once written (for check mode)."""
    uid, gid = owner if owner is not None else (os.geteuid(), os.getegid())
    return description(data, len(data), uid, gid, mode)


class Run(object):
    """One run of the module: what is there, what to do, what was done."""

    def __init__(self, module, profile, path):
        self.module = module
        self.check = module.check_mode
        self.profile = profile
        self.path = path
        self.staged = staged_path(path)
        self.mode = profile.mode
        self.owner = wanted_owner(profile)
        self.live = read_if_present(path)
        self.before = describe(self.live)
        self.after = self.before
        self.diff_path = path
        self.result = {
            "changed": False,
            "path": path,
            "staged_path": self.staged,
            "previous_fingerprint": self.before and self.before["fingerprint"],
        }

    def write_live(self, data, backup):
        self.result["changed"] = True
        self.after = predicted(data, self.mode, self.owner)
        if backup and self.live is not None:
            self.result["backup_file"] = self.path + ".old"
        if not self.check:
            write_secret(
                self.path,
                data,
                mode=self.mode,
                owner=self.owner,
                keep_old=backup and self.live is not None,
            )

    def remove_staged(self):
        self.result["changed"] = True
        if not self.check:
            remove_file(self.staged)

    def present(self, data, backup):
        if not is_exactly(self.live, data, self.mode, self.owner):
            self.write_live(data, backup)

    def stage(self, data):
        existing = read_if_present(self.staged)
        if is_exactly(self.live, data, self.mode, self.owner):
            # Nothing to stage: a leftover copy of another key would only mislead a commit.
            if existing is not None:
                self.remove_staged()
            self.result["staged_fingerprint"] = fingerprint(data)
            return False
        self.diff_path = self.staged
        self.before = describe(existing)
        self.after = self.before
        if not is_exactly(existing, data, self.mode, self.owner):
            self.result["changed"] = True
            self.after = predicted(data, self.mode, self.owner)
            if not self.check:
                write_secret(self.staged, data, mode=self.mode, owner=self.owner)
        self.result["staged_fingerprint"] = fingerprint(data)
        return True

    def commit(self, expected, backup):
        staged = read_if_present(self.staged)
        if staged is None:
            if expected and self.live is not None and same_fingerprint(self.live.data, expected):
                self.result["staged_fingerprint"] = fingerprint(self.live.data)
                return
            if expected and self.check:
                # The staging task before this one did not write either (check mode):
                # predict the commit it would have made possible.
                self.result.update(changed=True, staged_fingerprint=expected)
                self.after = dict(self.before or {}, fingerprint=expected)
                return
            raise Refused(
                "no staged copy at %s to commit%s; stage the key first (state=staged)"
                % (self.staged, "" if expected is None else " and %s is not %s" % (self.path, expected)),
                "nothing-staged",
            )
        self.result["staged_fingerprint"] = fingerprint(staged.data)
        if expected is not None and not same_fingerprint(staged.data, expected):
            raise Refused(
                "the staged copy %s has fingerprint %s, not the expected %s; it was left in place: "
                "stage the key again, or abort (state=aborted)"
                % (self.staged, fingerprint(staged.data), expected),
                "staged-differs",
            )
        errors = content_errors(staged.data, self.profile, self.staged)
        if errors:
            raise Refused(errors[0].message, errors[0].reference)
        if not is_exactly(self.live, staged.data, self.mode, self.owner):
            self.write_live(staged.data, backup)
        self.remove_staged()

    def restore(self):
        backup = read_if_present(self.path + ".old")
        if backup is None:
            raise Refused(
                "no %s.old to restore; nothing was committed with backup=true" % self.path,
                "nothing-to-restore",
            )
        if not is_exactly(self.live, backup.data, self.mode, self.owner):
            self.write_live(backup.data, False)

    def abort(self):
        if os.path.lexists(self.staged):  # even a link there is ours to remove: it is our name
            self.remove_staged()

    def finish(self, staged_waiting):
        # After staging, the live key is what it was: report that, diff the staged copy.
        after = self.after if self.diff_path == self.path else describe(self.live)
        self.result["fingerprint"] = after and after["fingerprint"]
        if after is not None:
            user, group = after["owner"].split(":", 1)
            self.result.update(size=after["size"], owner=user, group=group, mode=after["mode"])
        self.result["staged"] = staged_waiting
        if self.module._diff:
            self.result["diff"] = {
                "before_header": self.diff_path,
                "after_header": self.diff_path,
                "before": diff_text(self.before),
                "after": diff_text(self.after),
            }
        return self.result


def run_module(module):
    params = module.params
    if params["src"] is not None:
        raise Refused(
            "src is read on the controller by this module's action plugin; call the module as "
            "corokey.corosync.authkey (not through another action), or pass content_b64",
            "src-without-action",
        )
    profile = PROFILES[params["profile"]]
    path = params["path"] or profile.path
    if not os.path.isabs(path):
        raise Refused("path %s is not absolute; give the full path of the key" % path, "relative-path")
    run = Run(module, profile, path)
    state = params["state"]
    staged_waiting = False
    if state == "present":
        run.present(decode_key(params, profile), params["backup"])
    elif state == "staged":
        staged_waiting = run.stage(decode_key(params, profile))
    elif state == "committed":
        run.commit(params["expected_fingerprint"], params["backup"])
    elif state == "restored":
        run.restore()
    else:
        run.abort()
    return run.finish(staged_waiting)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            profile=dict(type="str", default="corosync", choices=sorted(PROFILES)),
            content_b64=dict(type="str", no_log=True),
            src=dict(type="path"),
            state=dict(
                type="str",
                default="present",
                choices=["present", "staged", "committed", "aborted", "restored"],
            ),
            expected_fingerprint=dict(type="str"),
            backup=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("content_b64", "src")],
        supports_check_mode=True,
    )
    try:
        result = run_module(module)
    except Refused as exc:
        module.fail_json(msg=exc.message, reference=exc.reference)
    except CorokeyError as exc:
        module.fail_json(msg=error_message(exc), reference=exc.reference)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
