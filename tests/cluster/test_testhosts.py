"""The test-host fixture itself: isolation, SSH by name, and a teardown that leaves nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.testhosts import STATE_ROOT, Network, clean_stale_runs


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_hosts_are_isolated_and_reachable_by_name_over_ssh(testhosts_available: None) -> None:
    real_key = Path("/etc/corosync/authkey")
    before = real_key.read_bytes() if real_key.exists() else None
    net = Network()
    try:
        hosts = net.add_hosts(2, corosync=False)
        secret = os.urandom(200)
        hosts[0].write_key(secret)
        assert hosts[0].read_key() == secret
        assert not hosts[1].path("/etc/corosync/authkey").exists()
        assert (real_key.read_bytes() if real_key.exists() else None) == before
        result = net.run_admin(
            ["ssh", "-F", str(net.ssh_config), "node1", "sha256sum /etc/corosync/authkey"]
        )
        assert result.returncode == 0, result.stderr
        import hashlib

        assert result.stdout.split()[0] == hashlib.sha256(secret).hexdigest()
        # Host addresses exist only inside the namespaces.
        outside = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        assert hosts[0].address not in outside
    finally:
        net.close()
    assert net.prefix not in _netns()
    assert not (STATE_ROOT / net.prefix).exists()
    assert not net.workdir.exists()


def test_a_killed_run_is_cleaned_by_the_next(testhosts_available: None) -> None:
    net = Network()
    net.add_hosts(1, corosync=False)
    sshd_pid = net.hosts[0].sshd_process.pid  # type: ignore[union-attr]
    # Pretend the owner died: point the state at a PID that is gone.
    state_file = STATE_ROOT / net.prefix / "state.json"
    state_file.write_text(
        state_file.read_text().replace(f'"owner": {os.getpid()}', '"owner": 4194399')
    )
    clean_stale_runs()
    assert net.prefix not in _netns()
    with pytest.raises(ProcessLookupError):
        os.kill(sshd_pid, 0)
    net._closed = True  # already torn down by the cleaner
