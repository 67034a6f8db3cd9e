# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""The cluster_key lookup, through ansible-playbook on this machine."""

import base64
import os
import stat

import pytest

# ansible-playbook runs take seconds each.
pytestmark = pytest.mark.slow

LOOKUP_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Keys
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: |
          first={{ lookup('corokey.corosync.cluster_key', 'alpha', dir=keys) }}
          again={{ lookup('corokey.corosync.cluster_key', 'alpha', dir=keys) }}
          beta={{ lookup('corokey.corosync.cluster_key', 'beta', dir=keys, size=128) }}
          next={{ lookup('corokey.corosync.cluster_key', 'alpha', dir=keys, next=true) }}
          next_again={{ lookup('corokey.corosync.cluster_key', 'alpha', dir=keys, next=true) }}
"""

PROMOTE_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Promote
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: |
          promoted={{ lookup('corokey.corosync.cluster_key', 'alpha', dir=keys, promote=true) }}
          current={{ lookup('corokey.corosync.cluster_key', 'alpha', dir=keys) }}
          promoted_again={{ lookup('corokey.corosync.cluster_key', 'alpha', dir=keys, promote=true) }}
"""

ONE_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: One key
      ansible.builtin.debug:
        msg: "{{ lookup('corokey.corosync.cluster_key', name, dir=keys) | length }}"
"""


def values(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def kept(directory):
    """The files of a cluster's directory, but its lock file."""
    return sorted(name for name in os.listdir(str(directory)) if name != ".lock")


