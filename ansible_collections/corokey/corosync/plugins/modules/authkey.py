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
      - The key file.
      - For the C(corosync) profile it defaults to the file this node's corosync reads,
        from its own O(conf_path) read as corosync reads it (C(totem.keyfile), else
        C(/etc/corosync/authkey); the default key when there is no corosync.conf yet).
        Without O(path), a corosync.conf with the key inline (C(totem.key)) or with
        crypto off (corosync reads no key) is refused; naming O(path) places a key
        before crypto is turned on, as C(corokey install --key-path) does.
      - For the other profiles, the profile's path; for C(pacemaker), C(PCMK_authkey_location)
        from C(/etc/default/pacemaker) or C(/etc/sysconfig/pacemaker) when set there, as
        Pacemaker reads it.
    type: path
  conf_path:
    description:
      - The corosync configuration that says where corosync reads its key (the
        C(corosync) profile without O(path)). By default the file this node's corosync
        reads (C(-c) in C(COROSYNC_OPTIONS) for 3.x, C(COROSYNC_MAIN_CONFIG_FILE) for 2.x,
        from C(/etc/default/corosync) or C(/etc/sysconfig/corosync)), else
        C(/etc/corosync/corosync.conf), read as that corosync generation reads it (dotted
        names such as a top-level C(totem.keyfile), 2.x's crypto defaults).
    type: path
  profile:
    description:
      - Which kind of secret this is. It gives the default path, the owner, the mode and
        the sizes allowed.
      - C(corosync) is C(/etc/corosync/authkey), root:root, 0400, 128 to 4096 bytes;
        C(pacemaker) is C(/etc/pacemaker/authkey), hacluster:haclient, 0400 (a key
        already there with the same bytes as Debian's root:haclient 0640, or root 0400 on a
        remote node, is left as it is, by the profile's one owner and mode rule);
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
      - A file encrypted with C(ansible-vault) is decrypted in memory (see O(decrypt)),
        never through a decrypted temp file on the controller.
    type: path
  decrypt:
    description:
      - Decrypt a vault-encrypted O(src) with the play's vault secrets, as
        C(ansible.builtin.copy) does; V(false) sends the file as it is.
    type: bool
    default: true
  local_follow:
    description:
      - Follow a symbolic link at O(src) on the controller, as C(ansible.builtin.copy)
        does. A link at the key's path on the node is always refused.
    type: bool
    default: true
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
      - With O(state=committed) (required there), the fingerprint the staged copy must
        have (C(SHA256:...) or 64 hex digits); another staged copy is refused and left alone.
      - With O(state=restored), the fingerprint C(PATH.old) must have (the key the
        commit replaced); another C(.old) is refused and left alone. A key that already
        has this fingerprint is left as it is (a node that never committed).
      - In check mode, where the staging before did not write either, a commit without a
        staged copy predicts the commit of this fingerprint.
    type: str
  backup:
    description:
      - Keep the key being replaced as C(PATH.old), with its owner and its mode less any
        group or other bits.
    type: bool
    default: false
  warn_running:
    description:
      - Warn when the task changes the key file of a running corosync, which keeps the key
        it started with until C(corosync-cfgtool -R) (3.1 and later) or a restart.
      - The C(corokey.corosync.rotate) role, and the C(corokey.corosync.authkey) role with
        C(corokey_apply) V(reload) or V(restart), set V(false) on their commits and restores.
        They reload or restart the cluster onto the key right after, or put the old key back
        and say so, so the warning would only be noise there.
    type: bool
    default: true
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
  - The key's directory and each one above it must be owned by root (or the user the
    module runs as) and writable by nobody else, as corokey's CLI requires.
  - When the key of a running corosync changes, the result carries a warning (unless
    O(warn_running=false)); corosync keeps the key it started with until
    C(corosync-cfgtool -R) (3.1 and later) or a restart, and a node restarted alone comes
    up on the new key and cannot rejoin.
  - A key that is text (base64, hex, a vault file not decrypted) gets a warning, as
    C(corokey check) gives (corosync uses the characters as they are).
  - Core dumps are off (RLIMIT_CORE 0) while the module holds key bytes.
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
  description: Fingerprint of the key at O(path) after the task, read back from the disk
    (null when there is none; in check mode, the prediction).
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

from ansible_collections.corokey.corosync.plugins.module_utils.python_floor import python_too_old

if python_too_old() is None:  # the library does not parse on older Pythons
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.checks import (
        ERROR,
        WARNING,
        check_content,
        content_errors,
        host_fips_enabled,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.corosync_conf import (
        load_local_conf,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey import pacemaker
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.key import fingerprint
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.pacemaker_access import (
        local_access_findings,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import PROFILES
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.runtime import live_state
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.secretfile import (
        forbid_core_dumps,
        write_secret,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import (
        corosync_key_location,
        describe,
        description,
        diff_text,
        error_message,
        profile_key_path,
        read_if_present,
        remove_file,
        same_fingerprint,
        staged_path,
        unsafe_directory,
    )

PROFILE_NAMES = ["corosync", "fence-xvm", "pacemaker"]


class Refused(Exception):
    """A precondition failed: message, corokey-style reference."""

    def __init__(self, message, reference):
        super(Refused, self).__init__(message)
        self.message = message
        self.reference = reference


def decode_key(module, profile):
    params = module.params
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
    findings = check_content(data, len(data), profile, host_fips_enabled(), "the key")
    errors = [finding for finding in findings if finding.severity == ERROR]
    if errors:
        raise Refused(errors[0].message, errors[0].reference)
    for finding in findings:
        if finding.severity == WARNING:
            module.warn("%s (%s)" % (finding.message, finding.reference))
    return data


def wanted_owner(profile):
    """The owner to set, or None when not root (a key is then written as the caller)."""
    if os.geteuid() != 0:
        return None
    return profile.local_owner()[:2]  # pacemaker: root:root where hacluster does not exist


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
        # Pacemaker 2.x may read corosync's key as Pacemaker Remote's (corokey.pacemaker):
        # keep it readable for Pacemaker there, and never change it.
        self.shared = None
        if profile.corosync and self.live is not None:
            self.shared = pacemaker.local_shared_key(path)
        if self.shared is not None:
            self.mode = pacemaker.SHARED_MODE
            self.owner = self.shared[1:] if self.owner is not None else None
        self.before = describe(self.live)
        self.after = self.before
        self.diff_path = path
        self.key_location = None
        self.result = {
            "changed": False,
            "path": path,
            "staged_path": self.staged,
            "previous_fingerprint": self.before and self.before["fingerprint"],
        }

    def holds(self, data):
        """Whether the live key is ``data`` as it should be kept: the profile's owner and
        mode, or for the pacemaker profile any owner and mode its one rule accepts without
        a remark (Debian's root:haclient 0640, pcs's hacluster:haclient 0400; root 0400 on
        a remote node), which is left as it is rather than rewritten."""
        if is_exactly(self.live, data, self.mode, self.owner):
            return True
        if self.profile.name != "pacemaker" or self.live is None or self.owner is None:
            return False
        facts = self.live.facts
        return (
            self.live.data == data
            and facts.nlink == 1
            and not local_access_findings(self.path, facts.mode, facts.uid, facts.gid)
        )

    def warn_if_running(self, after):
        """corosync keeps the key it started with: say so when its key file changed
        (unless the caller applies the key itself right after: the roles)."""
        if not self.module.params["warn_running"] or not self.profile.corosync or self.diff_path != self.path:
            return
        old = self.before and self.before["fingerprint"]
        new = after and after["fingerprint"]
        if old == new or self.key_location != self.path:
            return
        if not live_state().running:
            return
        self.module.warn(
            "corosync runs on this node and still uses the key it started with (%s); the new key "
            "%s takes effect on every node at once with corosync-cfgtool -R (3.1 and later) or a "
            "restart of the whole cluster: a node restarted alone now cannot rejoin"
            % (old or "none", new)
        )

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

    def keep_remote_key(self, data):
        if self.shared is not None and self.live is not None and data != self.live.data:
            raise Refused(
                pacemaker.changes_remote_key(self.path, self.shared[0]), pacemaker.REFERENCE
            )

    def remove_staged(self):
        self.result["changed"] = True
        if not self.check:
            remove_file(self.staged)

    def present(self, data, backup):
        self.keep_remote_key(data)
        if not self.holds(data):
            self.write_live(data, backup)

    def stage(self, data):
        self.keep_remote_key(data)
        existing = read_if_present(self.staged)
        if self.holds(data):
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
        self.keep_remote_key(staged.data)
        if not self.holds(staged.data):
            self.write_live(staged.data, backup)
        self.remove_staged()

    def restore(self, expected):
        if expected is not None and self.live is not None and same_fingerprint(self.live.data, expected):
            return  # the key is the one a restore would put back (a node that never committed)
        backup = read_if_present(self.path + ".old")
        if backup is None:
            raise Refused(
                "no %s.old to restore; nothing was committed with backup=true" % self.path,
                "nothing-to-restore",
            )
        if expected is not None and not same_fingerprint(backup.data, expected):
            raise Refused(
                "%s.old has fingerprint %s, not the expected %s (the key the commit replaced); "
                "nothing restored: put the old key back by hand" % (self.path, fingerprint(backup.data), expected),
                "old-differs",
            )
        if not self.holds(backup.data):
            self.write_live(backup.data, False)

    def abort(self):
        if os.path.lexists(self.staged):  # even a link there is ours to remove: it is our name
            self.remove_staged()

    def finish(self, staged_waiting):
        # After staging, the live key is what it was: report that, diff the staged copy.
        # What was written is read back from the disk: a result never reports a plan.
        if self.check:
            after = self.after if self.diff_path == self.path else describe(self.live)
        else:
            after = describe(read_if_present(self.path))
            if self.diff_path == self.path:
                self.after = after
            elif self.result["changed"]:
                self.after = describe(read_if_present(self.staged))
        self.result["fingerprint"] = after and after["fingerprint"]
        if after is not None:
            user, group = after["owner"].split(":", 1)
            self.result.update(size=after["size"], owner=user, group=group, mode=after["mode"])
        self.result["staged"] = staged_waiting
        self.warn_if_running(after)
        if self.module._diff:
            self.result["diff"] = {
                "before_header": self.diff_path,
                "after_header": self.diff_path,
                "before": diff_text(self.before),
                "after": diff_text(self.after),
            }
        return self.result


def conf_or_none(conf_path):
    """The node's corosync.conf as its corosync reads it (``conf_path`` None: the file its
    startup files name, with its generation's rules); None when there is none to read, as
    the CLI's commands take it (corosync_conf.local_key_path)."""
    try:
        return load_local_conf(conf_path)
    except CorokeyError as exc:
        if exc.reference == "conf-unreadable":
            return None
        raise


def run_module(module):
    params = module.params
    if params["src"] is not None:
        raise Refused(
            "src is read on the controller by this module's action plugin; call the module as "
            "corokey.corosync.authkey (not through another action), or pass content_b64",
            "src-without-action",
        )
    profile = PROFILES[params["profile"]]
    key_location = None
    if profile.corosync:
        conf = conf_or_none(params["conf_path"])
        conf_path = conf.path if conf is not None else params["conf_path"]
        location = corosync_key_location(conf, conf_path, params["path"])
        if location.problem is not None:
            raise Refused("%s; %s" % (location.problem, location.hint), location.reference)
        path = location.path
        # Only the file corosync reads is worth a warning about a running corosync.
        key_location = corosync_key_location(conf, conf_path, None).path
    else:
        path = params["path"] or profile_key_path(profile)
    if not os.path.isabs(path):
        raise Refused("path %s is not absolute; give the full path of the key" % path, "relative-path")
    unsafe = unsafe_directory(path)
    if unsafe is not None:
        directory, uid, mode = unsafe
        raise Refused(
            "%s (owner uid %d, mode %04o) can be written by others: they could swap the key for a "
            "link while it is written; run: chown root %s && chmod go-w %s"
            % (directory, uid, mode, directory, directory),
            "unsafe-directory",
        )
    run = Run(module, profile, path)
    run.key_location = key_location
    state = params["state"]
    staged_waiting = False
    if state == "present":
        run.present(decode_key(module, profile), params["backup"])
    elif state == "staged":
        staged_waiting = run.stage(decode_key(module, profile))
    elif state == "committed":
        run.commit(params["expected_fingerprint"], params["backup"])
    elif state == "restored":
        run.restore(params["expected_fingerprint"])
    else:
        run.abort()
    return run.finish(staged_waiting)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            conf_path=dict(type="path"),
            profile=dict(type="str", default="corosync", choices=PROFILE_NAMES),
            content_b64=dict(type="str", no_log=True),
            src=dict(type="path"),
            decrypt=dict(type="bool", default=True),
            local_follow=dict(type="bool", default=True),
            state=dict(
                type="str",
                default="present",
                choices=["present", "staged", "committed", "aborted", "restored"],
            ),
            expected_fingerprint=dict(type="str"),
            backup=dict(type="bool", default=False),
            warn_running=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("content_b64", "src")],
        required_if=[("state", "committed", ["expected_fingerprint"])],
        supports_check_mode=True,
    )
    too_old = python_too_old()
    if too_old is not None:
        module.fail_json(msg=too_old, reference="python-too-old")
    forbid_core_dumps()  # before the first key byte is read or decoded
    try:
        result = run_module(module)
    except Refused as exc:
        module.fail_json(msg=exc.message, reference=exc.reference)
    except CorokeyError as exc:
        module.fail_json(msg=error_message(exc), reference=exc.reference)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
