# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""The controller's key store: one key per cluster and profile, kept as corokey keeps keys.

``DIR/CLUSTER/PROFILE.key`` (0600 in 0700 directories), ``.next`` beside it during a
rotation, ``.old`` after one.  Ansible runs a lookup or an action once per host, in
parallel forks: every change happens under an exclusive lock of the cluster's
directory (``.lock``), and a key is created by linking a finished file to its name,
so every node of a cluster gets the key the first fork made.  In check mode nothing
is written.
"""

import fcntl
import hashlib
import os
import re
from contextlib import contextmanager

from ansible.errors import AnsibleError

from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.key import fingerprint, generate_key
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import key_size
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.secretfile import (
    lstat_facts,
    read_secret,
    write_secret,
)
from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import error_message

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FILE_MODE = 0o600
DIR_MODE = 0o700


class KeyStoreError(AnsibleError):
    """A key store problem, said in one line with what to do."""


def default_dir():
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "corokey", "clusters")


def private_dir(path, create=True):
    """Insist that ``path`` is a 0700 directory of ours (made, with parents, if asked).

    Answers False when it is missing and ``create`` is false (check mode)."""
    if not os.path.lexists(path):
        if not create:
            return False
        parent = os.path.dirname(path)
        if parent and not os.path.isdir(parent):
            os.makedirs(parent, mode=DIR_MODE)
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            pass  # made by a concurrent run: checked below like any other
    facts = lstat_facts(path)
    if facts.kind != "directory":
        raise KeyStoreError(
            "cluster_key: %s is a %s, not a directory; move it away or set corokey_key_dir" % (path, facts.kind)
        )
    if facts.uid != os.geteuid() or facts.mode & 0o077:
        raise KeyStoreError(
            "cluster_key: %s is mode %04o (owner uid %d): cluster keys need a directory of "
            "mode 0700 owned by you; run: chmod 0700 %s" % (path, facts.mode, facts.uid, path)
        )
    return True


def check_cluster_name(cluster):
    if not _CLUSTER_NAME.match(cluster or ""):
        raise KeyStoreError(
            "cluster_key: %r is no cluster name; use letters, digits, '.', '_' and '-'" % (cluster,)
        )


class ClusterKeys(object):
    """The keys of one cluster and profile in the store at ``directory``."""

    def __init__(self, directory, cluster, profile, check_mode=False):
        check_cluster_name(cluster)
        self.directory = directory
        self.cluster = cluster
        self.profile = profile
        self.check_mode = check_mode
        self.cluster_dir = os.path.join(directory, cluster)
        self.current_path = os.path.join(self.cluster_dir, profile.name + ".key")
        self.next_path = self.current_path + ".next"
        exists = private_dir(directory, create=not check_mode)
        self.present = exists and private_dir(self.cluster_dir, create=not check_mode)

    @contextmanager
    def locked(self):
        """The cluster's lock, held while keys are read and changed (no lock file in check mode)."""
        if self.check_mode or not self.present:
            yield
            return
        fd = os.open(
            os.path.join(self.cluster_dir, ".lock"),
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            FILE_MODE,
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def read(self, path, size=None):
        """The key kept at ``path``, or None; refuses one others may read, of a bad size,
        or of another size than ``size`` asks."""
        if not self.present or lstat_facts(path).kind == "missing":
            return None
        content = read_secret(path)
        if content.facts.mode & 0o077:
            raise KeyStoreError(
                "cluster_key: %s is mode %04o, readable by others; the key may be exposed: "
                "run chmod 0600 %s and consider rotating the cluster's key" % (path, content.facts.mode, path)
            )
        key_size(self.profile, len(content.data))
        if size is not None and len(content.data) != size:
            raise KeyStoreError(
                "cluster_key: %s holds a key of %d bytes, not the size=%d asked; leave size out to "
                "use it, or rotate the cluster to a key of the new size"
                % (path, len(content.data), size)
            )
        return content.data

    def current(self):
        return self.read(self.current_path)

    def get(self, size=None, want_next=False):
        """The current (or next) key, made now if there is none."""
        path = self.next_path if want_next else self.current_path
        with self.locked():
            data = self.read(path, size)
            if data is None:
                data = self.create(path, generate_key(key_size(self.profile, size)), size)
        return data

    def promote(self):
        """Make the next key the current one (the previous kept as ``.old``); return it."""
        with self.locked():
            current = self.read(self.current_path)
            pending = self.read(self.next_path)
            if pending is None:
                if current is None:
                    raise KeyStoreError("cluster_key: %s has no key to promote" % self.cluster)
                return current  # promoted before: nothing pending
            if not self.check_mode:
                write_secret(self.current_path, pending, mode=FILE_MODE, keep_old=current is not None)
                os.unlink(self.next_path)
                _sync_dir(self.cluster_dir)
            return pending

    def adopt(self, data):
        """Keep ``data`` (every node's key) as the cluster's key when there is none yet.

        Answers (changed, key in the store); a different key already kept is refused."""
        with self.locked():
            current = self.read(self.current_path)
            if current is None:
                return True, self.create(self.current_path, data, None, placeholder=False)
        if current != data:
            raise KeyStoreError(
                "cluster_key: %s already holds key %s for %s, and the nodes hold %s; nothing adopted"
                % (self.current_path, fingerprint(current), self.cluster, fingerprint(data))
            )
        return False, current

    def create(self, path, data, size, placeholder=True):
        """Put ``data`` at ``path`` unless another run got there first; return what is there.

        In check mode nothing is written: a key made now is stood in for by one
        derived from the cluster's name, the same in every fork (so a check run plans
        as a real one does), used for nothing but that plan.
        """
        if self.check_mode:
            if not placeholder:
                return data
            return _placeholder(self.cluster, self.profile.name, path, len(data))
        directory, name = os.path.split(path)
        mine = os.path.join(directory, ".%s.%d-%s" % (name, os.getpid(), os.urandom(4).hex()))
        write_secret(mine, data, mode=FILE_MODE)
        try:
            os.link(mine, path)
        except FileExistsError:
            data = self.read(path, size)
        finally:
            os.unlink(mine)
        _sync_dir(directory)
        return data


def _placeholder(cluster, profile, path, size):
    seed = ("corokey check mode: no key was made for %s %s %s" % (cluster, profile, path)).encode()
    blocks = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range((size + 31) // 32))
    return blocks[:size]


def _sync_dir(directory):
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def corokey_failure(exc):
    """corokey's error as the store's one-line error."""
    if isinstance(exc, CorokeyError):
        return KeyStoreError("cluster_key: " + error_message(exc))
    return exc