def mode_of(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def test_one_key_per_cluster_made_once_kept_private(playbook_runner, tmp_path):
    keys, out = tmp_path / "keys", tmp_path / "out"
    result = playbook_runner(tmp_path, LOOKUP_PLAY, "-e", "keys=%s out=%s" % (keys, out))
    assert result.returncode == 0, result.stdout + result.stderr
    got = values(out)
    assert got["first"] == got["again"] and got["next"] == got["next_again"]
    assert len({got["first"], got["beta"], got["next"]}) == 3
    alpha = base64.b64decode(got["first"])
    assert len(alpha) == 256 and len(base64.b64decode(got["beta"])) == 128
    assert (keys / "alpha" / "corosync.key").read_bytes() == alpha
    assert mode_of(keys) == 0o700 and mode_of(keys / "alpha") == 0o700
    assert mode_of(keys / "alpha" / "corosync.key") == 0o600
    assert mode_of(keys / "alpha" / "corosync.key.next") == 0o600
    assert kept(keys / "alpha") == ["corosync.key", "corosync.key.next"]

    result = playbook_runner(tmp_path, PROMOTE_PLAY, "-e", "keys=%s out=%s" % (keys, out))
    assert result.returncode == 0, result.stdout + result.stderr
    promoted = values(out)
    assert promoted["promoted"] == promoted["current"] == promoted["promoted_again"] == got["next"]
    assert (keys / "alpha" / "corosync.key.old").read_bytes() == alpha
    assert kept(keys / "alpha") == ["corosync.key", "corosync.key.old"]


def test_refuses_bad_names_and_exposed_keys(playbook_runner, tmp_path):
    keys = tmp_path / "keys"
    result = playbook_runner(tmp_path, ONE_PLAY, "-e", "keys=%s name=../etc" % keys)
    assert result.returncode != 0 and "is no cluster name" in result.stdout
    assert not (tmp_path / "etc").exists()
    result = playbook_runner(tmp_path, ONE_PLAY, "-e", "keys=%s name=alpha" % keys)
    assert result.returncode == 0, result.stdout
    os.chmod(str(keys / "alpha" / "corosync.key"), 0o640)
    result = playbook_runner(tmp_path, ONE_PLAY, "-e", "keys=%s name=alpha" % keys)
    assert result.returncode != 0 and "readable by others" in result.stdout
    os.chmod(str(keys / "alpha" / "corosync.key"), 0o600)
    os.chmod(str(keys), 0o755)
    result = playbook_runner(tmp_path, ONE_PLAY, "-e", "keys=%s name=alpha" % keys)
    assert result.returncode != 0 and "chmod 0700" in result.stdout


PARALLEL_PLAY = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Each host asks for the cluster's key at once
      ansible.builtin.copy:
        dest: "{{ out }}/{{ inventory_hostname }}"
        mode: "0600"
        content: "{{ lookup('corokey.corosync.cluster_key', 'alpha', dir=keys) }}"
"""


def test_parallel_first_use_gives_every_host_the_same_key(playbook_runner, tmp_path):
    keys, out = tmp_path / "keys", tmp_path / "out"
    out.mkdir()
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("".join("h%d ansible_connection=local\n" % i for i in range(12)))
    result = playbook_runner(
        tmp_path, PARALLEL_PLAY, "-i", str(inventory), "-f", "12", "-e", "keys=%s out=%s" % (keys, out)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    seen = {path.read_text() for path in out.iterdir()}
    assert len(os.listdir(str(out))) == 13 and len(seen) == 1  # h0..h11 and localhost
    assert kept(keys / "alpha") == ["corosync.key"]


def _first_use(args):
    directory, cluster, barrier = args
    from ansible_collections.corokey.corosync.plugins.lookup.cluster_key import key_for
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import PROFILES

    barrier.wait()
    return key_for(cluster, directory, PROFILES["corosync"], None, False, False)


def test_racing_first_uses_agree_on_one_key(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_number in range(2):
        cluster = "race%d" % round_number
        manager = context.Manager()
        barrier = manager.Barrier(8)
        with context.Pool(8) as pool:
            keys = pool.map(_first_use, [(str(tmp_path / "keys"), cluster, barrier)] * 8)
        manager.shutdown()
        assert len(set(keys)) == 1, "round %d: %d different keys" % (round_number, len(set(keys)))
        assert kept(tmp_path / "keys" / cluster) == ["corosync.key"]


def _promote(args):
    directory, barrier = args
    from ansible_collections.corokey.corosync.plugins.lookup.cluster_key import key_for
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import PROFILES

    barrier.wait()
    return key_for("alpha", directory, PROFILES["corosync"], None, False, True)


def test_racing_promotes_keep_the_old_key(tmp_path):
    """Issue 17: promote ran without a lock; two forks promoting at once could keep
    the new key as .old (the old one lost) or fail on the .next the other removed."""
    import multiprocessing

    from ansible_collections.corokey.corosync.plugins.lookup.cluster_key import key_for
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import PROFILES

    context = multiprocessing.get_context("fork")
    for round_number in range(3):
        directory = str(tmp_path / ("keys%d" % round_number))
        old = key_for("alpha", directory, PROFILES["corosync"], None, False, False)
        new = key_for("alpha", directory, PROFILES["corosync"], None, True, False)
        manager = context.Manager()
        barrier = manager.Barrier(8)
        with context.Pool(8) as pool:
            got = pool.map(_promote, [(directory, barrier)] * 8)
        manager.shutdown()
        assert set(got) == {new}
        assert (tmp_path / ("keys%d" % round_number) / "alpha" / "corosync.key.old").read_bytes() == old


def test_a_size_that_differs_from_the_stored_key_is_an_error(playbook_runner, tmp_path):
    keys = tmp_path / "keys"
    sized = ONE_PLAY.replace("dir=keys)", "dir=keys, size=size | int)")
    made = playbook_runner(tmp_path, sized, "-e", "keys=%s name=alpha size=256" % keys)
    assert made.returncode == 0, made.stdout
    other = playbook_runner(tmp_path, sized, "-e", "keys=%s name=alpha size=512" % keys)
    assert other.returncode != 0, other.stdout
    assert "holds a key of 256 bytes, not the size=512 asked" in other.stdout


def test_check_mode_writes_nothing(playbook_runner, tmp_path):
    keys, out = tmp_path / "keys", tmp_path / "out"
    first = playbook_runner(tmp_path, ONE_PLAY, "-e", "keys=%s name=alpha" % keys, "--check")
    assert first.returncode == 0, first.stdout
    assert not keys.exists()
    playbook_runner(tmp_path, ONE_PLAY, "-e", "keys=%s name=alpha" % keys)
    stored = (keys / "alpha" / "corosync.key").read_bytes()
    checked = playbook_runner(tmp_path, LOOKUP_PLAY, "-e", "keys=%s out=%s" % (keys, out), "--check")
    assert checked.returncode == 0, checked.stdout
    assert kept(keys / "alpha") == ["corosync.key"] and not (keys / "beta").exists()
    assert (keys / "alpha" / "corosync.key").read_bytes() == stored
