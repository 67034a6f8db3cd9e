# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""The authkey action plugin: src read on the controller as bytes, links refused."""

import os

import pytest

# ansible-playbook runs take seconds each.
pytestmark = pytest.mark.slow

KEY = bytes(range(256))[::-1]

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Key from a controller file
      corokey.corosync.authkey:
        src: "{{ src }}"
        path: "{{ dest }}"
      register: put
    - name: Show
      ansible.builtin.debug:
        var: put
"""


def test_src_is_sent_byte_exact(playbook_runner, tmp_path):
    src, dest = tmp_path / "key.bin", tmp_path / "node" / "authkey"
    src.write_bytes(KEY)  # not UTF-8: a string on the way would mangle it
    dest.parent.mkdir()
    result = playbook_runner(tmp_path, PLAY, "-e", "src=%s dest=%s" % (src, dest), "--diff")
    assert result.returncode == 0, result.stdout + result.stderr
    assert dest.read_bytes() == KEY
    assert KEY.hex() not in result.stdout
    again = playbook_runner(tmp_path, PLAY, "-e", "src=%s dest=%s" % (src, dest))
    assert "changed=0" in again.stdout, again.stdout


def test_a_linked_src_is_refused(playbook_runner, tmp_path):
    src, link, dest = tmp_path / "key.bin", tmp_path / "link", tmp_path / "authkey"
    src.write_bytes(KEY)
    os.symlink(str(src), str(link))
    result = playbook_runner(tmp_path, PLAY, "-e", "src=%s dest=%s" % (link, dest))
    assert result.returncode != 0 and "symbolic link" in result.stdout
    assert not dest.exists()
