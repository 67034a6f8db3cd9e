"""Who must be able to read Pacemaker Remote's key, and who must not: one rule.

Pacemaker 2.1.5 reads /etc/pacemaker/authkey with ``fopen(path, "r")`` (lib/lrmd/
lrmd_client.c, read_gnutls_key) in two daemons:

- on a cluster node, pacemaker-controld opens the connections; it runs as user
  ``hacluster`` (primary group ``haclient``), so the key must be readable by that user
  or that group.  When it cannot read the key, 2.1.5 silently falls back to
  /etc/corosync/authkey (root:root 0400, so usually unreadable too: the connection
  fails with "Required key not available"; 3.0.0 and later do not fall back);
- on a remote or guest node, pacemaker-remoted accepts them as root: any mode root can
  read works there, and user hacluster need not exist.  pacemaker-remoted runs without
  it (its unit has no ``User=``; a failed look-up of hacluster only logs "Could not find
  user and group IDs" in lib/common/ipc_server.c), while pacemakerd refuses to start
  without it ("Cluster user hacluster does not exist", daemons/pacemakerd/pacemakerd.c):
  a node without user hacluster is a remote node, and only root reads the key there.

What the tools write, and this rule accepts: Debian's pacemaker-common postinst writes
root:haclient 0640 (``umask 037``, ``chgrp haclient``); pcs writes hacluster:haclient
0400 (corokey's profile too).  Readable or writable by others, readable by a group other
than haclient, owned by anyone but root or hacluster: refused, the key is exposed.

What corokey writes on a node (:func:`owner_for`), from what its user database holds
(:class:`Accounts`): hacluster:haclient 0400 where both exist (Debian's and the RPM
packages make them, pacemaker-remote's too); root:root 0400 where user hacluster does
not exist (a remote node built from source or a hand-made container image: only
pacemaker-remoted, as root, reads the key there); hacluster with its login group, 0400,
where the user exists without group haclient.
"""

import shlex

from corokey.findings import ERROR, NOTE, WARNING, Finding
from corokey.pacemaker import DAEMON_GROUP, DAEMON_USER
from corokey.record import Record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import List, Mapping, Optional, Tuple

#: owner, group, mode that need no remark: pcs's (and corokey's) and Debian's.
ACCEPTED = (("hacluster", "haclient", 0o400), ("root", "haclient", 0o640))
FIX_OWNER = f"{DAEMON_USER}:{DAEMON_GROUP}"
FIX_MODE = 0o400
#: Where user hacluster does not exist: only root reads the key.
ROOT_OWNER = "root:root"

CLUSTER = "cluster"
REMOTE = "remote"
#: The profile this rule is for (corokey.profiles).
PROFILE = "pacemaker"


def accounts_to_ask(profile_name: str) -> str:
    """The USER:GROUP a node script is to say exist or not (node scripts' ``acct``) for a
    profile: Pacemaker's for the pacemaker profile, nothing for the others (root's)."""
    return FIX_OWNER if profile_name == PROFILE else ""


class Accounts(Record):
    """What a node's user database holds of Pacemaker's user and group."""

    __slots__ = ("group", "login_group", "user")
    #: user hacluster exists
    user: bool
    #: group haclient exists
    group: bool
    #: hacluster's login group (its name, or its number where it has none; "" without
    #: the user)
    login_group: str

    def __init__(self, user: bool, group: bool, login_group: str = "") -> None:
        self._set(user=user, group=group, login_group=login_group if user else "")

    @classmethod
    def from_fields(cls, fields: "Mapping[str, str]") -> "Accounts":
        """From a node script's ``accounts user=yes|no group=yes|no login-group=NAME``."""
        user, group = fields.get("user") == "yes", fields.get("group") == "yes"
        return cls(user, group, fields.get("login-group", ""))


def owner_for(accounts: "Optional[Accounts]") -> str:
    """``user:group`` the pacemaker profile gives the key on a node whose user database
    holds ``accounts`` (None: not known, the profile's own); the mode is always 0400."""
    if accounts is None or (accounts.user and accounts.group):
        return FIX_OWNER
    if accounts.user:
        return f"{DAEMON_USER}:{accounts.login_group}"  # "hacluster:": chown's login group
    return ROOT_OWNER


def why_owner(owner: str) -> str:
    """Why the key was given ``owner`` (one of :func:`owner_for`'s other answers)."""
    if owner == ROOT_OWNER:
        return (
            f"no user {DAEMON_USER} there, so the key is {ROOT_OWNER} {FIX_MODE:04o}: only "
            "pacemaker-remoted, as root, reads it on such a node"
        )
    return f"no group {DAEMON_GROUP} there, so the key is {owner} {FIX_MODE:04o}"


def access_findings(
    label: str,
    path: str,
    mode: int,
    owner: str,
    group: str,
    role: "Optional[str]",
    accounts: "Optional[Accounts]" = None,
) -> "List[Finding]":
    """What is wrong with a Pacemaker key at ``path`` (``label`` names it in messages:
    NODE:PATH) of ``mode`` owned by ``owner``:``group``.

    ``role``: "cluster" (pacemaker-controld, as hacluster, must read it), "remote"
    (pacemaker-remoted, as root, reads it), or None (not known: unreadable by hacluster
    is a warning).  ``accounts``: the node's (None: not known); where user hacluster does
    not exist only root reads the key, whatever the role, and what :func:`owner_for`
    writes there needs no remark.
    """
    written = owner_for(accounts)
    fix = f"chown {written} {shlex.quote(path)} && chmod {FIX_MODE:04o} {shlex.quote(path)}"
    mode &= 0o7777
    if accounts is not None and not accounts.user:
        role = REMOTE
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
    if (
        (owner, group, mode) in ACCEPTED
        or (f"{owner}:{group}" == written and mode == FIX_MODE)
        or (role == REMOTE and mode in (0o400, 0o600))
    ):
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
    accounts = local_accounts()
    return access_findings(path, path, mode, owner, group, role or local_role(), accounts)


def local_accounts() -> "Accounts":
    """This host's :class:`Accounts`."""
    import grp
    import pwd

    try:
        user = pwd.getpwnam(DAEMON_USER)
    except KeyError:
        user = None
    try:
        grp.getgrnam(DAEMON_GROUP)
        group = True
    except KeyError:
        group = False
    login_group = ""
    if user is not None:
        try:
            login_group = grp.getgrgid(user.pw_gid).gr_name
        except KeyError:
            login_group = str(user.pw_gid)
    return Accounts(user is not None, group, login_group)


def local_owner() -> "Tuple[int, int, str]":
    """uid, gid and ``user:group`` the pacemaker profile gives its key on this host
    (:func:`owner_for` of :func:`local_accounts`)."""
    import grp
    import pwd

    label = owner_for(local_accounts())
    user, _, group = label.partition(":")
    uid = pwd.getpwnam(user).pw_uid
    gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return uid, gid, label
