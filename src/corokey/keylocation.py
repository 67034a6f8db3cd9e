"""Where corosync reads its key on the nodes, from each node's own corosync.conf.

corosync takes the key from ``totem.keyfile``, else from an inline ``totem.key``,
else from ``/etc/corosync/authkey``, and uses none when crypto is off.  A push or
rotation that wrote any other file would report success while corosync keeps the
old key, so the path comes from the nodes and every contradiction is refused.
"""

import shlex
from typing import Dict, List, Mapping, Optional

from corokey.errors import CorokeyError
from corokey.nodekey import NodeView
from corokey.profiles import Profile
from corokey.remote import validate_path


class KeyLocationError(CorokeyError):
    """The nodes' corosync.conf do not name one key file corokey may manage."""

    reference = "key-location"


def locate(
    profile: "Profile",
    key_path: "Optional[str]",
    views: "Mapping[str, NodeView]",
    allow_crypto_off: bool = True,
) -> str:
    """The key path every node's corosync reads (the profile's or ``key_path`` for keys
    corosync does not read). Raises KeyLocationError."""
    if key_path is not None:
        validate_path(key_path)
    if not profile.corosync:
        return key_path or profile.path
    by_path: Dict[str, List[str]] = {}
    for node, view in views.items():
        path = _node_path(node, view, key_path, allow_crypto_off)
        if path is not None:
            by_path.setdefault(path, []).append(node)
    if len(by_path) > 1:
        where = "; ".join(f"{p} on {', '.join(n)}" for p, n in sorted(by_path.items()))
        raise KeyLocationError(
            f"the nodes' corosync reads its key from different files: {where}",
            hint="make totem.keyfile the same in every node's corosync.conf, then run again",
            reference="key-location-differs",
        )
    if not by_path:
        return key_path or profile.path
    path = next(iter(by_path))
    if key_path is not None and key_path != path:
        node = by_path[path][0]
        raise KeyLocationError(
            f"--key-path {shlex.quote(key_path)} contradicts {node}'s corosync.conf, "
            f"whose corosync reads {path}",
            hint="leave --key-path out (corokey follows corosync.conf), or fix totem.keyfile",
            reference="key-path-contradicts",
        )
    return validate_path(path)


def _node_path(
    node: str, view: "NodeView", key_path: "Optional[str]", allow_crypto_off: bool
) -> "Optional[str]":
    """The path ``node``'s corosync reads; None when its conf does not say (absent, or
    crypto off with ``--key-path`` given to place a key before turning crypto on)."""
    if view.conf_error is not None:
        raise KeyLocationError(
            f"{node}'s corosync.conf cannot be read as corosync would: {view.conf_error.message}",
            hint=f"fix it on {node} (corokey doctor there explains), then run again",
            reference="node-conf-parse",
        )
    conf = view.conf
    if conf is None:
        return None
    if not conf.crypto_enabled():
        cipher, hash_ = conf.crypto()
        if allow_crypto_off and key_path is not None:
            return None
        hint = (
            "turn crypto on first (corokey doctor on a node says how)"
            if not allow_crypto_off
            else "to place a key before turning crypto on, name it: --key-path "
            "/etc/corosync/authkey"
        )
        generation = "2.x" if conf.corosync2 else "3.x"
        raise KeyLocationError(
            f"crypto is off in {node}'s corosync.conf for its corosync {generation} "
            f"(crypto_cipher {cipher}, crypto_hash {hash_}): corosync uses no key there",
            hint=hint,
            reference="crypto-off",
        )
    source, path = conf.key_source()
    if source == "inline":
        raise KeyLocationError(
            f"{node}'s corosync.conf holds the key inline (totem.key); corokey manages key files",
            hint="move it to a file: corokey generate, set totem.keyfile, remove totem.key, "
            "restart corosync",
            reference="key-inline",
        )
    return path
