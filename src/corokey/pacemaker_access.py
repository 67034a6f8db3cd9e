"""Who must be able to read Pacemaker Remote's key, and who must not: one rule.

Pacemaker 2.1.5 reads /etc/pacemaker/authkey with ``fopen(path, "r")`` (lib/lrmd/
lrmd_client.c, read_gnutls_key) in two daemons:

- on a cluster node, pacemaker-controld opens the connections; it runs as user
  ``hacluster`` (primary group ``haclient``), so the key must be readable by that user
  or that group.  When it cannot read the key, 2.1.5 silently falls back to
  /etc/corosync/authkey (root:root 0400, so usually unreadable too: the connection
  fails with "Required key not available"; 3.0.0 and later do not fall back);
- on a remote or guest node, pacemaker-remoted accepts them as root: any mode root can
  read works there, and user hacluster need not exist.

What the tools write, and this rule accepts: Debian's pacemaker-common postinst writes
root:haclient 0640 (``umask 037``, ``chgrp haclient``); pcs writes hacluster:haclient
0400 (corokey's profile too).  Readable or writable by others, readable by a group other
than haclient, owned by anyone but root or hacluster: refused, the key is exposed.
"""

import shlex

from corokey.findings import ERROR, NOTE, WARNING, Finding
from corokey.pacemaker import DAEMON_GROUP, DAEMON_USER

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import List, Optional

#: owner, group, mode that need no remark: pcs's (and corokey's) and Debian's.
ACCEPTED = (("hacluster", "haclient", 0o400), ("root", "haclient", 0o640))
FIX_OWNER = f"{DAEMON_USER}:{DAEMON_GROUP}"
FIX_MODE = 0o400

CLUSTER = "cluster"
REMOTE = "remote"


def access_findings(
    label: str, path: str, mode: int, owner: str, group: str, role: "Optional[str]"
) -> "List[Finding]":
    """What is wrong with a Pacemaker key at ``path`` (``label`` names it in messages:
    NODE:PATH) of ``mode`` owned by ``owner``:``group``.

    ``role``: "cluster" (pacemaker-controld, as hacluster, must read it), "remote"
    (pacemaker-remoted, as root, reads it), or None (not known: unreadable by hacluster
    is a warning).
    """
    fix = f"chown {FIX_OWNER} {shlex.quote(path)} && chmod {FIX_MODE:04o} {shlex.quote(path)}"
    mode &= 0o7777
    if mode & 0o004 or mode & 0o002:
        what = "readable" if mode & 0o004 else "writable"
        return [Finding(ERROR, f"mode-{what}", f"{label} is {mode:04o} ({what} by others)", fix)]
    if mode & 0o020:
        return [Finding(ERROR, "mode-writable", f"{label} is {mode:04o} (writable by group)", fix)]
    if owner not in ("root", DAEMON_USER):
        return [
            Finding(
                ERROR,
                "owner",
                f"{label} is owned by {owner}, who can read or replace the key; Pacemaker "
                f"needs root or {DAEMON_USER}",
                fix,
            )
        ]
    if mode & 0o040 and group != DAEMON_GROUP:
        return [
            Finding(
                ERROR,
                "mode-readable",
                f"{label} is {mode:04o} with group {group} (readable by that group)",
                fix,
            )
        ]
    readable = (owner == DAEMON_USER and mode & 0o400) or (group == DAEMON_GROUP and mode & 0o040)
    if not readable and role != REMOTE:
        message = (
            f"{label} ({owner}:{group} {mode:04o}) cannot be read by user {DAEMON_USER}, as "
            "whom pacemaker-controld reads it on a cluster node: Pacemaker 2.x then falls back "
            "to /etc/corosync/authkey, and remote connections fail with 'Required key not "
            "available'"
        )
        severity = ERROR if role == CLUSTER else WARNING
        return [Finding(severity, "pacemaker-unreadable", message, fix)]
    if (owner, group, mode) in ACCEPTED or (role == REMOTE and mode in (0o400, 0o600)):
        return []
    return [
        Finding(
            NOTE,
            "mode-accepted",
            f"{label} is {owner}:{group} {mode:04o}; Pacemaker can read it (the pacemaker "
            "profile writes hacluster:haclient 0400, Debian root:haclient 0640)",
            fix,
        )
    ]


def local_role(sbin: str = "/usr/sbin") -> "Optional[str]":
    """This host's part: a cluster node where pacemakerd is installed, a remote node where
    only pacemaker-remoted is, else not known."""
    import os

    if os.access(os.path.join(sbin, "pacemakerd"), os.X_OK):
        return CLUSTER
    if any(
        os.access(os.path.join(directory, "pacemaker-remoted"), os.X_OK)
        for directory in (sbin, "/usr/local/sbin")
    ):
        return REMOTE
    return None


#: The references :func:`access_findings` gives.
REFERENCES = frozenset(
    ("mode-readable", "mode-writable", "owner", "pacemaker-unreadable", "mode-accepted")
)


def local_access_findings(
    path: str, mode: int, uid: int, gid: int, role: "Optional[str]" = None
) -> "List[Finding]":
    """:func:`access_findings` of a file on this host (names from its user database);
    ``role`` None: this host's (:func:`local_role`)."""
    import grp
    import pwd

    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    try:
        pwd.getpwnam(DAEMON_USER)
    except KeyError:
        # No hacluster here: no pacemaker-controld either; only pacemaker-remoted (root)
        # can read the key on this host.
        note = Finding(
            NOTE,
            "owner-unknown",
            f"user {DAEMON_USER} does not exist on this host: only root (pacemaker-remoted "
            f"on a remote node) reads {path} here",
        )
        return [*access_findings(path, path, mode, owner, group, REMOTE), note]
    return access_findings(path, path, mode, owner, group, role or local_role())
