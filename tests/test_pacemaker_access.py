"""The pacemaker profile's owner/mode rule (corokey.pacemaker_access), local check on real
files, and verify's comparison of whole keys (corokey.verify.VerifyReport)."""

import os
from pathlib import Path
from typing import List, Optional

import pytest

from corokey.checks import check_key
from corokey.key import fingerprint, fingerprint_whole
from corokey.nodekey import RemoteKey
from corokey.pacemaker_access import Accounts, access_findings, owner_for
from corokey.profiles import get_profile
from corokey.verify import NodeState, VerifyReport

PATH = "/etc/pacemaker/authkey"


def _refs(mode: int, owner: str, group: str, role: "Optional[str]") -> "List[str]":
    return [
        f"{f.severity}:{f.reference}" for f in access_findings(PATH, PATH, mode, owner, group, role)
    ]


@pytest.mark.parametrize(
    ("mode", "owner", "group", "role", "expected"),
    [
        # What the tools write: Debian's postinst, pcs (and corokey's profile).
        (0o640, "root", "haclient", "cluster", []),
        (0o400, "hacluster", "haclient", "cluster", []),
        (0o640, "root", "haclient", "remote", []),
        # Readable by hacluster another way: accepted with a note.
        (0o440, "root", "haclient", "cluster", ["note:mode-accepted"]),
        (0o600, "hacluster", "haclient", "cluster", ["note:mode-accepted"]),
        # Only root can read it: fine for pacemaker-remoted, not for pacemaker-controld.
        (0o400, "root", "root", "remote", []),
        (0o400, "root", "root", "cluster", ["error:pacemaker-unreadable"]),
        (0o400, "root", "root", None, ["warning:pacemaker-unreadable"]),
        (0o600, "root", "haclient", "cluster", ["error:pacemaker-unreadable"]),
        # Exposed.
        (0o644, "root", "haclient", "cluster", ["error:mode-readable"]),
        (0o604, "hacluster", "haclient", "remote", ["error:mode-readable"]),
        (0o642, "root", "haclient", "cluster", ["error:mode-writable"]),
        (0o660, "root", "haclient", "cluster", ["error:mode-writable"]),
        (0o640, "root", "users", "cluster", ["error:mode-readable"]),
        (0o400, "nobody", "haclient", "remote", ["error:owner"]),
    ],
)
def test_the_rule(
    mode: int, owner: str, group: str, role: "Optional[str]", expected: "List[str]"
) -> None:
    assert _refs(mode, owner, group, role) == expected


#: A node's user database: both of Pacemaker's accounts (Debian's and the RPM packages
#: make them, pacemaker-remote's too), neither (a remote node built from source), only
#: the user (hacluster's login group: nogroup).
BOTH = Accounts(True, True, "haclient")
NEITHER = Accounts(False, False)
USER_ONLY = Accounts(True, False, "nogroup")


def test_what_the_profile_writes_depends_on_the_node_s_accounts() -> None:
    assert owner_for(None) == owner_for(BOTH) == "hacluster:haclient"
    assert owner_for(NEITHER) == owner_for(Accounts(False, True)) == "root:root"
    assert owner_for(USER_ONLY) == "hacluster:nogroup"


@pytest.mark.parametrize(
    ("mode", "owner", "group", "role", "accounts", "expected"),
    [
        # What corokey writes where hacluster does not exist: only root reads it there,
        # whatever the role says (pacemakerd refuses to start without hacluster).
        (0o400, "root", "root", None, NEITHER, []),
        (0o400, "root", "root", "cluster", NEITHER, []),
        (0o600, "root", "root", None, NEITHER, []),
        (0o644, "root", "root", None, NEITHER, ["error:mode-readable"]),
        (0o440, "root", "root", "remote", NEITHER, ["error:mode-readable"]),
        # Where hacluster exists without haclient: hacluster and its login group.
        (0o400, "hacluster", "nogroup", "cluster", USER_ONLY, []),
        (0o400, "root", "root", "cluster", USER_ONLY, ["error:pacemaker-unreadable"]),
        # Where both exist: today's rule.
        (0o400, "root", "root", None, BOTH, ["warning:pacemaker-unreadable"]),
        (0o400, "hacluster", "haclient", "cluster", BOTH, []),
    ],
)
def test_the_rule_on_a_node_s_accounts(
    mode: int,
    owner: str,
    group: str,
    role: "Optional[str]",
    accounts: Accounts,
    expected: "List[str]",
) -> None:
    found = access_findings(PATH, PATH, mode, owner, group, role, accounts)
    assert [f"{f.severity}:{f.reference}" for f in found] == expected
    if found:  # the fix writes what push writes on that node
        assert f"chown {owner_for(accounts)} " in (found[0].fix or "")


