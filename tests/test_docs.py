"""The man pages and bash completion say what the commands really accept."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List

import pytest

from corokey.cli.args import ArgumentParser
from corokey.cli.main import COMMANDS

REPO = Path(__file__).resolve().parent.parent


def _complete(*words: str) -> List[str]:
    script = (
        f"source {REPO / 'completions' / 'corokey.bash'}; "
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
        "_corokey; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_completion_of_commands_and_profiles() -> None:
    assert _complete("corokey", "ch") == ["check"]
    assert set(_complete("corokey", "")) >= set(COMMANDS)
    assert _complete("corokey", "generate", "--profile", "f") == ["fence-xvm"]


@pytest.mark.parametrize("command", ["generate", "fingerprint", "check", "compare", "install"])
def test_completion_offers_every_option_of_a_command(command: str) -> None:
    module = __import__(f"corokey.cli.{command}", fromlist=["configure"])
    parser = ArgumentParser(prog=f"corokey {command}")
    module.configure(parser)
    real = {n for a in parser._arguments for n in a.names if n.startswith("--")}
    offered = set(_complete("corokey", command, "--"))
    assert real <= offered
    man = (REPO / "docs" / "man" / "corokey.8").read_text()
    assert f".BR {command} " in man or f".B {command}" in man


def test_keygen_man_page_lists_every_option() -> None:
    man = (REPO / "docs" / "man" / "corosync-keygen.8").read_text()
    for option in ("\\-k", "\\-s", "\\-r", "\\-m", "\\-l", "\\-h", "key\\-file", "random\\-file"):
        assert option in man
    for code in range(6):
        assert f"\n{code}\n" in man
