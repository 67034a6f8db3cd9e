"""``corokey doctor --profile pacemaker``: the report of corokey.pacemaker_doctor."""

import sys

from corokey.cli.args import Namespace
from corokey.cli.common import print_json, printable


def execute(args: "Namespace") -> int:
    from corokey.pacemaker_doctor import diagnose

    diagnosis = diagnose()
    if args.json:
        print_json(diagnosis.to_json())
        return diagnosis.exit_code
    role = {"cluster": "cluster node", "remote": "remote node"}.get(diagnosis.role or "", "unknown")
    lines = [
        f"role:    {role} (Pacemaker {diagnosis.version or 'not found'})",
        f"key:     {diagnosis.key_path or 'none'}"
        + (f" (PCMK_authkey_location={diagnosis.env_location})" if diagnosis.env_location else ""),
        f"log:     {diagnosis.log_source or 'none found'}",
    ]
    for finding in diagnosis.findings:
        lines.append(f"{finding.severity}[{finding.reference}]: {finding.message}")
        if finding.fix:
            lines.append(f"  fix: {finding.fix}")
    lines.append(
        {
            "healthy": "healthy: Pacemaker Remote's key on this node is sound",
            "warning": "warnings: see above",
            "error": "problems: see above",
        }[diagnosis.status]
    )
    sys.stdout.write("".join(printable(line) + "\n" for line in lines))
    return diagnosis.exit_code
