"""runtime.members() reads both generations' cmap keys (3.x runtime.members, 2.x
runtime.totem.pg.mrp.srp.members), also from a runner that replays one recorded output
for every cmapctl question (as corokey.nodekey does with a node's answers)."""

from __future__ import annotations

from typing import Sequence, Tuple

import pytest

from corokey.runtime import members

V3 = (
    "runtime.members.1.config_version (u64) = 0\n"
    "runtime.members.1.status (str) = joined\n"
    "runtime.members.2.status (str) = joined\n"
    "runtime.members.3.status (str) = left\n"
)
V2 = (
    "runtime.totem.pg.mrp.srp.members.1.ip (str) = r(0) ip(10.250.1.1) \n"
    "runtime.totem.pg.mrp.srp.members.1.status (str) = joined\n"
    "runtime.totem.pg.mrp.srp.members.3.status (str) = joined\n"
)


def _by_prefix(argv: Sequence[str]) -> Tuple[int, str]:
    prefix = argv[-1]
    return 0, "".join(line + "\n" for line in (V3 + V2).splitlines() if line.startswith(prefix))


@pytest.mark.parametrize(
    ("runner_output", "expected"),
    [(V3, {1, 2}), (V2, {1, 3}), (V2 + V3, {1, 2}), ("", set())],
)
def test_one_replayed_output(runner_output: str, expected: set) -> None:  # type: ignore[type-arg]
    assert members(lambda argv: (0, runner_output)) == expected


def test_each_prefix_asked_separately() -> None:
    assert members(_by_prefix) == {1, 2}


def test_not_running() -> None:
    assert members(lambda argv: (1, "")) is None
