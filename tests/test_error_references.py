"""Every error reference the code can raise is listed in docs/errors.md, and no other.

The references are what users grep for and what scripts match on; a reference
missing from the table in docs/errors.md leaves them guessing. The scan reads the source:
class-level ``reference = "..."``, ``reference="..."`` arguments and
``{"reference": "..."}`` entries (an f-string or a
``"prefix-" + ...`` becomes a pattern), and the first argument of the CLI's
``fail(...)`` / ``format_failure(...)``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, List, Optional

import corokey
from corokey.cli.common import format_failure

REPO = Path(__file__).resolve().parent.parent
# The package under test: src/corokey here, the installed one under autopkgtest.
SOURCE = Path(corokey.__file__).parent
TABLE = REPO / "docs" / "errors.md"
TABLE_ROW = re.compile(r"^\| `([a-z0-9<>_-]+)` \|")
SECTION = "## Error references"
POSITIONAL = {"Failure": 1, "refuse": 1, "RotateError": 3, "NodeFailure": 2}


def _pattern(node: ast.expr) -> Optional[str]:
    """A regular expression for the references ``node`` can evaluate to."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(
            re.escape(str(part.value)) if isinstance(part, ast.Constant) else ".+"
            for part in node.values
        )
    if isinstance(node, ast.IfExp):
        both = (_pattern(node.body), _pattern(node.orelse))
        return f"(?:{both[0] or '.+'}|{both[1] or '.+'})"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pattern(node.left), _pattern(node.right)
        return (left or ".+") + (right or ".+")
    return None  # a variable: its values are literals found elsewhere


def raised_references() -> Dict[str, str]:
    """pattern -> first place it appears (``path:line``)."""
    found: Dict[str, str] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            values: List[ast.expr] = []
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if isinstance(statement, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "reference" for t in statement.targets
                    ):
                        values.append(statement.value)
                    if (
                        isinstance(statement, ast.AnnAssign)
                        and isinstance(statement.target, ast.Name)
                        and statement.target.id == "reference"
                        and statement.value is not None
                    ):
                        values.append(statement.value)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "reference" for t in node.targets
            ):  # an error's or a report's reference set after construction
                values.append(node.value)
            elif isinstance(node, ast.Dict):  # a table of named results
                values += [
                    v
                    for k, v in zip(node.keys, node.values)
                    if isinstance(k, ast.Constant) and k.value == "reference"
                ]
            elif isinstance(node, ast.Call):
                values += [k.value for k in node.keywords if k.arg == "reference"]
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in ("fail", "format_failure") and node.args:
                    values.append(node.args[0])
                # Constructors that take the reference by position: the node scripts' table
                # of failures, rotate's refusals and errors, a node's failure.
                at = POSITIONAL.get(str(name))
                if at is not None and len(node.args) > at:
                    values.append(node.args[at])
            for value in values:
                pattern = _pattern(value)
                if pattern is not None:
                    where = f"{path.relative_to(SOURCE.parent)}:{value.lineno}"
                    found.setdefault(pattern, where)
    return found


def table_references() -> List[str]:
    text = TABLE.read_text()
    assert SECTION in text, f"docs/errors.md has no '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n#", 1)[0]
    return [m.group(1) for line in section.splitlines() if (m := TABLE_ROW.match(line))]


def test_the_scan_finds_references_of_every_kind() -> None:
    found = {pattern.replace("\\", "") for pattern in raised_references()}
    assert "key-size" in found  # a class attribute
    assert "random-eof" in found  # a keyword argument
    assert ".+-failed" in found and "source-.+" in found  # an f-string, a concatenation
    assert "(?:not-regular|symlink)" in found  # a conditional expression
    assert "usage" in found and "internal" in found  # fail(...), format_failure(...)


def test_every_raised_reference_is_in_the_table() -> None:
    listed = table_references()
    missing = [
        f"{pattern.replace(chr(92), '')} ({where})"
        for pattern, where in raised_references().items()
        if not any(re.fullmatch(pattern, row) for row in listed)
    ]
    assert not missing, (
        f"add these error references to the '{SECTION}' table of docs/errors.md, with their "
        "meaning: " + ", ".join(missing)
    )


def test_the_table_lists_no_reference_the_code_never_raises() -> None:
    patterns = list(raised_references())
    stale = [row for row in table_references() if not any(re.fullmatch(p, row) for p in patterns)]
    assert not stale, f"docs/errors.md lists references nothing raises any more: {', '.join(stale)}"


def test_errors_print_reference_message_and_hint_on_two_lines() -> None:
    text = format_failure("key-size", "Unsupported key size 5", "choose 128 to 4096")
    assert text == "corokey: error[key-size]: Unsupported key size 5\nhint: choose 128 to 4096\n"
    assert format_failure("usage", "no hint") == "corokey: error[usage]: no hint\n"


def test_error_lines_carry_no_raw_control_characters() -> None:
    text = format_failure("read-failed", "cannot read /tmp/\x1b[2Jx", "check /tmp/\x07")
    assert (
        text == "corokey: error[read-failed]: cannot read /tmp/\\x1b[2Jx\nhint: check /tmp/\\x07\n"
    )
