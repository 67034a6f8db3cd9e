"""The package imports and its entry points answer."""

import subprocess
import sys

import corokey


def test_version_is_exposed() -> None:
    assert corokey.__version__.count(".") == 2


def test_python_dash_m_runs_corokey() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "corokey", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"corokey {corokey.__version__}"
