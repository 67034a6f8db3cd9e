"""``corokey fingerprint FILE...``: ssh-keygen-like fingerprints of key files."""

import sys

from corokey.cli.common import add_json_option, print_json, reject_stdin_twice
from corokey.exitcodes import EXIT_OK
from corokey.key import (
    COROSYNC2_KEY_LEN,
    KEY_LEN_MAX,
    fingerprint,
    fingerprint_hex,
    local_is_corosync2,
)
from corokey.secretfile import SecretContent, read_secret, read_secret_fd

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, Dict, List

    from corokey.cli.args import ArgumentParser, Namespace


def configure(parser: "ArgumentParser") -> None:
    parser.description = (
        "Print the SHA256 fingerprint of the bytes corosync uses from each key file "
        "(the first 4096; the first 128 with --corosync2 or where corosync 2.x is "
        "installed). Key bytes are never printed."
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="key file, or - for stdin")
    parser.add_argument(
        "--hex", action="store_true", help="hex digest (equals sha256sum for keys <= 4096 bytes)"
    )
    parser.add_argument(
        "--corosync2", action="store_true", help="fingerprint the first 128 bytes (corosync 2.x)"
    )
    parser.add_argument("-v", "--visual", action="store_true", help="also draw a randomart picture")
    add_json_option(parser)


def read_key_argument(path: str) -> "SecretContent":
    """A key named on the command line: a file, or ``-`` for standard input."""
    if path == "-":
        return read_secret_fd(sys.stdin.fileno(), "-")
    return read_secret(path)


def describe(content: "SecretContent", corosync2: bool, use_hex: bool) -> "Dict[str, Any]":
    used = min(content.facts.size, COROSYNC2_KEY_LEN if corosync2 else KEY_LEN_MAX)
    return {
        "path": content.facts.path,
        "size": content.facts.size,
        "bits": content.facts.size * 8,
        "used_bytes": used,
        "fingerprint": fingerprint(content.data, corosync2),
        "sha256_hex": fingerprint_hex(content.data, corosync2),
        "digest": "sha256-hex" if use_hex else "SHA256",
        "corosync": "2.x" if corosync2 else "3.x",
    }


def execute(args: "Namespace") -> int:
    results: List[Dict[str, Any]] = []
    reject_stdin_twice(args.files)
    corosync2 = args.corosync2 or local_is_corosync2()
    for path in args.files:
        content = read_key_argument(path)
        results.append(describe(content, corosync2, args.hex))
        if not args.json:
            sys.stdout.write(_line(results[-1], args.hex) + "\n")
            if args.visual:
                from corokey.randomart import randomart

                title = f"COROSYNC {results[-1]['bits']}"
                footer = "SHA256" if not corosync2 else "SHA256/128"
                digest = bytes.fromhex(results[-1]["sha256_hex"])
                sys.stdout.write(randomart(digest, title, footer) + "\n")
    if args.json:
        print_json({"keys": results})
    return EXIT_OK


def _line(result: "Dict[str, Any]", use_hex: bool) -> str:
    digest = result["sha256_hex"] if use_hex else result["fingerprint"]
    size = f"{result['size']} bytes"
    if result["used_bytes"] < result["size"]:
        size += f", corosync {result['corosync']} uses the first {result['used_bytes']}"
    return f"{result['bits']} {digest} {result['path']} ({size})"
