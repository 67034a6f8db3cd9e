# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""Action plugin of corokey.corosync.authkey: reads ``src`` on the controller.

The key file is read as bytes with corokey's safe reader (a regular file only, at
most 1 MiB; a link at ``src`` is followed only with ``local_follow``, as
``ansible.builtin.copy`` follows it), decrypted in memory when it is a vault file
(the loader's own VaultLib on the bytes read: never ``get_real_file``, which
leaves a decrypted temp file on the controller), and handed to the module
base64-encoded as ``content_b64``, which the module marks no_log: the bytes never
pass through a text string, a template or a file outside the key's directory.
"""

import base64
import os

from ansible.errors import AnsibleError
from ansible.parsing.vault import is_encrypted
from ansible.plugins.action import ActionBase

from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.secretfile import (
    forbid_core_dumps,
    read_secret,
)
from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import error_message

READ_LIMIT = 1 << 20


class _SrcError(Exception):
    def __init__(self, message, reference):
        super(_SrcError, self).__init__(message)
        self.message = message
        self.reference = reference


class ActionModule(ActionBase):
    """Turn ``src`` into ``content_b64``, then run the module on the node."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # the module needs no temp files of ours
        module_args = dict(self._task.args)
        src = module_args.pop("src", None)
        decrypt = module_args.pop("decrypt", True)
        local_follow = module_args.pop("local_follow", True)
        if src is not None:
            if module_args.get("content_b64") is not None:
                result.update(failed=True, msg="give src or content_b64, not both")
                return result
            forbid_core_dumps()  # this worker is about to hold key bytes
            try:
                data = self._read_src(src, self._boolean(decrypt), self._boolean(local_follow))
            except _SrcError as exc:
                result.update(failed=True, msg=exc.message, reference=exc.reference)
                return result
            module_args["content_b64"] = base64.b64encode(data).decode("ascii")
        result.update(
            self._execute_module(
                module_name="corokey.corosync.authkey",
                module_args=module_args,
                task_vars=task_vars,
            )
        )
        return result

    @staticmethod
    def _boolean(value):
        from ansible.module_utils.parsing.convert_bool import boolean

        return boolean(value, strict=True)

    def _read_src(self, src, decrypt, local_follow):
        """The key bytes of ``src`` on the controller, decrypted when asked; raises _SrcError."""
        try:
            found = self._find_needle("files", src)
        except AnsibleError as exc:
            raise _SrcError("cannot find the key file src=%s: %s" % (src, exc), "src-missing")
        if local_follow:
            # As copy does: the link's target is read (still no link beyond it, and
            # read_secret decides on the descriptor it opened).
            found = os.path.realpath(found)
        try:
            content = read_secret(found, limit=READ_LIMIT + 1)
        except CorokeyError as exc:
            raise _SrcError(error_message(exc), exc.reference)
        data = content.data
        if len(data) > READ_LIMIT:
            raise _SrcError("%s is over 1 MiB: no corosync key; name the key file" % found, "src-too-big")
        if decrypt and is_encrypted(data):
            data = self._decrypt(found, data)
        return data

    def _decrypt(self, found, data):
        vault = self._loader._vault  # the play's vault secrets; there is no public accessor
        if not vault.secrets:
            raise _SrcError(
                "%s is encrypted with ansible-vault and no vault secret was given; run with "
                "--vault-password-file (or --ask-vault-pass), or decrypt=false to send it as it is"
                % found,
                "vault-no-secret",
            )
        try:
            return vault.decrypt(data)
        except AnsibleError as exc:
            # The message names the vault ids tried, never plaintext.
            raise _SrcError(
                "cannot decrypt %s with the vault secrets given: %s" % (found, getattr(exc, "message", exc)),
                "vault-decrypt",
            )
