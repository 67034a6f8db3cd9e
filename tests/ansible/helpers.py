"""Running ansible-test and ansible-playbook on the corokey.corosync collection.

ansible-test wants the collection at a path ending in ansible_collections/NS/NAME
and keeps what it builds (one venv per sanity test) under ~/.ansible/test: here
that home is a per-machine cache outside the checkout, keyed by the ansible-core
and Python versions, used under a lock so two runs do not build at once.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator

ROOT = Path(__file__).resolve().parent.parent.parent
COLLECTION = ROOT / "ansible_collections" / "corokey" / "corosync"
CACHE_ROOT = Path("/var/cache/corokey-tests")
VENV_BIN = Path(sys.executable).parent

# ansible-test bootstraps pip in each venv it makes with a get-pip script it downloads
# from a host these machines cannot reach (ansible_test/_util/target/setup/requirements.py,
# bootstrap(): cached as ~/.ansible/test/cache/get_pip_<version>.py).  This stand-in
# takes its place: pip from the standard library's ensurepip, then the pip version
# ansible-test asks for from the configured package index.
GET_PIP_STAND_IN = '''"""Stand-in for get-pip.py, written by corokey's tests/ansible/helpers.py."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True)
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)
'''


def ansible_core_version() -> str:
    from ansible.release import __version__  # type: ignore[import-untyped]

    return str(__version__)


def ansible_test_pip_version() -> str:
    from types import SimpleNamespace

    from ansible_test._internal.python_requirements import (  # type: ignore[import-untyped]
        get_venv_packages,
    )

    python = SimpleNamespace(version=f"{sys.version_info[0]}.{sys.version_info[1]}")
    return str(get_venv_packages(python)["pip"])


def ansible_test_home() -> Path:
    """The HOME ansible-test runs with: its venvs and caches, built once per machine."""
    inputs = f"{ansible_core_version()} {sys.version} {GET_PIP_STAND_IN}"
    digest = hashlib.sha256(inputs.encode()).hexdigest()[:16]
    return CACHE_ROOT / f"ansible-test-{ansible_core_version()}-{digest}"


@contextmanager
def locked_ansible_test_home() -> Iterator[Path]:
    home = ansible_test_home()
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(str(home) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cache = home / ".ansible" / "test" / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        stand_in = cache / f"get_pip_{ansible_test_pip_version().replace('.', '_')}.py"
        if not stand_in.exists():
            temp = stand_in.with_suffix(".tmp")
            temp.write_text(GET_PIP_STAND_IN)
            temp.rename(stand_in)
        yield home


def copy_collection(destination: Path) -> Path:
    """A copy of the collection at DESTINATION/ansible_collections/corokey/corosync."""
    target = destination / "ansible_collections" / "corokey" / "corosync"
    shutil.copytree(
        COLLECTION,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "output", ".pytest_cache"),
    )
    return target


def ansible_env(home: "Path | None" = None) -> Dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_NOCOLOR"] = "1"
    if home is not None:
        env["HOME"] = str(home)
    return env


def ansible_test(collection: Path, *args: str, home: Path) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [str(VENV_BIN / "ansible-test"), *args],
        cwd=collection,
        env=ansible_env(home),
        capture_output=True,
        text=True,
        check=False,
    )
