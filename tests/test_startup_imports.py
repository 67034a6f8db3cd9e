"""What the fast paths import: the start-up budgets of bench/ depend on it.

Timing belongs in bench/; these tests pin the cause instead: a module that
costs milliseconds (typing, re, argparse, hashlib, zlib, dataclasses) slipping
onto the path of corosync-keygen, corokey fingerprint or corokey check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Set

import pytest

from corokey.checks import COMPRESSIBLE_RATIO, _deflate_cannot_shrink

# Each of these costs from 0.3 ms (zlib) to 9 ms (typing + dataclasses + inspect).
HEAVY = ("typing", "re", "argparse", "hashlib", "zlib", "dataclasses", "inspect", "importlib")

# The modules of ours on each fast path, named once.  These keep the start-up
# discipline (no typing at run time, errors imported on failure only); every
# other module imports normally.  A module joining a path must be added here
# and kept lean, and the benches in bench/ rerun.
FAST_PATHS = {
    "corosync-keygen": {
        "corokey.cli.keygen",
        "corokey.cli.gnuopt",
        "corokey.exitcodes",
        "corokey.key",
        "corokey.record",
        "corokey.secretfile",
    },
    "fingerprint": {
        "corokey.cli.main",
        "corokey.cli.args",
        "corokey.cli.common",
        "corokey.cli.fingerprint",
        "corokey.exitcodes",
        "corokey.key",
        "corokey.record",
        "corokey.secretfile",
    },
    "check": {
        "corokey.cli.main",
        "corokey.cli.args",
        "corokey.cli.common",
        "corokey.cli.check",
        "corokey.checks",
        "corokey.exitcodes",
        "corokey.findings",
        "corokey.key",
        "corokey.profiles",
        "corokey.record",
        "corokey.secretfile",
    },
}


def ours(modules: List[str]) -> Set[str]:
    """Our modules, less the two package markers and corokey.errors (tested apart: loaded
    only when something fails, as when check runs unprivileged on a key it cannot own)."""
    return {
        name
        for name in modules
        if name.startswith("corokey.") and name not in ("corokey.cli", "corokey.errors")
    }


def loaded_modules(tmp_path: Path, argv: List[str], entry: str) -> List[str]:
    program = (
        "import sys\n"
        f"from {entry} import main\n"
        f"sys.argv = {argv!r}\n"
        "import io\n"
        "sys.stdout = io.StringIO()\n"
        "code = main()\n"
        "sys.stdout = sys.__stdout__\n"
        "print(code, ' '.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    code, modules = result.stdout.split(" ", 1)
    # check exits 1 on a key not owned by root when the suite runs unprivileged.
    assert code in ("0", "1"), result
    return modules.split()


def test_corosync_keygen_success_path(tmp_path: Path) -> None:
    argv = ["corosync-keygen", "-k", str(tmp_path / "authkey")]
    modules = loaded_modules(tmp_path, argv, "corokey.cli.keygen")
    assert [name for name in HEAVY if name in modules] == []
    assert ours(modules) == FAST_PATHS["corosync-keygen"]
    # Errors are loaded only when something fails.
    assert "corokey.errors" not in modules
    assert (tmp_path / "authkey").stat().st_size == 256


def _settled_random_key() -> bytes:
    """A random key whose "compressible" verdict the cheap proof settles without zlib, as it
    does for about 998 in 1000 random 256-byte keys (the rest repeat a 3-byte run)."""
    while True:
        key = os.urandom(256)
        if _deflate_cannot_shrink(key, COMPRESSIBLE_RATIO):
            return key


@pytest.mark.parametrize("command", ["fingerprint", "check"])
def test_corokey_fingerprint_and_check(tmp_path: Path, command: str) -> None:
    if command == "check" and os.geteuid() != 0:
        # The fast path is that of a sound key, and a key of another owner than root is not.
        pytest.skip("the key must be root's: check's owner finding takes another path")
    key = tmp_path / "authkey"
    key.write_bytes(_settled_random_key())
    key.chmod(0o400)
    modules = loaded_modules(tmp_path, ["corokey", command, str(key)], "corokey.cli.main")
    assert [name for name in HEAVY if name in modules] == []
    assert ours(modules) == FAST_PATHS[command]
    if os.geteuid() == 0:  # a clean key: nothing failed, so no exception class was needed
        assert "corokey.errors" not in modules
