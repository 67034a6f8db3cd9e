# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""The authkey action plugin: src read on the controller as bytes, vault files
decrypted in memory, links followed as copy follows them (or refused)."""

import os
import subprocess
import sys

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
        local_follow: "{{ follow | default(true) }}"
        decrypt: "{{ decrypt | default(true) }}"
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


def test_a_linked_src_is_followed_as_copy_follows_it_or_refused(playbook_runner, tmp_path):
    src, link, dest = tmp_path / "key.bin", tmp_path / "link", tmp_path / "node" / "authkey"
    src.write_bytes(KEY)
    dest.parent.mkdir()
    os.symlink(str(src), str(link))
    refused = playbook_runner(tmp_path, PLAY, "-e", "src=%s dest=%s follow=false" % (link, dest))
    assert refused.returncode != 0 and "symbolic link" in refused.stdout
    assert not dest.exists()
    followed = playbook_runner(tmp_path, PLAY, "-e", "src=%s dest=%s" % (link, dest))
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert dest.read_bytes() == KEY


def _vault_file(tmp_path, data):
    """``data`` encrypted by ansible-vault, and the password file."""
    password = tmp_path / "vault-pass"
    password.write_text("corokey-test-password\n")
    plain = tmp_path / "plain.bin"
    plain.write_bytes(data)
    vaulted = tmp_path / "authkey.vault"
    vault_bin = os.path.join(os.path.dirname(sys.executable), "ansible-vault")
    subprocess.run(
        [vault_bin, "encrypt", "--vault-password-file", str(password), "--output", str(vaulted), str(plain)],
        check=True,
        capture_output=True,
    )
    plain.unlink()
    return vaulted, password


def test_a_vault_src_is_decrypted_in_memory(playbook_runner, tmp_path):
    """Issue 17, 1: the ciphertext was installed as the key.  The plaintext must not
    pass through a decrypted temp file either (get_real_file writes one in the local
    temp directory, where this looks)."""
    vaulted, password = _vault_file(tmp_path, KEY)
    dest = tmp_path / "node" / "authkey"
    dest.parent.mkdir()
    local_tmp = tmp_path / "ansible-local"
    seen = []
    watcher = subprocess.Popen(  # catch a temp file that lives only while the task runs
        [sys.executable, "-c", WATCH, str(local_tmp), KEY.hex()], stdout=subprocess.PIPE, text=True
    )
    try:
        result = playbook_runner(
            tmp_path, PLAY, "-e", "src=%s dest=%s" % (vaulted, dest), "--vault-password-file", str(password)
        )
    finally:
        watcher.terminate()
        seen = watcher.communicate()[0].split()
    assert result.returncode == 0, result.stdout + result.stderr
    assert dest.read_bytes() == KEY
    assert seen == [], "the decrypted key was in a temp file: %s" % seen
    assert "looks like" not in result.stdout  # raw bytes: no text warning


def test_a_vault_src_without_the_secret_fails_and_decrypt_false_warns(playbook_runner, tmp_path):
    vaulted, _password = _vault_file(tmp_path, KEY)
    dest = tmp_path / "node" / "authkey"
    dest.parent.mkdir()
    result = playbook_runner(tmp_path, PLAY, "-e", "src=%s dest=%s" % (vaulted, dest))
    assert result.returncode != 0
    assert "encrypted with ansible-vault and no vault secret was given" in result.stdout
    assert not dest.exists()
    sent = playbook_runner(tmp_path, PLAY, "-e", "src=%s dest=%s decrypt=false" % (vaulted, dest))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert dest.read_bytes() == vaulted.read_bytes()
    assert "looks like printable text, not raw random bytes" in sent.stdout + sent.stderr


def test_a_base64_key_gets_the_warning_of_corokey_check(playbook_runner, tmp_path):
    import base64

    src, dest = tmp_path / "key.b64", tmp_path / "node" / "authkey"
    src.write_bytes(base64.b64encode(os.urandom(192)))
    dest.parent.mkdir()
    result = playbook_runner(tmp_path, PLAY, "-e", "src=%s dest=%s" % (src, dest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "looks like base64 text, not raw random bytes" in result.stdout + result.stderr


# Polls a directory tree for files holding the key (hex given) until killed; prints them.
WATCH = """
import os, sys, time
root, key = sys.argv[1], bytes.fromhex(sys.argv[2])
found = set()
while True:
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            try:
                with open(path, 'rb') as handle:
                    if key in handle.read():
                        found.add(path)
                        print(path, flush=True)
            except OSError:
                pass
    time.sleep(0.005)
"""
