"""``corokey compare FILE FILE...``: are these the same key for corosync?"""

import sys
from typing import Any, Dict, List

from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import add_json_option, print_json, reject_stdin_twice
from corokey.cli.fingerprint import read_key_argument
from corokey.errors import UsageError
from corokey.exitcodes import EXIT_FINDINGS, EXIT_OK
from corokey.key import fingerprint


def configure(parser: ArgumentParser) -> None:
    parser.description = (
        "Tell whether key files hold the same key as corosync 3 (first 4096 bytes) and "
        "corosync 2 (first 128 bytes) read them. Exit 0 when all agree for corosync 3 "
        "(for 2.x with --corosync2 or where corosync 2.x is installed), 1 otherwise, 2 when "
        "a file cannot be read."
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="key files; - for stdin (once)")
    parser.add_argument(
        "--corosync2", action="store_true", help="decide by what corosync 2.x uses (128 bytes)"
    )
    add_json_option(parser)


def execute(args: Namespace) -> int:
    if len(args.files) < 2:
        raise UsageError("compare needs at least two key files", hint="corokey compare A B")
    reject_stdin_twice(args.files)
    keys: List[Dict[str, Any]] = []
    for path in args.files:
        content = read_key_argument(path)
        keys.append(
            {
                "path": path,
                "size": content.facts.size,
                "fingerprint": fingerprint(content.data),
                "fingerprint_corosync2": fingerprint(content.data, corosync2=True),
            }
        )
    same3 = len({k["fingerprint"] for k in keys}) == 1
    same2 = len({k["fingerprint_corosync2"] for k in keys}) == 1
    if args.json:
        print_json({"keys": keys, "same_corosync3": same3, "same_corosync2": same2})
    else:
        out = sys.stdout
        for key in keys:
            out.write(f"{key['fingerprint']} {key['path']} ({key['size']} bytes)\n")
        out.write(f"corosync 3: {_verdict(same3, len(keys))}\n")
        out.write(f"corosync 2: {_verdict(same2, len(keys))}\n")
        if same3 and len({k["size"] for k in keys}) > 1:
            out.write("note: the files differ only past what corosync reads\n")
    from corokey.key import local_is_corosync2

    same = same2 if args.corosync2 or local_is_corosync2() else same3
    return EXIT_OK if same else EXIT_FINDINGS


def _verdict(same: bool, count: int) -> str:
    if same:
        return "same key" if count == 2 else f"same key in all {count} files"
    return "DIFFERENT keys: nodes with these keys cannot form one cluster"
