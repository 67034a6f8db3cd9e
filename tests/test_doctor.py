"""Log recognition and the doctor's diagnosis from real files (corosync not running here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from corokey.doctor import diagnose
from corokey.logscan import mismatched_addresses, read_since_last_start, read_tail, scan, scan_line

# Lines as corosync 3.1.7 / knet 1.25 wrote them in tests/cluster (see tests/README.md),
# and as corosync 2.x's totemudp wrote them.
KNET_LINES = [
    "Nov 24 22:54:13 [23847] vm corosync error   [KNET  ] nsscrypto: Digest does not match. "
    "Check crypto key and configuration.",
    "Nov 24 22:54:13 [23847] vm corosync error   [KNET  ] rx: Unable to decrypt packet from "
    "10.9.0.3:5405 (size 80)!",
]
OTHER_GENERATIONS = [
    (
        "Jan  1 00:00:00 n1 corosync[1]: [TOTEM ] Received message has invalid digest... ignoring.",
        "digest-mismatch",
    ),
    ("corosync[1]: [TOTEM ] Invalid digest", "digest-mismatch"),
    ("[KNET  ] opensslcrypto: Digest does not match. Check crypto key", "digest-mismatch"),
    ("[KNET  ] gcryptcrypto: Digest does not match", "digest-mismatch"),
    ("[KNET  ] rx: Unable to decrypt packet from [fd00::3]:5405 (size 80)!", "undecryptable"),
    (
        "[MAIN  ] Could only read 1016 bits of minimum 1024 bits from /etc/corosync/authkey.",
        "key-too-short",
    ),
    ("[MAIN  ] Could not open /etc/corosync/authkey: No such file or directory", "key-unreadable"),
]


def test_knet_lines() -> None:
    events = scan(KNET_LINES)
    assert [e.kind for e in events] == ["digest-mismatch", "undecryptable"]
    assert mismatched_addresses(events) == {"10.9.0.3": 1}


@pytest.mark.parametrize(("line", "kind"), OTHER_GENERATIONS)
def test_every_generation(line: str, kind: str) -> None:
    event = scan_line(line)
    assert event is not None and event.kind == kind


def test_ordinary_lines_are_not_events() -> None:
    for line in (
        "[TOTEM ] A new membership (1.2f) was formed. Members joined: 2",
        "[KNET  ] host: host: 2 (passive) best link: 0 (pri: 1)",
        "",
    ):
        assert scan_line(line) is None
    event = scan_line("[KNET  ] rx: Unable to decrypt packet from 10.0.0.2:5405")
    assert event is not None and event.address == "10.0.0.2"


def test_tail_and_last_start(tmp_path: Path) -> None:
    log = tmp_path / "corosync.log"
    log.write_text("old line\n" * 50000 + "Corosync Cluster Engine 3.1.7 starting up\nnew\n")
    lines = read_tail(str(log), size=4096)
    assert lines[-1] == "new" and len(lines) < 500
    assert read_since_last_start(lines) == ["Corosync Cluster Engine 3.1.7 starting up", "new"]


def _setup(tmp_path: Path, log_lines: List[str], key: bytes, crypto: bool = True) -> Path:
    key_path = tmp_path / "authkey"
    key_path.write_bytes(key)
    key_path.chmod(0o400)
    log = tmp_path / "corosync.log"
    log.write_text("Corosync Cluster Engine 3.1.7 starting up\n" + "\n".join(log_lines) + "\n")
    conf = tmp_path / "corosync.conf"
    crypto_lines = "crypto_cipher: aes256\n crypto_hash: sha256\n" if crypto else ""
    conf.write_text(
        f"totem {{\n version: 2\n {crypto_lines} keyfile: {key_path}\n}}\n"
        "nodelist {\n"
        + "".join(
            f" node {{\n  name: n{i}\n  nodeid: {i}\n  ring0_addr: 10.9.0.{i}\n }}\n"
            for i in (1, 2, 3)
        )
        + f"}}\nlogging {{\n to_logfile: yes\n logfile: {log}\n}}\n"
    )
    return conf


def test_doctor_names_the_node_with_another_key(tmp_path: Path) -> None:
    conf = _setup(tmp_path, KNET_LINES * 3, os.urandom(256))
    diagnosis = diagnose(str(conf))
    assert diagnosis.odd_nodes == ["n3"]
    mismatch = [f for f in diagnosis.findings if f.reference == "key-mismatch"]
    assert len(mismatch) == 1 and "node n3 (10.9.0.3)" in mismatch[0].message
    assert "--nodes n3 --reload" in (mismatch[0].fix or "")
    assert diagnosis.exit_code == 2


def test_doctor_healthy_without_trouble_and_finds_key_problems(tmp_path: Path) -> None:
    conf = _setup(tmp_path, ["[TOTEM ] A new membership (1.8) was formed."], os.urandom(256))
    diagnosis = diagnose(str(conf))
    assert diagnosis.status == "healthy", diagnosis.findings
    (tmp_path / "authkey").chmod(0o644)
    assert "mode-readable" in [f.reference for f in diagnose(str(conf)).findings]


def test_doctor_reports_the_startup_failure(tmp_path: Path) -> None:
    line = (
        "Nov 24 22:54:17 [1] vm corosync error   [MAIN  ] Could only read 1016 bits of "
        "minimum 1024 bits from /etc/corosync/authkey."
    )
    conf = _setup(tmp_path, [line], os.urandom(127))
    refs = [f.reference for f in diagnose(str(conf)).findings]
    assert "startup-failure" in refs and "too-short" in refs


def test_doctor_notes_crypto_off_and_reports_parse_errors(tmp_path: Path) -> None:
    conf = _setup(tmp_path, [], os.urandom(256), crypto=False)
    diagnosis = diagnose(str(conf))
    assert diagnosis.findings[0].reference == "crypto-off"
    conf.write_text("totem {\n")
    broken = diagnose(str(conf))
    assert broken.exit_code == 2 and f"{conf}:1:1:" in broken.findings[0].message


def test_doctor_cli_json(tmp_path: Path) -> None:
    conf = _setup(tmp_path, KNET_LINES, os.urandom(256))
    result = subprocess.run(
        [sys.executable, "-m", "corokey", "doctor", "--config", str(conf), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["odd_nodes"] == ["n3"] and document["status"] == "error"
