"""``corokey doctor``: explain this node's key set-up and why nodes cannot join."""

import sys

from corokey.cli.args import ArgumentParser, Namespace
from corokey.cli.common import add_json_option, print_json, printable
from corokey.doctor import diagnose


def configure(parser: ArgumentParser) -> None:
    parser.description = (
        "Explain whether this node's key set-up is sound and, if nodes cannot join, why and "
        "what to do. Reads corosync.conf, checks the key, scans corosync's log since its last "
        "start and asks the running daemon. Exit 0 healthy, 1 warnings, 2 problems."
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="corosync.conf to read (default: the one corosync is started with, "
        "/etc/corosync/corosync.conf unless /etc/default/corosync says otherwise)",
    )
    parser.add_argument("--fips", action="store_true", help="check the key as if FIPS were on")
    add_json_option(parser)


def execute(args: Namespace) -> int:
    diagnosis = diagnose(args.config, fips=True if args.fips else None)
    if args.json:
        print_json(diagnosis.to_json())
        return diagnosis.exit_code
    conf_path = diagnosis.conf_path or "unknown"
    lines = [f"config:  {conf_path} (crypto {diagnosis.crypto or 'unknown'})"]
    if diagnosis.key_path:
        lines.append(f"key:     {diagnosis.key_path}")
    live = diagnosis.live
    if live is not None and live.running:
        quorate = {True: "quorate", False: "NOT quorate", None: "quorum unknown"}[live.quorate]
        members = ", ".join(str(m) for m in sorted(live.members))
        lines.append(f"corosync: running {live.version or ''}, members {members}, {quorate}")
    lines.append(f"log:     {diagnosis.log_source or 'none found'}")
    for finding in diagnosis.findings:
        lines.append(f"{finding.severity}[{finding.reference}]: {finding.message}")
        if finding.fix:
            lines.append(f"  fix: {finding.fix}")
    verdict = {
        "healthy": "healthy: this node's key set-up is sound",
        "warning": "warnings: see above",
        "error": "problems: see above",
    }[diagnosis.status]
    lines.append(verdict)
    sys.stdout.write("".join(printable(line) + "\n" for line in lines))
    return diagnosis.exit_code
