# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""Action plugin of corokey.corosync.authkey_adopt: the nodes' key into the controller's store.

The store is asked first: when it holds a key for the cluster, nothing is read on
the node.  Otherwise the module reads the key on the node and answers it masked
with a one-time pad this plugin made (random bytes as long as the largest key,
sent no_log in the module's arguments): ``-vvv`` prints what a module answers, and
shows only the masked bytes.  This plugin unmasks the key, checks its
fingerprint, keeps it in the store (under the cluster's lock, nothing in check
mode) and returns fingerprints only.
"""

import base64
import binascii
import os

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.key import fingerprint
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import PROFILES
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.secretfile import forbid_core_dumps
from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import same_fingerprint
from ansible_collections.corokey.corosync.plugins.plugin_utils.keystore import (
    ClusterKeys,
    corokey_failure,
    default_dir,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _key_dir(self, task_vars):
        given = self._task.args.get("key_dir")
        if given:
            return given
        if task_vars.get("corokey_key_dir"):
            return self._templar.template(task_vars["corokey_key_dir"])
        return os.environ.get("COROKEY_KEY_DIR") or default_dir()

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        check_mode = bool(self._task.check_mode)
        try:
            profile = PROFILES[args.get("profile") or "corosync"]
            keys = ClusterKeys(self._key_dir(task_vars or {}), args["cluster"], profile, check_mode)
            stored = keys.current()
        except KeyError as exc:
            result.update(failed=True, msg="authkey_adopt: missing or bad option %s" % exc)
            return result
        except (AnsibleError, CorokeyError) as exc:
            result.update(failed=True, msg=str(corokey_failure(exc)))
            return result
        expected = args.get("expected_fingerprint") or ""
        if stored is not None:
            result.update(changed=False, adopted=False, stored_fingerprint=fingerprint(stored))
            return result
        forbid_core_dumps()  # this worker is about to hold key bytes
        args.pop("key_dir", None)
        pad = os.urandom(profile.max_size + 1)  # one byte more: a longer key shows as too long
        args["pad_b64"] = base64.b64encode(pad).decode("ascii")
        answer = self._execute_module(
            module_name="corokey.corosync.authkey_adopt", module_args=args, task_vars=task_vars
        )
        masked_b64 = answer.pop("masked_b64", None)
        answer.pop("invocation", None)
        if answer.get("failed") or masked_b64 is None:
            result.update(failed=True, msg=answer.get("msg", "the node did not answer its key"))
            result.update((k, answer[k]) for k in ("reference", "unreachable") if k in answer)
            return result
        try:
            masked = base64.b64decode(masked_b64, validate=True)
        except (binascii.Error, ValueError):
            result.update(failed=True, msg="the node answered no base64 key; nothing adopted")
            return result
        data = bytes(a ^ b for a, b in zip(masked, pad))
        if not same_fingerprint(data, expected):
            result.update(
                failed=True,
                msg="the key on the node is now %s, not the %s every node reported; nothing adopted: "
                "run again" % (fingerprint(data), expected),
                reference="adopt-changed",
            )
            return result
        try:
            changed, kept = keys.adopt(data)
        except (AnsibleError, CorokeyError) as exc:
            result.update(failed=True, msg=str(corokey_failure(exc)))
            return result
        result.update(changed=changed, adopted=changed, stored_fingerprint=fingerprint(kept))
        return result
