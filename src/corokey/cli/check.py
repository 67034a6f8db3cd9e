"""``corokey check FILE...``: find what corosync would trip over, and how to fix it."""

import sys

from corokey.checks import CheckReport, check_content, check_key, host_fips_enabled
from corokey.cli.common import add_json_option, add_profile_option, print_json, reject_stdin_twice
from corokey.key import local_is_corosync2
from corokey.profiles import get_profile

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import List

    from corokey.cli.args import ArgumentParser, Namespace


def configure(parser: "ArgumentParser") -> None:
    parser.description = (
        "Check key files the way corosync will read them: by 2.x's rules (exactly the "
        "first 128 bytes) where corosync 2.x is installed or COROKEY_COROSYNC=2. Exit "
        "status: 0 clean (notes only), 1 warnings, 2 errors."
    )
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="key files (default: the key corosync.conf names, else the profile's path); "
        "- for stdin",
    )
    add_profile_option(parser)
    parser.add_argument(
        "--fips", action="store_true", help="check as if FIPS mode were on (default: ask the host)"
    )
    add_json_option(parser)


def execute(args: "Namespace") -> int:
    profile = get_profile(args.profile)
    fips = True if args.fips else host_fips_enabled()
    corosync2 = profile.corosync and local_is_corosync2()
    reports: List[CheckReport] = []
    reject_stdin_twice(args.files)
    defaults = [profile.path]
    if profile.corosync and not args.files:
        from corokey.corosync_conf import local_key_path

        defaults = [local_key_path(profile.path)]  # the key corosync.conf names
    for path in args.files or defaults:
        if path == "-":
            from corokey.cli.fingerprint import read_key_argument
            from corokey.key import fingerprint

            content = read_key_argument("-")
            findings = check_content(
                content.data, content.facts.size, profile, fips, "-", corosync2
            )
            reports.append(
                CheckReport(
                    "-",
                    profile.name,
                    content.facts.size,
                    fingerprint(content.data, corosync2),
                    tuple(findings),
                )
            )
        else:
            reports.append(check_key(path, profile, fips, corosync2))
    generation = "2.x" if corosync2 else "3.x"
    if args.json:
        keys = [report.to_json() for report in reports]
        print_json({"fips": fips, "corosync": generation, "keys": keys})
    else:
        if corosync2:
            sys.stdout.write("corosync 2.x rules: it uses exactly the first 128 bytes\n")
        for report in reports:
            _print_report(report)
    return max(report.exit_code for report in reports)


def _print_report(report: "CheckReport") -> None:
    out = sys.stdout
    size = f", {report.size} bytes" if report.size is not None else ""
    fingerprint = f", {report.fingerprint}" if report.fingerprint else ""
    out.write(f"{report.path}: {report.status}{size}{fingerprint}\n")
    for finding in report.findings:
        out.write(f"  {finding.severity}[{finding.reference}]: {finding.message}\n")
        if finding.fix:
            out.write(f"    fix: {finding.fix}\n")
