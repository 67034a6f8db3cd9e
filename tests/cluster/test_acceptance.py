"""The seed's claims, proven on real corosync 3 with keys made by corokey."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Dict, List

from corokey.key import generate_key
from tests.testhosts import Host, Network


def restart_with_keys(network: Network, keys: Dict[Host, bytes]) -> None:
    for host in keys:
        host.stop_corosync()
    for host, key in keys.items():
        host.write_key(key)
    for host in keys:
        host.start_corosync()


def corokey(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corokey", *args], capture_output=True, text=True, check=False
    )


def test_same_key_everywhere_forms_one_cluster(cluster3: List[Host]) -> None:
    for host in cluster3:
        assert host.members() == {1, 2, 3}
    assert cluster3[0].read_key() == cluster3[1].read_key() == cluster3[2].read_key()


def test_a_host_with_another_key_is_left_alone(network: Network, cluster3: List[Host]) -> None:
    odd = cluster3[2]
    restart_with_keys(network, {odd: generate_key()})
    network.wait_for_membership({cluster3[0]: {1, 2}, cluster3[1]: {1, 2}, odd: {3}})
    digest = re.compile(r"\[KNET  \] nsscrypto: Digest does not match\. Check crypto key")
    undecryptable = re.compile(rf"rx: Unable to decrypt packet from {re.escape(odd.address)}:5405")
    good = cluster3[0]
    good.wait_until(
        lambda: bool(digest.search(good.log_text()) and undecryptable.search(good.log_text())),
        "mismatch messages in node1's log",
    )
    odd.wait_until(lambda: bool(digest.search(odd.log_text())), "mismatch messages in node3's log")


def test_keys_of_128_and_4096_bytes_form_a_cluster(network: Network, cluster3: List[Host]) -> None:
    for size in (128, 4096):
        key = generate_key(size)
        restart_with_keys(network, {host: key for host in cluster3})
        network.wait_for_membership()
        assert all(len(host.read_key()) == size for host in cluster3)


def test_a_127_byte_key_stops_corosync_as_check_predicted(
    network: Network, cluster3: List[Host], tmp_path: os.PathLike[str]
) -> None:
    short = os.urandom(127)
    host = cluster3[0]
    host.stop_corosync()
    host.write_key(short)
    prediction = corokey("check", str(host.path("/etc/corosync/authkey")))
    assert prediction.returncode == 2
    expected = "Could only read 1016 bits of minimum 1024 bits from"
    assert expected in prediction.stdout
    process = host.start_corosync(wait=False)
    assert process.wait(timeout=30) != 0
    assert f"{expected} /etc/corosync/authkey." in host.corosync_stderr()


def test_keys_equal_in_their_first_4096_bytes_are_one_key(
    network: Network, cluster3: List[Host]
) -> None:
    head = generate_key(4096)
    keys = {
        cluster3[0]: head + b"tail-one",
        cluster3[1]: head + os.urandom(100),
        cluster3[2]: head,
    }
    restart_with_keys(network, keys)
    network.wait_for_membership()
    paths = [str(host.path("/etc/corosync/authkey")) for host in cluster3]
    verdict = corokey("compare", *paths)
    assert verdict.returncode == 0, verdict.stdout
    assert "corosync 3: same key in all 3 files" in verdict.stdout
