"""Install a key: checked, with the profile's owner and mode, atomically, read back.

``install -D -o 0 -g 0 -m 0400 SRC DEST`` done safely; ``corokey install`` is
its command line.  Nothing is written when DEST already holds the same key
with the right owner and mode.
"""

import hmac
import os
from typing import Optional, Tuple

from corokey.checks import content_errors
from corokey.errors import CorokeyError
from corokey.key import fingerprint
from corokey.profiles import Profile
from corokey.record import Record
from corokey.secretfile import lstat_facts, read_secret, write_secret


class InstallResult(Record):
    """What :func:`install_key` did: ``result`` is ``installed`` or ``unchanged``."""

    __slots__ = ("dest", "fingerprint", "old_path", "owner", "result")
    dest: str
    result: str
    fingerprint: str
    #: ``user:group`` set on DEST, or None when not running as root (the caller keeps its own).
    owner: Optional[str]
    #: Where the previous key was kept, if one was replaced.
    old_path: Optional[str]

    def __init__(self, **fields: object) -> None:
        self._set(**fields)


def install_key(
    data: bytes, dest: str, profile: Profile, label: str, force: bool = False
) -> InstallResult:
    """Install ``data`` (named ``label`` in messages) at ``dest`` for ``profile``.

    Refuses a key that ``corokey check`` finds errors in unless ``force``;
    keeps a replaced key as ``dest.old``; reads the result back.
    """
    errors = content_errors(data, profile, label)
    if errors and not force:
        raise CorokeyError(
            f"refusing to install {label}: {errors[0].message}",
            hint=f"{errors[0].fix}; or use --force to install it anyway",
            reference=f"source-{errors[0].reference}",
        )
    # Only root can give a file away; others keep their own key files.
    owner: Optional[Tuple[int, int]] = None
    mode, owner_label = profile.mode, profile.owner_label()
    if os.geteuid() == 0:
        uid, gid, owner_label = profile.local_owner()
        owner = uid, gid
    if profile.corosync and lstat_facts(dest).kind == "regular":
        shared = _pacemaker_shared(dest, data)
        if shared is not None:  # Pacemaker 2.x reads it too: keep it readable for Pacemaker
            mode, owner_label = shared[2], shared[3]
            owner = shared[:2] if owner is not None else None
    common = {
        "dest": dest,
        "fingerprint": fingerprint(data),
        "owner": owner_label if owner else None,
    }
    if already_installed(dest, data, mode, owner):
        return InstallResult(result="unchanged", old_path=None, **common)
    written = write_secret(dest, data, mode=mode, owner=owner, keep_old=True, make_parents=True)
    verify_readback(dest, data)
    return InstallResult(result="installed", old_path=written.old_path, **common)


def _pacemaker_shared(dest: str, data: bytes) -> "Optional[Tuple[int, int, int, str]]":
    """Where this host's Pacemaker reads the corosync key at ``dest`` as Pacemaker Remote's
    key (corokey.pacemaker): the uid, gid, mode and owner label that keep it readable for
    Pacemaker. Raises CorokeyError when ``data`` is another key: it would cut every
    Pacemaker Remote node off."""
    from corokey import pacemaker

    shared = pacemaker.local_shared_key(dest)
    if shared is None:
        return None
    reason, uid, gid = shared
    current = read_secret(dest, limit=len(data) + 1)
    if not hmac.compare_digest(current.data, data):
        raise CorokeyError(
            pacemaker.changes_remote_key(dest, reason),
            hint="install the key Pacemaker Remote's nodes hold, or give Pacemaker its own key "
            "first (corokey check explains)",
            reference=pacemaker.REFERENCE,
        )
    return uid, gid, pacemaker.SHARED_MODE, pacemaker.SHARED_OWNER


def already_installed(
    dest: str, data: bytes, mode: int, owner: "Optional[Tuple[int, int]]"
) -> bool:
    """Whether ``dest`` is a single-link regular file holding ``data`` with ``mode``
    and (when given) ``owner``: then there is nothing to do."""
    facts = lstat_facts(dest)
    if facts.kind != "regular" or facts.size != len(data) or facts.nlink != 1:
        return False
    if facts.mode != mode or (owner is not None and (facts.uid, facts.gid) != owner):
        return False
    current = read_secret(dest, limit=len(data) + 1)
    return hmac.compare_digest(current.data, data)


def verify_readback(dest: str, data: bytes) -> None:
    """Raise unless ``dest`` reads back as exactly ``data``."""
    written = read_secret(dest, limit=len(data) + 1)
    if written.facts.size != len(data) or not hmac.compare_digest(written.data, data):
        raise CorokeyError(
            f"{dest} does not read back as the key just written",
            hint="check the disk and the file system for errors, then install again",
            reference="readback-mismatch",
        )
