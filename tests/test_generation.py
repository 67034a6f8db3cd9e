"""Finding this node's corosync generation (corokey.key), on real binaries."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from corokey.errors import UsageError
from corokey.key import COROSYNC_BINARY, detect_binary, local_generation, parse_override
from tests import corosync2
from tests.keygen_helpers import our_keygen


@pytest.mark.parametrize("version", corosync2.VERSIONS)
def test_a_2x_daemon_is_detected(version: str) -> None:
    assert detect_binary(str(corosync2.build_or_skip(version).corosync)) == 2


@pytest.mark.skipif(not os.path.exists(COROSYNC_BINARY), reason="corosync is not installed")
def test_debians_3x_daemon_is_detected() -> None:
    assert detect_binary(COROSYNC_BINARY) == 3


def test_missing_or_foreign_files_are_unknown(tmp_path: Path) -> None:
    assert detect_binary(str(tmp_path / "missing")) is None
    script = tmp_path / "corosync"
    script.write_text("#!/bin/sh\n# libtotem_pg.so\n")
    assert detect_binary(str(script)) is None
    assert detect_binary("/bin/true") is None  # an ELF that is no corosync
    assert local_generation(str(tmp_path / "missing")).major == 3


@pytest.mark.parametrize(
    ("value", "major", "version"),
    [("2", 2, None), ("3", 3, None), ("2.x", 2, None), ("2.4.6", 2, "2.4.6"), (" 2.3 ", 2, "2.3")],
)
def test_override_values(value: str, major: int, version: Optional[str]) -> None:
    generation = parse_override(value)
    assert (generation.major, generation.version) == (major, version)


@pytest.mark.parametrize("value", ["1", "4", "two", "2.", "2.4.x", "3.1-7", "x"])
def test_bad_override_values_are_refused(value: str) -> None:
    with pytest.raises(UsageError, match="COROKEY_COROSYNC"):
        parse_override(value)


def test_keygen_refuses_a_bad_override(tmp_path: Path) -> None:
    result = _keygen(["-k", str(tmp_path / "k")], {"COROKEY_COROSYNC": "4"})
    assert result.returncode == 1
    assert "COROKEY_COROSYNC='4' is not a corosync generation" in result.stderr
    assert not (tmp_path / "k").exists()


def _keygen(args: List[str], env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [our_keygen(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=30,
        check=False,
    )


needs_namespaces = pytest.mark.skipif(
    bool(corosync2.namespaces_unavailable()), reason=str(corosync2.namespaces_unavailable())
)


@needs_namespaces
@pytest.mark.parametrize("version", corosync2.VERSIONS)
def test_keygen_on_a_2x_node_writes_the_2x_key(version: str, tmp_path: Path) -> None:
    build = corosync2.build_or_skip(version)
    key = tmp_path / "authkey"
    result = corosync2.run_as_on_2x_node(build, [our_keygen(), "-l", "-k", str(key)])
    assert "Gathering 1024 bits for key from /dev/urandom." in result.stdout, result
    assert key.stat().st_size == 128
    # The override wins over the binary.
    key.unlink()
    corosync2.run_as_on_2x_node(build, [our_keygen(), "-k", str(key)], {"COROKEY_COROSYNC": "3"})
    assert key.stat().st_size == 256
