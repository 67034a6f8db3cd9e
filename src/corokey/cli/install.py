"""``corokey install SRC [DEST]``: ``install -D -o 0 -g 0 -m 0400``, done safely."""

import os
import sys

from corokey.checks import content_errors
from corokey.cli.common import add_json_option, add_profile_option, given_or, print_json
from corokey.cli.fingerprint import read_key_argument
from corokey.errors import CorokeyError
from corokey.exitcodes import EXIT_OK
from corokey.key import fingerprint
from corokey.profiles import Profile, get_profile
from corokey.secretfile import lstat_facts, read_secret, write_secret

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

    from corokey.cli.args import ArgumentParser, Namespace


def configure(parser: "ArgumentParser") -> None:
    parser.description = (
        "Install a key with the profile's owner and mode: checked first, parents created, "
        "replaced atomically, the previous key kept as DEST.old, read back and verified. "
        "Nothing is touched when DEST already holds the same key, owner and mode."
    )
    parser.add_argument("src", metavar="SRC", help="key to install; - for stdin")
    parser.add_argument("dest", nargs="?", metavar="DEST", help="default: the profile's path")
    add_profile_option(parser)
    parser.add_argument(
        "-f", "--force", action="store_true", help="install even if SRC fails the check"
    )
    add_json_option(parser)


def execute(args: "Namespace") -> int:
    profile = get_profile(args.profile)
    dest = given_or(args.dest, profile.path, "destination path")
    source = read_key_argument(args.src)
    data = source.data
    if source.facts.size > len(data):  # longer than we read: take it all, it is the key
        data = read_secret(args.src, limit=source.facts.size).data
    errors = content_errors(data, profile, args.src)
    if errors and not args.force:
        raise CorokeyError(
            f"refusing to install {args.src}: {errors[0].message}",
            hint=f"{errors[0].fix}; or use --force to install it anyway",
            reference=f"source-{errors[0].reference}",
        )
    owner = profile.owner_ids() if os.geteuid() == 0 else None
    report: Dict[str, Any] = {
        "src": args.src,
        "dest": dest,
        "profile": profile.name,
        "fingerprint": fingerprint(data),
        "mode": f"{profile.mode:04o}",
        "owner": profile.owner_label() if owner else None,
        "old_path": None,
    }
    if _already_installed(dest, data, profile, owner):
        report["result"] = "unchanged"
    else:
        result = write_secret(
            dest, data, mode=profile.mode, owner=owner, keep_old=True, make_parents=True
        )
        _verify_readback(dest, data)
        report["result"] = "installed"
        report["old_path"] = result.old_path
    if args.json:
        print_json(report)
    else:
        _print(report)
    return EXIT_OK


def _already_installed(
    dest: str, data: bytes, profile: "Profile", owner: "Optional[Tuple[int, int]]"
) -> bool:
    facts = lstat_facts(dest)
    if facts.kind != "regular" or facts.size != len(data) or facts.nlink != 1:
        return False
    if facts.mode != profile.mode or (owner is not None and (facts.uid, facts.gid) != owner):
        return False
    current = read_secret(dest, limit=len(data) + 1)
    import hmac

    return hmac.compare_digest(current.data, data)


def _verify_readback(dest: str, data: bytes) -> None:
    written = read_secret(dest, limit=len(data) + 1)
    if fingerprint(written.data) != fingerprint(data) or written.facts.size != len(data):
        raise CorokeyError(
            f"{dest} does not read back as the key just written",
            hint="check the disk and the file system for errors, then install again",
            reference="readback-mismatch",
        )


def _print(report: "Dict[str, Any]") -> None:
    out = sys.stdout
    owner = f", {report['owner']}" if report["owner"] else ""
    if report["result"] == "unchanged":
        out.write(f"unchanged: {report['dest']} already holds {report['fingerprint']}\n")
        return
    out.write(
        f"installed {report['src']} -> {report['dest']} ({report['fingerprint']}, "
        f"mode {report['mode']}{owner})\n"
    )
    if report["old_path"]:
        out.write(f"The previous key is kept as {report['old_path']}\n")
