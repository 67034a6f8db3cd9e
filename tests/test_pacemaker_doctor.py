"""corokey doctor --profile pacemaker without a cluster: the log scanner on lines in the
format Pacemaker 2.1.5 writes (lib/common/logging.c; messages of lib/lrmd/lrmd_client.c,
lib/common/remote.c, daemons/execd/remoted_tls.c), PCMK_authkey_location, the verdicts.
The cluster tests (tests/cluster/test_pacemaker_remote.py) hold the scanner against lines a
real Pacemaker wrote."""

import os
from pathlib import Path

import pytest

from corokey.pacemaker import environment_location
from corokey.pacemaker_doctor import (
    diagnose,
    pacemaker_version,
    scan,
)

# Lines Pacemaker 2.1.5 wrote on the test hosts (tests/cluster/test_pacemaker_remote.py,
# a remote node holding another key), and one of lrmd_tls_connect's.
CLUSTER_LOG = [
    "Dec 07 11:08:44.180 vm pacemaker-controld  [32438] (lrmd_tcp_connect_cb) \twarning: "
    "Disconnecting after TLS handshake with Pacemaker Remote server 10.250.103.3:3121 failed",
    "Dec 07 11:08:44.180 vm pacemaker-controld  [32438] (lrmd_tls_connection_destroy) \tinfo: "
    "TLS connection destroyed",
    "Dec 07 11:08:54.180 vm pacemaker-controld  [32438] (lrmd_tcp_connect_cb) \twarning: "
    "Disconnecting after TLS handshake with Pacemaker Remote server 10.250.103.3:3121 failed",
    "Dec 07 11:08:55.000 vm pacemaker-controld  [32438] (lrmd_tls_connect) \terror: "
    "Session creation for remote2:3121 failed",
]
REMOTE_LOG = [
    "Dec 07 11:08:43.664 vm pacemaker-remoted   [2124] (pcmk__accept_remote_connection) "
    "\tinfo: Accepted new remote client connection from ::ffff:10.250.103.1",
    "Dec 07 11:08:44.176 vm pacemaker-remoted   [2124] (pcmk__read_handshake_data) \terror: "
    "TLS handshake with remote client failed: An illegal parameter has been received. | rc=-55",
]


def test_handshake_failures_name_the_peer_on_both_sides() -> None:
    cluster = scan(CLUSTER_LOG)
    assert [(e.kind, e.peer) for e in cluster] == [
        ("handshake-failed", "10.250.103.3:3121"),
        ("handshake-failed", "10.250.103.3:3121"),
        ("handshake-failed", "remote2:3121"),
    ]
    assert [(e.kind, e.peer) for e in scan(REMOTE_LOG)] == [("handshake-failed", "10.250.103.1")]


def test_an_unreadable_key_is_its_own_event() -> None:
    lines = [
        "Dec 07 10:50:00.000 node1 pacemaker-controld  [1234] (lrmd__init_remote_key) \twarning:"
        " Could not read Pacemaker Remote key from default location /etc/pacemaker/authkey (or "
        "fallback location /etc/corosync/authkey): Permission denied",
        "Dec 07 10:50:00.001 node1 pacemaker-controld  [1234] (lrmd_tls_connect_async) \tinfo: "
        "Could not connect to Pacemaker Remote at 10.0.0.21:3121: Required key not available | "
        "rc=126",
    ]
    assert [e.kind for e in scan(lines)] == ["no-key", "connect-no-key"]


def test_doctor_names_the_peers_and_the_command_that_finds_the_odd_key() -> None:
    diagnosis = diagnose(
        log_lines=CLUSTER_LOG,
        environment_files=[],
        role="cluster",
        version_text="Pacemaker 2.1.5\n",
    )
    (finding,) = [f for f in diagnosis.findings if f.reference == "pacemaker-handshake-failed"]
    assert "10.250.103.3:3121 (2x)" in finding.message and "remote2:3121 (1x)" in finding.message
    assert finding.fix is not None and finding.fix.startswith("corokey verify --profile pacemaker")
    assert diagnosis.exit_code == 2


def test_environment_file_as_systemd_reads_it(tmp_path: Path) -> None:
    first = tmp_path / "default"
    first.write_text(
        "# PCMK_authkey_location=/commented\n"
        'PCMK_authkey_location="/etc/pacemaker/one"\n'
        "PCMK_authkey_location=/etc/pacemaker/two\n"
    )
    assert environment_location([str(tmp_path / "missing"), str(first)]) == "/etc/pacemaker/two"
    first.write_text("PCMK_logfile=/x\n")
    assert environment_location([str(first)]) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="the key must be root's, as on a remote node")
def test_a_location_holding_no_key_is_an_error(tmp_path: Path) -> None:
    env = tmp_path / "pacemaker"
    key = tmp_path / "authkey"
    env.write_text(f"PCMK_authkey_location={key}\n")
    diagnosis = diagnose(log_lines=[], environment_files=[str(env)], role="remote", version_text="")
    assert "pacemaker-location-unusable" in [f.reference for f in diagnosis.findings]
    key.write_bytes(os.urandom(256))
    key.chmod(0o400)
    diagnosis = diagnose(log_lines=[], environment_files=[str(env)], role="remote", version_text="")
    assert diagnosis.key_path == str(key)
    assert [f.reference for f in diagnosis.findings if f.severity != "note"] == []
    assert "pacemaker-location" in [f.reference for f in diagnosis.findings]


def test_pacemaker_3_0_2_reads_once() -> None:
    assert pacemaker_version("Pacemaker 3.0.2\nWritten by Andrew Beekhof") == (3, 0, 2)
    diagnosis = diagnose(
        log_lines=[], environment_files=[], role="cluster", version_text="Pacemaker 3.0.2\n"
    )
    assert "pacemaker-reads-once" in [f.reference for f in diagnosis.findings]


def test_pacemaker_3_does_not_fall_through_an_unusable_location(tmp_path: Path) -> None:
    env = tmp_path / "pacemaker"
    env.write_text(f"PCMK_authkey_location={tmp_path / 'missing'}\n")
    diagnosis = diagnose(
        log_lines=[], environment_files=[str(env)], role="remote", version_text="Pacemaker 3.0.0"
    )
    assert diagnosis.key_path is None
    assert "pacemaker-no-key" in [f.reference for f in diagnosis.findings]
