"""ansible-test sanity on the corokey.corosync collection, for each supported ansible-core.

The oldest (2.14, Debian 12's) and the newest (2.19, Debian 13's) run every default
sanity test.  The releases between run, in one loop, the tests whose verdict depends on
the ansible-core release (its documentation schema, its import rules, the Python
versions it targets): the others (pep8, pylint, shellcheck, ...) judge the same files
with the same pinned tools.  Each release lives in its own venv under
/var/cache/corokey-tests, built once per machine (tests/ansible/helpers.py).
"""

import os
import time
from pathlib import Path

import pytest

from tests.ansible.helpers import (
    SUPPORTED_CORE,
    ansible_test,
    copy_collection,
    core_bin,
    locked_ansible_test_home,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="needs root: ansible-test's cache lives in /var/cache"
    ),
]

#: The sanity tests whose answer differs between ansible-core releases.
RELEASE_SENSITIVE = (
    "ansible-doc",
    "compile",
    "import",
    "runtime-metadata",
    "validate-modules",
    "yamllint",
)


def sanity(tmp_path: Path, version: str, *tests: str) -> None:
    collection = copy_collection(tmp_path / version)
    selected = [arg for test in tests for arg in ("--test", test)]
    with locked_ansible_test_home(version) as home:
        started = time.monotonic()
        result = ansible_test(
            collection,
            "sanity",
            "--venv",
            "--python",
            "3.11",
            "--color",
            "no",
            *selected,
            home=home,
            bin_dir=core_bin(version),
        )
        elapsed = time.monotonic() - started
    print(f"ansible-test sanity with ansible-core {version}: {elapsed:.0f} s")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-10000:]


@pytest.mark.parametrize("version", [SUPPORTED_CORE[0], SUPPORTED_CORE[-1]])
def test_ansible_test_sanity_passes(tmp_path: Path, version: str) -> None:
    sanity(tmp_path, version)


def test_the_releases_between_pass_the_release_sensitive_tests(tmp_path: Path) -> None:
    for version in SUPPORTED_CORE[1:-1]:
        sanity(tmp_path, version, *RELEASE_SENSITIVE)


def test_every_supported_release_has_its_ignore_file() -> None:
    from tests.ansible.helpers import COLLECTION

    sanity_dir = COLLECTION / "tests" / "sanity"
    wanted = {f"ignore-{'.'.join(v.split('.')[:2])}.txt" for v in SUPPORTED_CORE}
    assert wanted <= {p.name for p in sanity_dir.iterdir()}
    runtime = (COLLECTION / "meta" / "runtime.yml").read_text()
    assert f'requires_ansible: ">={SUPPORTED_CORE[0].rsplit(".", 1)[0]}.0"' in runtime
