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


#: The ansible-core releases the collection supports, oldest first: Debian 12's own (2.14)
#: through Debian 13's (2.19), the newest patch release of each installable here.  The
#: running venv has the newest; the others are built once per machine in CACHE_ROOT.
SUPPORTED_CORE = ("2.14.18", "2.15.13", "2.16.19", "2.17.14", "2.18.19", "2.19.14")


def ansible_core_version() -> str:
    from ansible.release import __version__  # type: ignore[import-untyped]

    return str(__version__)


def _digest(*parts: str) -> str:
    return hashlib.sha256(" ".join(parts).encode()).hexdigest()[:16]


@contextmanager
def _cache_lock(path: Path) -> Iterator[None]:
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def core_bin(version: str) -> Path:
    """The bin directory of a venv with ansible-core ``version`` (built once per machine)."""
    if version == ansible_core_version():
        return VENV_BIN
    venv = CACHE_ROOT / f"ansible-core-{version}-{_digest(version, sys.version)}"
    done = venv / "corokey-built"  # written last: a venv without it was cut short
    with _cache_lock(venv):
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, f"ansible-core=={version}"], check=True)
            done.write_text(version + "\n")
    return venv / "bin"


def ansible_test_pip_version(bin_dir: Path = VENV_BIN) -> str:
    """The pip version ansible-test (of the venv at ``bin_dir``) installs in its venvs."""
    probe = (
        "import sys, types\n"
        "from ansible_test._internal.python_requirements import get_venv_packages\n"
        "v = types.SimpleNamespace(version='%d.%d' % sys.version_info[:2])\n"
        "print(get_venv_packages(v)['pip'])\n"
    )
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", probe], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def ansible_test_home(version: "str | None" = None) -> Path:
    """The HOME ansible-test runs with: its venvs and caches, built once per machine."""
    version = version or ansible_core_version()
    return CACHE_ROOT / f"ansible-test-{version}-{_digest(version, sys.version, GET_PIP_STAND_IN)}"


@contextmanager
def locked_ansible_test_home(version: "str | None" = None) -> Iterator[Path]:
    version = version or ansible_core_version()
    home = ansible_test_home(version)
    with _cache_lock(home):
        cache = home / ".ansible" / "test" / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        pip_version = ansible_test_pip_version(core_bin(version))
        stand_in = cache / f"get_pip_{pip_version.replace('.', '_')}.py"
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


def ansible_env(home: "Path | None" = None, bin_dir: Path = VENV_BIN) -> Dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_NOCOLOR"] = "1"
    if home is not None:
        env["HOME"] = str(home)
    return env


def ansible_test(
    collection: Path, *args: str, home: Path, bin_dir: Path = VENV_BIN
) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [str(bin_dir / "ansible-test"), *args],
        cwd=collection,
        env=ansible_env(home, bin_dir),
        capture_output=True,
        text=True,
        check=False,
    )
