"""``corokey install SRC [DEST]``: ``install -D -o 0 -g 0 -m 0400``, done safely."""

import sys
from typing import Any, Dict

from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import add_json_option, add_profile_option, given_or, print_json
from corokey.cli.fingerprint import read_key_argument
from corokey.exitcodes import EXIT_OK
from corokey.install import install_key
from corokey.profiles import get_profile
from corokey.secretfile import read_secret


def configure(parser: ArgumentParser) -> None:
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


def execute(args: Namespace) -> int:
    profile = get_profile(args.profile)
    dest = given_or(args.dest, profile.path, "destination path")
    source = read_key_argument(args.src)
    data = source.data
    if source.facts.size > len(data):  # longer than we read: take it all, it is the key
        data = read_secret(args.src, limit=source.facts.size).data
    result = install_key(data, dest, profile, label=args.src, force=args.force)
    report: Dict[str, Any] = {
        "src": args.src,
        "dest": result.dest,
        "profile": profile.name,
        "fingerprint": result.fingerprint,
        "mode": f"{profile.mode:04o}",
        "owner": result.owner,
        "old_path": result.old_path,
        "result": result.result,
    }
    if args.json:
        print_json(report)
    else:
        _print(report)
    return EXIT_OK


def _print(report: Dict[str, Any]) -> None:
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
