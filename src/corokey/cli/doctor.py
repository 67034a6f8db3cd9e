"""``corokey doctor``: explain this node's key set-up and why nodes cannot join."""

import sys

from corokey.cli.common import add_json_option, print_json
from corokey.corosync_conf import DEFAULT_CONF_PATH

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from corokey.cli.args import ArgumentParser, Namespace


def configure(parser: "ArgumentParser") -> None:
    parser.description = (
        "Explain whether this node's key set-up is sound and, if nodes cannot join, why and "
        "what to do. Reads corosync.conf, checks the key, scans corosync's log since its last "
        "start and asks the running daemon. Exit 0 healthy, 1 warnings, 2 problems."
    )
    parser.add_argument(
        "--config", default=DEFAULT_CONF_PATH, metavar="FILE", help="corosync.conf to read"
    )
    parser.add_argument("--fips", action="store_true", help="check the key as if FIPS were on")
    add_json_option(parser)


def execute(args: "Namespace") -> int:
    from corokey.doctor import diagnose

    diagnosis = diagnose(args.config, fips=True if args.fips else None)
    if args.json:
        print_json(diagnosis.to_json())
        return diagnosis.exit_code
    out = sys.stdout
    live = diagnosis.live
    out.write(f"config:  {diagnosis.conf_path} (crypto {diagnosis.crypto or 'unknown'})\n")
    if diagnosis.key_path:
        out.write(f"key:     {diagnosis.key_path}\n")
    if live is not None and live.running:
        quorate = {True: "quorate", False: "NOT quorate", None: "quorum unknown"}[live.quorate]
        members = ", ".join(str(m) for m in sorted(live.members))
        out.write(f"corosync: running {live.version or ''}, members {members}, {quorate}\n")
    out.write(f"log:     {diagnosis.log_source or 'none found'}\n")
    for finding in diagnosis.findings:
        out.write(f"{finding.severity}[{finding.reference}]: {finding.message}\n")
        if finding.fix:
            out.write(f"  fix: {finding.fix}\n")
    verdict = {
        "healthy": "healthy: this node's key set-up is sound",
        "warning": "warnings: see above",
        "error": "problems: see above",
    }[diagnosis.status]
    out.write(verdict + "\n")
    return diagnosis.exit_code
