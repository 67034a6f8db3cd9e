# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""corokey.corosync.authkey_reload where no corosync runs (this machine's own namespace).

The reload itself is tested on real clusters by tests/ansible/test_playbooks.py.
"""


def test_refuses_without_a_running_corosync(module_runner):
    result, _output = module_runner("authkey_reload", {"settle_seconds": 0})
    assert result["failed"] and "corosync does not answer" in result["msg"]
    assert result["changed"] is False
