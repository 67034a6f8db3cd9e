"""Test order for parallel runs (scripts/test.sh runs pytest-xdist with --dist loadfile).

Each test file goes whole to one worker, in collection order.  The files below wait
the longest (Pacemaker's 60 s key cache, cluster stops and starts, ansible-playbook
runs): collected first, longest first, they start at once and the many short files
fill the other worker around them.  The order is the measured one of a serial run
(pytest --durations); a file missing here only starts later.
"""

from __future__ import annotations

from typing import List

import pytest

LONGEST_FIRST = (
    "tests/cluster/test_pacemaker_remote.py",
    "tests/cluster/test_rotate_restart.py",
    "tests/ansible/test_playbooks.py",
    "tests/cluster/test_rotate_faults.py",
    "tests/cluster/test_pacemaker_key.py",
    "tests/cluster/test_rotate.py",
    "tests/test_debian_package.py",
    "tests/ansible/test_sanity.py",
    "tests/cluster/test_node_protocol.py",
    "tests/ansible/test_playbooks_oldest_core.py",
)


def _rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: a file's tests keep their order