def test_the_fix_writes_what_the_profile_writes() -> None:
    (finding,) = access_findings(PATH, PATH, 0o644, "root", "haclient", "cluster")
    assert finding.fix == f"chown hacluster:haclient {PATH} && chmod 0400 {PATH}"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file away")
def test_check_accepts_debians_stock_key(tmp_path: Path) -> None:
    import grp
    import pwd

    try:
        gid = grp.getgrnam("haclient").gr_gid
        pwd.getpwnam("hacluster")
    except KeyError:
        pytest.skip("no hacluster/haclient on this host (pacemaker-common creates them)")
    key = tmp_path / "authkey"
    data = os.urandom(4096)
    key.write_bytes(data)
    os.chown(key, 0, gid)
    key.chmod(0o640)
    report = check_key(str(key), get_profile("pacemaker"), False)
    assert report.findings == ()
    os.chown(key, 0, 0)
    key.chmod(0o644)
    assert [f.reference for f in check_key(str(key), get_profile("pacemaker"), False).findings] == [
        "mode-readable"
    ]


def test_check_fingerprints_the_whole_pacemaker_key(tmp_path: Path) -> None:
    key = tmp_path / "authkey"
    data = os.urandom(4096)
    key.write_bytes(data)
    key.chmod(0o400)
    assert check_key(str(key), get_profile("pacemaker"), False).fingerprint == fingerprint_whole(
        data
    )
    assert check_key(str(key), get_profile("corosync"), False).fingerprint == fingerprint(data)
    assert fingerprint_whole(data + b"x") != fingerprint(data + b"x") == fingerprint(data)


def _state(node: str, sha256: str, used: "Optional[str]" = None) -> "NodeState":
    state = NodeState(node)
    state.key = RemoteKey(
        kind="regular",
        mode=0o400,
        owner="hacluster",
        group="haclient",
        size=4096,
        sha256=sha256,
        used=used or sha256,
    )
    return state


def test_every_node_a_different_key_is_said_and_fixed_from_the_first() -> None:
    states = [_state("node1", "a"), _state("node2", "b"), _state("remote1", "c")]
    report = VerifyReport(PATH, states, "pacemaker")
    assert report.all_different and report.tie
    assert report.fix() == "corokey push --profile pacemaker --from node1 --nodes node2,remote1"
    # corosync's profile keeps refusing to guess on a tie.
    assert VerifyReport("/etc/corosync/authkey", states).fix() is None


def test_pacemaker_keys_are_compared_whole_not_as_corosync_2_uses_them() -> None:
    # A corosync 2.x node's "used" covers 128 bytes; Pacemaker reads the whole file.
    states = [_state("node1", "a", used="x"), _state("node2", "b", used="x")]
    assert VerifyReport(PATH, states, "pacemaker").odd == ["node1", "node2"]
    assert VerifyReport("/etc/corosync/authkey", states).odd == []


def test_the_odd_node_is_named_with_the_profile_in_the_fix() -> None:
    states = [_state("node1", "a"), _state("node2", "a"), _state("remote1", "b")]
    report = VerifyReport(PATH, states, "pacemaker")
    assert report.odd == ["remote1"] and not report.all_different
    assert report.fix() == "corokey push --profile pacemaker --from node1 --nodes remote1"
