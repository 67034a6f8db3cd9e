"""ansible-test sanity, every default test, on the corokey.corosync collection."""

import os
import time
from pathlib import Path

import pytest

from tests.ansible.helpers import (
    ansible_core_version,
    ansible_test,
    copy_collection,
    locked_ansible_test_home,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="needs root: ansible-test's cache lives in /var/cache"
    ),
]


def test_ansible_test_sanity_passes(tmp_path: Path) -> None:
    collection = copy_collection(tmp_path)
    with locked_ansible_test_home() as home:
        started = time.monotonic()
        result = ansible_test(
            collection, "sanity", "--venv", "--python", "3.11", "--color", "no", home=home
        )
        elapsed = time.monotonic() - started
    print(f"ansible-test sanity with ansible-core {ansible_core_version()}: {elapsed:.0f} s")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-10000:]
