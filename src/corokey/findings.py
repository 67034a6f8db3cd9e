"""What a check says about a key: one finding, with its severity, reference and fix.

Its own module so that the modules checks consults (Pacemaker's rules) can make findings
without importing checks back.
"""

from corokey.record import Record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

ERROR, WARNING, NOTE = "error", "warning", "note"


class Finding(Record):
    """One problem (or remark) about a key: severity, reference, message, fix command."""

    __slots__ = ("fix", "message", "reference", "severity")
    severity: str
    reference: str
    message: str
    fix: "Optional[str]"

    def __init__(self, severity: str, reference: str, message: str, fix: "Optional[str]" = None):
        self._set(severity=severity, reference=reference, message=message, fix=fix)

    def to_json(self) -> "Dict[str, Any]":
        return {
            "severity": self.severity,
            "reference": self.reference,
            "message": self.message,
            "fix": self.fix,
        }
