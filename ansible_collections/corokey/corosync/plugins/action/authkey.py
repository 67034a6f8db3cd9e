# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""Action plugin of corokey.corosync.authkey: reads ``src`` on the controller.

The key file is read as bytes with corokey's safe reader (no link followed, a
regular file only, at most 1 MiB) and handed to the module base64-encoded as
``content_b64``, which the module marks no_log: the bytes never pass through a
text string, a template or a file on the node outside the key's directory.
"""

import base64

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.secretfile import read_secret
from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import error_message

READ_LIMIT = 1 << 20


class ActionModule(ActionBase):
    """Turn ``src`` into ``content_b64``, then run the module on the node."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # the module needs no temp files of ours
        module_args = dict(self._task.args)
        src = module_args.pop("src", None)
        if src is not None:
            if module_args.get("content_b64") is not None:
                result.update(failed=True, msg="give src or content_b64, not both")
                return result
            try:
                found = self._find_needle("files", src)
            except AnsibleError as exc:
                result.update(failed=True, msg="cannot find the key file src=%s: %s" % (src, exc))
                return result
            try:
                content = read_secret(found, limit=READ_LIMIT + 1)
            except CorokeyError as exc:
                result.update(failed=True, msg=error_message(exc), reference=exc.reference)
                return result
            if len(content.data) > READ_LIMIT:
                result.update(failed=True, msg="%s is over 1 MiB: no corosync key; name the key file" % found)
                return result
            module_args["content_b64"] = base64.b64encode(content.data).decode("ascii")
        result.update(
            self._execute_module(
                module_name="corokey.corosync.authkey",
                module_args=module_args,
                task_vars=task_vars,
            )
        )
        return result
