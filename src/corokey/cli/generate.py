"""``corokey generate [PATH]``: a new key, never replacing one by accident."""

import os
import sys
from typing import Any, Dict, Optional, Tuple

from corokey.checks import host_fips_enabled
from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import add_json_option, add_profile_option, given_or, print_json, warn
from corokey.errors import CorokeyError, KeyExistsError
from corokey.exitcodes import EXIT_OK
from corokey.key import (
    COROSYNC2_KEY_LEN,
    FIPS_KEY_LEN_MAX,
    fingerprint,
    generate_key,
    local_is_corosync2,
)
from corokey.profiles import Profile, get_profile, key_size
from corokey.secretfile import lstat_facts, write_secret, write_secret_stream


def configure(parser: ArgumentParser) -> None:
    parser.description = (
        "Generate a new key with the profile's path, size, owner and mode. An existing key "
        "is replaced only with --force (on a terminal you are asked), and kept as PATH.old. "
        "Where corosync 2.x is installed (or COROKEY_COROSYNC=2) a corosync key has 2.x's "
        "128 bytes by default."
    )
    parser.add_argument("path", nargs="?", metavar="PATH", help="where to write; - for stdout")
    parser.add_argument(
        "-s", "--size", type=int, help="key size in bytes (default: the profile's size)"
    )
    add_profile_option(parser)
    parser.add_argument("-f", "--force", action="store_true", help="replace an existing key")
    add_json_option(parser)


def execute(args: Namespace) -> int:
    profile = get_profile(args.profile)
    corosync2 = profile.corosync and local_is_corosync2()
    size = key_size(profile, COROSYNC2_KEY_LEN if corosync2 and args.size is None else args.size)
    _check_fips(profile, size)
    path = given_or(args.path, profile.path, "key path")
    if path == "-":
        warning = write_secret_stream(generate_key(size))
        if warning:
            warn(warning)
        return EXIT_OK
    existing = lstat_facts(path).kind != "missing"
    if existing and not args.force and not _confirm_overwrite(path):
        raise KeyExistsError(
            f"{path} already exists; replacing it drops this node out of its cluster until "
            "every node has the new key",
            hint=f"use --force to replace it (kept as {path}.old), or name another path",
        )
    if existing and profile.corosync:
        _refuse_pacemaker_remote_key(path)
    key = generate_key(size)
    owner = _owner(profile)
    result = write_secret(
        path,
        key,
        mode=profile.mode,
        owner=owner[:2] if owner else None,
        keep_old=True,
        make_parents=True,
    )
    report: Dict[str, Any] = {
        "path": path,
        "profile": profile.name,
        "size": size,
        "fingerprint": fingerprint(key, corosync2),
        "corosync": ("2.x" if corosync2 else "3.x") if profile.corosync else None,
        "mode": f"{profile.mode:04o}",
        "owner": owner[2] if owner else None,
        "replaced": result.replaced,
        "old_path": result.old_path,
    }
    if args.json:
        print_json(report)
    else:
        _print(report)
    return EXIT_OK


def _refuse_pacemaker_remote_key(path: str) -> None:
    """A new key where Pacemaker 2.x reads corosync's key as Pacemaker Remote's would cut
    every remote node off (corokey.pacemaker), --force or not."""
    from corokey import pacemaker
    from corokey.errors import CorokeyError

    shared = pacemaker.local_shared_key(path)
    if shared is not None:
        raise CorokeyError(
            pacemaker.changes_remote_key(path, shared[0]),
            hint="corokey check explains",
            reference=pacemaker.REFERENCE,
        )


def _check_fips(profile: Profile, size: int) -> None:
    if profile.corosync and size > FIPS_KEY_LEN_MAX and host_fips_enabled():
        raise CorokeyError(
            f"this host runs in FIPS mode, where NSS refuses keys over {FIPS_KEY_LEN_MAX} bytes",
            hint=f"use --size {FIPS_KEY_LEN_MAX} or less",
            reference="fips-too-long",
        )


def _owner(profile: Profile) -> Optional[Tuple[int, int, str]]:
    # Only root can give a file away; others keep their own key files.
    return profile.local_owner() if os.geteuid() == 0 else None


def _confirm_overwrite(path: str) -> bool:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    sys.stderr.write(f"{path} already exists.\nOverwrite (y/n)? ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _print(report: Dict[str, Any]) -> None:
    out = sys.stdout
    out.write(
        f"Wrote a new {report['size']}-byte {report['profile']} key to {report['path']} "
        f"(mode {report['mode']}" + (f", {report['owner']}" if report["owner"] else "") + ")\n"
    )
    out.write(f"Fingerprint: {report['fingerprint']}\n")
    if report["corosync"] == "2.x" and report["size"] > COROSYNC2_KEY_LEN:
        out.write(f"corosync 2.x uses only its first {COROSYNC2_KEY_LEN} bytes\n")
    if report["old_path"]:
        out.write(f"The previous key is kept as {report['old_path']}\n")
    out.write(f"Next: copy it to every node, e.g. corokey push {report['path']}\n")
