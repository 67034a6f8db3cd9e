"""corokey doctor on real test hosts: healthy, one odd key, a key too short."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List

from corokey.key import generate_key
from tests.testhosts import Host, Network

DOCTOR = [sys.executable, "-m", "corokey", "doctor", "--json"]


def doctor(host: Host) -> Dict[str, Any]:
    result = host.run(DOCTOR, check=False, env={**os.environ, "PYTHONPATH": _src()})
    assert result.stdout, result.stderr
    document: Dict[str, Any] = json.loads(result.stdout)
    document["exit"] = result.returncode
    return document


def _src() -> str:
    import corokey

    return os.path.dirname(os.path.dirname(corokey.__file__))


def test_healthy_cluster(cluster3: List[Host]) -> None:
    report = doctor(cluster3[0])
    assert report["status"] == "healthy", report["findings"]
    assert report["exit"] == 0
    assert report["members"] == [1, 2, 3] and report["quorate"] is True


def test_doctor_on_a_good_host_names_the_odd_host(network: Network, cluster3: List[Host]) -> None:
    odd = cluster3[1]
    odd.stop_corosync()
    odd.write_key(generate_key())
    odd.start_corosync()
    network.wait_for_membership({cluster3[0]: {1, 3}, cluster3[2]: {1, 3}, odd: {2}})
    cluster3[0].wait_until(
        lambda: odd.address in cluster3[0].log_text().split("Unable to decrypt")[-1],
        "undecryptable packets from node2 in node1's log",
    )
    report = doctor(cluster3[0])
    assert report["odd_nodes"] == ["node2"]
    assert report["exit"] == 2
    messages = " ".join(f["message"] for f in report["findings"])
    assert "node node2" in messages and "node node3" not in messages
    # And on the odd host itself: its own key is the one that differs.
    odd.wait_until(
        lambda: all(
            f"Unable to decrypt packet from {h.address}:" in odd.log_text()
            for h in (cluster3[0], cluster3[2])
        ),
        "mismatch messages about both other nodes in node2's log",
    )
    own = doctor(odd)
    assert own["odd_nodes"] == ["this node"]


def test_doctor_names_the_startup_failure_of_a_short_key(cluster3: List[Host]) -> None:
    host = cluster3[2]
    host.stop_corosync()
    host.write_key(os.urandom(100))
    process = host.start_corosync(wait=False)
    assert process.wait(timeout=30) != 0
    report = doctor(host)
    references = [f["reference"] for f in report["findings"]]
    assert "startup-failure" in references and "too-short" in references
    failure = next(f for f in report["findings"] if f["reference"] == "startup-failure")
    assert "Could only read 800 bits of minimum 1024 bits" in failure["message"]
