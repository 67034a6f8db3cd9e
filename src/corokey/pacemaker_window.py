"""The window of an online change of Pacemaker Remote's key, apart from how nodes are reached.

Pacemaker before 3.0.2 reads its key at each TLS handshake through a cache that lives
60 s per process (lib/lrmd/lrmd_client.c, key_cache_expired; docs/pacemaker.md).  After
the new key is committed on every node, a process that read the old key just before may
use it until its 60 s are over: that is the window, held in maintenance-mode so that no
connection is recovered (handshaken) inside it.  What the window needs, the CLI's rotate
(over ssh, corokey.pacemaker_rotate) and the Ansible collection's modules (on the node
itself) share from here: the constants, the refusals' wording and the watch of crm_mon's
node states.  Nothing here reaches a node: the caller gives a function that reads the states.
"""

import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

#: Pacemaker's key cache lives 60 s counted in whole seconds (lib/lrmd/lrmd_client.c,
#: key_cache_expired); one second more covers the rounding.
CACHE_WINDOW_SECONDS = 61
#: From this version on the key is read once per process: an online rotation cannot work.
READS_ONCE_FROM = (3, 0, 2)
RESTART_PROCEDURE = (
    "Pacemaker 3.0.2 and later read the key once per process: push the new key "
    "(corokey push --profile pacemaker), then restart pacemaker_remote on each remote node "
    "and pacemaker on each cluster node, one at a time"
)
#: crm_mon shows a remote node online while a connection attempt is pending, even one that
#: fails its handshake (Pacemaker 2.1.5 on the test hosts: "online" for about 2 s in each
#: ~6.6 s retry cycle); online counts only when it lasts this long.
STABLE_SECONDS = 15.0
#: crm_attribute's arguments for the cluster option (the value, or --query, follows).
MAINTENANCE_ARGV = ("crm_attribute", "--type", "crm_config", "--name", "maintenance-mode")

ONLINE = "online"


def version_tuple(text: "Optional[str]") -> "Optional[Tuple[int, ...]]":
    """``2.1.5`` -> (2, 1, 5); None when ``text`` is not such a version."""
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return None


def reads_once(version: "Optional[str]") -> bool:
    """Whether this Pacemaker reads its key once per process (3.0.2 and later)."""
    parsed = version_tuple(version)
    return parsed is not None and parsed >= READS_ONCE_FROM


def bundle_problem(bundles: "Iterable[str]") -> str:
    return (
        f"bundle(s) {', '.join(sorted(bundles))}: Pacemaker bind-mounts the host's key file "
        "into each container, so the committed key (a new file renamed into place) would not "
        "reach running containers; corokey does not rotate clusters with bundles"
    )


def watch(
    states: "Callable[[], Dict[str, str]]",
    watched: "Sequence[str]",
    until: float,
    until_online: bool,
    interval: float = 1.0,
    stable: float = STABLE_SECONDS,
) -> "Dict[str, float]":
    """Per node of ``watched`` (remote and guest nodes), the seconds ``states()`` (crm_mon's
    node name -> online/offline; {} when it could not say) showed it not online, polling
    until the monotonic time ``until`` (with ``until_online``: or until every one has been
    online for ``stable`` seconds in a row; then -1 for a node not so at ``until``)."""
    offline = {name: 0.0 for name in watched}
    online_since = {name: 0.0 for name in watched}  # 0.0: not online now
    last = time.monotonic()
    while True:
        seen = states()
        now = time.monotonic()
        for name in watched:
            if seen.get(name) == ONLINE:
                online_since[name] = online_since[name] or now
            else:
                online_since[name] = 0.0
                offline[name] += now - last
        last = now
        settled = [n for n in watched if (online_since[n] or now) <= now - stable]
        if until_online and len(settled) == len(watched):
            return offline
        if now >= until:
            if until_online:
                for name in set(watched) - set(settled):
                    offline[name] = -1.0
            return offline
        time.sleep(max(0.0, min(interval, until - now)))
