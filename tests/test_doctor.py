"""Log recognition and the doctor's diagnosis from real files (corosync not running here)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

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
    # corosync 2.3.5's exec/totemconfig.c read_keyfile
    (
        "[MAIN  ] Could only read 800 bits of 1024 bits from /etc/corosync/authkey.",
        "key-too-short",
    ),
]


def test_knet_lines() -> None:
    events = scan(KNET_LINES)
    assert [e.kind for e in events] == ["digest-mismatch", "undecryptable"]
    assert mismatched_addresses(events) == {"10.9.0.3": 1}


@pytest.mark.parametrize(("line", "kind"), OTHER_GENERATIONS)
def test_every_generation(line: str, kind: str) -> None:
    event = scan_line(line)
    assert event is not None and event.kind == kind


@pytest.mark.parametrize(
    "line",
    [
        "Dec 01 10:00:00 [9] vm corosync notice  [TOTEM ] Received message has invalid digest... "
        "ignoring.",
        "Dec 01 10:00:00 [9] vm corosync error   [TOTEM ] Digest does not match",
    ],
)
def test_2x_digest_lines_are_marked_as_naming_no_sender(line: str) -> None:
    event = scan_line(line)
    assert event is not None and (event.kind, event.detail, event.address) == (
        "digest-mismatch",
        "2.x",
        None,
    )
    knet = scan_line(KNET_LINES[0])
    assert knet is not None and knet.detail is None


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


def _not_running(argv: Sequence[str]) -> Tuple[int, str]:
    return 1, ""  # corosync's tools answer nothing: the daemon is not running


def test_doctor_warns_of_crypto_off_and_reports_parse_errors(tmp_path: Path) -> None:
    conf = _setup(tmp_path, [], os.urandom(256), crypto=False)
    diagnosis = diagnose(str(conf), run=_not_running)
    assert diagnosis.findings[0].reference == "crypto-off"
    assert diagnosis.findings[0].severity == "warning" and diagnosis.exit_code == 1
    conf.write_text("totem {\n")
    broken = diagnose(str(conf))
    assert broken.exit_code == 2
    assert f"{conf}:1: Missing closing brace" in broken.findings[0].message


DEBIAN_CONF = Path("/etc/corosync/corosync.conf")


def _pristine_debian_conf() -> bool:
    """Whether this host's corosync.conf is Debian's packaged default, byte for byte."""
    found = subprocess.run(
        ["dpkg-query", "-W", "-f=${Conffiles}", "corosync"], capture_output=True, text=True
    )
    sums = dict(line.split()[:2] for line in found.stdout.splitlines() if line.strip())
    if str(DEBIAN_CONF) not in sums or not DEBIAN_CONF.exists():
        return False
    return hashlib.md5(DEBIAN_CONF.read_bytes()).hexdigest() == sums[str(DEBIAN_CONF)]


@pytest.mark.skipif(not _pristine_debian_conf(), reason="needs Debian's own corosync.conf")
def test_doctor_on_debians_default_conf_warns_and_says_how_to_turn_crypto_on() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "corokey", "doctor", "--config", str(DEBIAN_CONF)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    warning = next(line for line in lines if line.startswith("warning[crypto-off]: "))
    assert "any host that can reach the ring can join the cluster or spoof" in warning
    fix = lines[lines.index(warning) + 1]
    assert "'crypto_cipher: aes256' and 'crypto_hash: sha256' to totem" in fix
    assert "corosync-cfgtool -R" in fix and "restarted on all nodes" in fix
    assert lines[-1] == "warnings: see above" and "healthy" not in result.stdout


def test_doctor_without_knet_says_crypto_needs_knet_and_a_restart(tmp_path: Path) -> None:
    conf = _setup(tmp_path, [], os.urandom(256), crypto=False)
    conf.write_text(conf.read_text().replace("version: 2\n", "version: 2\n transport: udpu\n"))
    finding = diagnose(str(conf), run=_not_running).findings[0]
    assert finding.reference == "crypto-off" and finding.severity == "warning"
    assert "uses udpu" in (finding.fix or "") and "restart corosync on all nodes" in (
        finding.fix or ""
    )


def test_doctor_quotes_node_names_and_prints_no_control_characters(tmp_path: Path) -> None:
    evil = "n3$(id);x\x1b[2J"
    conf = _setup(tmp_path, KNET_LINES * 3, os.urandom(256))
    conf.write_text(conf.read_text().replace("name: n3\n", f"name: {evil}\n"))
    mismatch = [f for f in diagnose(str(conf)).findings if f.reference == "key-mismatch"]
    assert len(mismatch) == 1
    assert f"--nodes {shlex.quote(evil)} --reload" in (mismatch[0].fix or "")
    result = subprocess.run(
        [sys.executable, "-m", "corokey", "doctor", "--config", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "\x1b" not in result.stdout and "\\x1b[2J" in result.stdout
    printed = [line for line in result.stdout.splitlines() if "--nodes" in line]
    assert printed == [
        "  fix: corokey push --from A_GOOD_NODE --nodes 'n3$(id);x\\x1b[2J' --reload"
    ]


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


def test_doctor_judges_crypto_by_the_generation_and_advises_for_2x(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2.x encrypts without crypto lines (aes256 + sha1); its crypto-off advice names no
    knet and no online reload, which 2.x does not have."""
    monkeypatch.setenv("COROKEY_COROSYNC", "2.4.6")
    conf = _setup(tmp_path, [], os.urandom(128), crypto=False)
    diagnosis = diagnose(str(conf), run=_not_running)
    assert diagnosis.crypto == "aes256/sha1"
    assert "crypto-off" not in [f.reference for f in diagnosis.findings]
    conf.write_text(conf.read_text().replace(" version: 2\n", " version: 2\n secauth: off\n"))
    off = [f for f in diagnose(str(conf), run=_not_running).findings if f.reference == "crypto-off"]
    assert len(off) == 1
    fix = off[0].fix or ""
    assert "secauth: off" in fix and "restart corosync on all nodes together" in fix
    assert "knet" not in fix and "-R" not in fix
    monkeypatch.setenv("COROKEY_COROSYNC", "3")
    three = diagnose(str(conf), run=_not_running)
    assert three.crypto == "none/none"
