"""Profiles: where each cluster secret lives, how big it is, who owns it.

A profile names one kind of cluster secret.  Owner and group are names,
resolved on the host at the moment they are needed (``pacemaker``'s
``hacluster:haclient`` exist only where pacemaker is installed).
"""

from corokey.key import (
    DEFAULT_KEY_PATH,
    KEY_LEN_DEFAULT,
    KEY_LEN_MAX,
    KEY_LEN_MIN,
    check_key_size,
)
from corokey.record import Record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

# corokey.errors is imported where an error is raised: the commands that only
# read profiles (check, fingerprint) stay within their start-up budget.


class Profile(Record):
    """One kind of cluster secret: where it lives, its size, owner and mode."""

    __slots__ = (
        "corosync",
        "group",
        "max_size",
        "min_size",
        "mode",
        "name",
        "owner",
        "path",
        "size",
    )
    name: str
    path: str
    size: int
    owner: str
    group: str
    mode: int
    min_size: int
    max_size: int
    #: Whether corosync reads this key (size rules of corosync apply: 128, 4096, FIPS 256).
    corosync: bool

    def __init__(self, **fields: object) -> None:
        self._set(**fields)

    def owner_ids(self) -> "Tuple[int, int]":
        """uid and gid of the profile's owner and group on this host."""
        if self.owner == "root" and self.group == "root":
            return 0, 0  # always so on Linux; spares the NSS look-up (start-up time)
        import grp
        import pwd

        from corokey.errors import ProfileOwnerError

        try:
            uid = pwd.getpwnam(self.owner).pw_uid
        except KeyError:
            raise ProfileOwnerError(self.name, "user", self.owner) from None
        try:
            gid = grp.getgrnam(self.group).gr_gid
        except KeyError:
            raise ProfileOwnerError(self.name, "group", self.group) from None
        return uid, gid

    def owner_label(self) -> str:
        return f"{self.owner}:{self.group}"

    def local_owner(self) -> "Tuple[int, int, str]":
        """uid, gid and ``user:group`` this host gives the profile's key: the profile's
        owner and group, except for the pacemaker profile where this host lacks them
        (corokey.pacemaker_access.owner_for: root:root where user hacluster does not
        exist, as on a remote node built without Pacemaker's packages)."""
        if self.name == "pacemaker":
            from corokey.pacemaker_access import local_owner

            return local_owner()
        uid, gid = self.owner_ids()
        return uid, gid, self.owner_label()


PROFILES: "Dict[str, Profile]" = {
    "corosync": Profile(
        name="corosync",
        path=DEFAULT_KEY_PATH,
        size=KEY_LEN_DEFAULT,
        owner="root",
        group="root",
        mode=0o400,
        min_size=KEY_LEN_MIN,
        max_size=KEY_LEN_MAX,
        corosync=True,
    ),
    # Pacemaker Remote's key (pacemaker's crmd/pacemaker-remoted read it as hacluster).
    "pacemaker": Profile(
        name="pacemaker",
        path="/etc/pacemaker/authkey",
        size=256,
        owner="hacluster",
        group="haclient",
        mode=0o400,
        min_size=KEY_LEN_MIN,
        max_size=KEY_LEN_MAX,
        corosync=False,
    ),
    # fence_virtd / fence_xvm multicast key.
    "fence-xvm": Profile(
        name="fence-xvm",
        path="/etc/cluster/fence_xvm.key",
        size=512,
        owner="root",
        group="root",
        mode=0o600,
        min_size=KEY_LEN_MIN,
        max_size=KEY_LEN_MAX,
        corosync=False,
    ),
}
DEFAULT_PROFILE = "corosync"


def get_profile(name: "Optional[str]") -> "Profile":
    """The profile called ``name`` (the corosync one when ``None``)."""
    profile = PROFILES.get(name or DEFAULT_PROFILE)
    if profile is None:
        from corokey.errors import UsageError

        raise UsageError(
            f"unknown profile '{name}'",
            hint="choose one of: " + ", ".join(PROFILES),
        )
    return profile


def key_size(profile: "Profile", requested: "Optional[int]" = None) -> int:
    """The size of a new key of ``profile``: ``requested``, or the profile's own size.

    Raises KeySizeError when the profile does not allow it (one rule for
    generate, rotate and the library: :func:`corokey.key.check_key_size`).
    """
    return check_key_size(
        profile.size if requested is None else requested,
        minimum=profile.min_size,
        maximum=profile.max_size,
        default=profile.size,
        what=profile.name,
    )
