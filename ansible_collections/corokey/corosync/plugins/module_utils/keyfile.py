# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""What the corokey.corosync modules add to corokey's library on a node.

The staged copy of a key (the ``authkey`` module's ``state=staged``) is a file
next to the key, named ``.NAME.corokey-staged``, written exactly as the key is
(corokey's write_secret: temp file created exclusively with the final mode,
fsync, rename, directory fsync) with the key's final owner and mode.  Its name
is fixed, so that a later task (``state=committed`` or ``aborted``) finds it.
"""

import os

from ansible_collections.corokey.corosync.plugins.module_utils._corokey.key import (
    fingerprint,
    fingerprint_hex,
)
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.secretfile import (
    lstat_facts,
    read_secret,
)

STAGED_SUFFIX = ".corokey-staged"
#: corosync reads this corosync.conf unless its sysconfig file names another.
DEFAULT_CONF_PATH = "/etc/corosync/corosync.conf"
#: corosync reloads crypto settings and the key with corosync-cfgtool -R from 3.1.0 on.
ONLINE_RELOAD_SINCE = (3, 1)
#: More than any key file corokey accepts (4096) and small enough to refuse junk.
READ_LIMIT = 1 << 20


def staged_path(path):
    """Where the staged copy of the key at ``path`` lives."""
    directory, name = os.path.split(path)
    return os.path.join(directory, "." + name + STAGED_SUFFIX)


def read_if_present(path):
    """corokey's SecretContent of a regular file, or None when nothing is there.

    Raises corokey's UnsafeTargetError for a link or another non-regular file.
    """
    facts = lstat_facts(path)
    if facts.kind == "missing":
        return None
    return read_secret(path, limit=READ_LIMIT)


def owner_label(uid, gid):
    """``user:group`` by name when the names exist, else by number."""
    import grp
    import pwd

    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return user + ":" + group


def description(data, size, uid, gid, mode):
    """What a diff or a result may show of a key: never its bytes."""
    return {
        "fingerprint": fingerprint(data),
        "size": size,
        "owner": owner_label(uid, gid),
        "mode": "%04o" % mode,
    }


def describe(content):
    """The description of a key read (corokey's SecretContent), or None."""
    if content is None:
        return None
    facts = content.facts
    return description(content.data, facts.size, facts.uid, facts.gid, facts.mode)


def diff_text(description):
    """A diff side: one ``field: value`` line each, or nothing for an absent file."""
    if description is None:
        return ""
    return "".join(
        "%s: %s\n" % (field, description[field]) for field in ("fingerprint", "size", "owner", "mode")
    )


def same_fingerprint(data, expected):
    """True when ``expected`` (``SHA256:...`` or 64 hex digits) names the key ``data``."""
    expected = expected.strip()
    if expected.lower().startswith("sha256:"):
        return "SHA256:" + expected[7:] == fingerprint(data)
    return expected.lower() == fingerprint_hex(data)


def remove_file(path):
    """Remove ``path`` (not following a link) and sync its directory; True if removed."""
    directory, name = os.path.split(path)
    dir_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return False
        os.fsync(dir_fd)
        return True
    finally:
        os.close(dir_fd)


def version_tuple(text):
    """``3.1.7`` -> (3, 1, 7); what is not a number ends it."""
    parts = []
    for piece in (text or "").split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def error_message(exc):
    """corokey's error as one line for ``msg``: the problem, then what to do."""
    return exc.message if not exc.hint else "%s; %s" % (exc.message, exc.hint)


def unsafe_directory(path):
    """The first directory from ``path``'s own up to ``/`` that others could change, or None.

    corokey's directory rule (its node scripts' ``dir_unsafe``): every directory on the
    way must be owned by root or by us and writable by nobody else (whoever can write
    there can swap the key or a parent for a link between two steps); a parent may be
    sticky and world-writable like /tmp, the key's own directory may not (there, others
    could create the names corokey writes).  Answers ``(directory, uid, mode)``.
    """
    me = os.geteuid()
    directory = os.path.dirname(os.path.abspath(path)) or "/"
    own = True
    while True:
        try:
            st = os.stat(directory)
        except FileNotFoundError:
            st = None  # write_secret makes missing parents, as root's umask leaves them
        if st is not None:
            writable = st.st_mode & 0o022 and (own or not st.st_mode & 0o1000)
            if st.st_uid not in (0, me) or writable:
                return directory, st.st_uid, st.st_mode & 0o7777
            own = False
        if directory == "/":
            return None
        directory = os.path.dirname(directory)


class KeyLocation(object):
    """Where this node's corosync reads its key, as corokey's CLI decides it."""

    def __init__(self, path, conf_path, problem=None, reference=None, hint=None):
        self.path = path
        self.conf_path = conf_path
        self.problem = problem
        self.reference = reference
        self.hint = hint


def corosync_key_location(conf, conf_path, explicit):
    """The key file corosync reads per ``conf`` (a parsed corosync.conf or None).

    The CLI's rules (corokey.keylocation): no corosync.conf, the default key; an
    inline ``totem.key`` is refused; with crypto off corosync reads no key at all,
    refused unless a path is named (placing a key before crypto is turned on).
    """
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.key import DEFAULT_KEY_PATH

    if conf is None:
        return KeyLocation(explicit or DEFAULT_KEY_PATH, conf_path)
    if not conf.crypto_enabled():
        if explicit:
            return KeyLocation(explicit, conf_path)
        cipher, hash_ = conf.crypto()
        return KeyLocation(
            None,
            conf_path,
            "crypto is off in %s (crypto_cipher %s, crypto_hash %s): corosync uses no key here"
            % (conf_path, cipher, hash_),
            "crypto-off",
            "turn crypto on first, or, to place a key before turning it on, name the file: "
            "path=/etc/corosync/authkey",
        )
    source, path = conf.key_source()
    if source == "inline":
        return KeyLocation(
            None,
            conf_path,
            "%s holds the key inline (totem.key); corokey manages key files" % conf_path,
            "key-inline",
            "move it to a file: set totem.keyfile, remove totem.key, restart corosync",
        )
    return KeyLocation(explicit or path, conf_path)


def profile_key_path(profile):
    """The file a profile's program reads, for the profiles corosync.conf does not name:
    Pacemaker's from PCMK_authkey_location (/etc/default/pacemaker or
    /etc/sysconfig/pacemaker, which pacemaker.service and pacemaker_remote.service both
    read: remote nodes too) as Pacemaker reads it, else the profile's path."""
    if profile.name == "pacemaker":
        from ansible_collections.corokey.corosync.plugins.module_utils._corokey.pacemaker import (
            ENVIRONMENT_FILES,
            environment_location,
        )

        location = environment_location(ENVIRONMENT_FILES)
        if location:
            return location
    return profile.path
