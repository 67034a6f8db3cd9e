# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""corokey.corosync.authkey_info on a real corosync.conf, key and log in a temp directory.

Its answers from a running corosync are checked by the integration tests
(tests/ansible/test_playbooks.py) on the project's test hosts.
"""

import base64
import hashlib
import os

import pytest

# The results name the owner root:root, as the key profiles want it.
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: keys are written as root:root")

KEY = bytes(range(256))

CONF = """totem {
    version: 2
    cluster_name: alpha
    crypto_cipher: aes256
    crypto_hash: sha256
    keyfile: %(key)s
}
logging {
    to_logfile: yes
    logfile: %(log)s
}
nodelist {
    node {
        name: node1
        nodeid: 1
        ring0_addr: 10.250.7.1
    }
    node {
        name: node2
        nodeid: 2
        ring0_addr: 10.250.7.2
    }
}
"""

LOG = """Dec 01 10:00:00 [1] node1 corosync notice  [MAIN  ] Corosync Cluster Engine exiting normally
Dec 01 10:00:01 [1] node1 corosync error   [KNET  ] rx: Unable to decrypt packet from 10.250.7.9:5405 (size 80)!
Dec 01 10:00:02 [1] node1 corosync notice  [MAIN  ] Corosync Cluster Engine 3.1.7 starting up
Dec 01 10:00:03 [1] node1 corosync error   [KNET  ] nsscrypto: Digest does not match. Check crypto key and configuration.
Dec 01 10:00:03 [1] node1 corosync error   [KNET  ] rx: Unable to decrypt packet from 10.250.7.2:5405 (size 80)!
Dec 01 10:00:04 [1] node1 corosync error   [KNET  ] nsscrypto: Digest does not match. Check crypto key and configuration.
Dec 01 10:00:04 [1] node1 corosync error   [KNET  ] rx: Unable to decrypt packet from 10.250.7.2:5405 (size 96)!
"""


def fp(data):
    return "SHA256:" + base64.b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def setup_node(tmp_path, key_mode=0o400):
    key = tmp_path / "authkey"
    key.write_bytes(KEY)
    os.chmod(str(key), key_mode)
    log = tmp_path / "corosync.log"
    log.write_text(LOG)
    conf = tmp_path / "corosync.conf"
    conf.write_text(CONF % {"key": key, "log": log})
    return conf, key


def test_reports_key_crypto_and_mismatches_by_node_name(module_runner, tmp_path):
    conf, key = setup_node(tmp_path)
    result, raw = module_runner("authkey_info", {"conf_path": str(conf)})
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["key"]["path"] == str(key) and result["key"]["source"] == "file"
    assert result["key"]["fingerprint"] == fp(KEY) and result["key"]["size"] == 256
    assert (result["key"]["owner"], result["key"]["mode"], result["key"]["status"]) == ("root:root", "0400", "ok")
    assert result["crypto"] == {"cipher": "aes256", "hash": "sha256", "enabled": True}
    assert result["cluster_name"] == "alpha"
    assert [n["name"] for n in result["nodes"]] == ["node1", "node2"]
    # Only what the newest corosync run logged: 10.250.7.9 was before the last start.
    assert [(m["node"], m["address"], m["count"]) for m in result["mismatches"]] == [("node2", "10.250.7.2", 2)]
    assert "size 96" in result["mismatches"][0]["last_line"]
    assert result["digest_mismatch_lines"] == 2
    assert result["log_source"] == str(tmp_path / "corosync.log")
    assert result["corosync"]["version"].startswith("3.")  # Debian's corosync on this machine
    assert result["corosync"]["online_reload"] is True
    assert KEY.hex() not in raw and base64.b64encode(KEY).decode() not in raw


def test_findings_of_corokey_check_and_a_staged_copy(module_runner, tmp_path):
    conf, key = setup_node(tmp_path, key_mode=0o644)
    staged = tmp_path / ".authkey.corokey-staged"
    staged.write_bytes(KEY[::-1])
    result, _output = module_runner("authkey_info", {"conf_path": str(conf)})
    assert result["key"]["status"] == "error"
    assert any("0644" in f["message"] for f in result["key"]["findings"]), result["key"]["findings"]
    assert result["key"]["staged_fingerprint"] == fp(KEY[::-1])


def test_a_symlinked_key_is_a_finding_not_a_crash(module_runner, tmp_path):
    conf, key = setup_node(tmp_path)
    real = tmp_path / "real"
    key.rename(real)
    key.symlink_to(real)
    result, _output = module_runner("authkey_info", {"conf_path": str(conf)})
    assert not result.get("failed"), result
    assert result["key"]["fingerprint"] is None and result["key"]["status"] == "error"
    assert [f["reference"] for f in result["key"]["findings"]] == ["symlink"]


def test_unreadable_conf_is_reported(module_runner, tmp_path):
    result, _output = module_runner("authkey_info", {"conf_path": str(tmp_path / "missing.conf"), "path": str(tmp_path / "k")})
    assert not result.get("failed"), result
    assert result["doctor"]["status"] == "error"
    assert "missing.conf" in result["doctor"]["findings"][0]["message"]
    assert result["key"]["exists"] is False


def test_another_profile_checks_its_own_file_not_corosyncs(module_runner, tmp_path):
    """Issue 17, 3: profile=pacemaker reported corosync's key (totem.keyfile)."""
    conf, _key = setup_node(tmp_path)
    result, _output = module_runner("authkey_info", {"conf_path": str(conf), "profile": "pacemaker"})
    assert result["key"]["path"] == "/etc/pacemaker/authkey", result["key"]
    assert result["key"]["source"] == "file"
