"""corokey.pacemaker: when Pacemaker 2.x reads corosync's key as Pacemaker Remote's key.

The rule follows lrmd__init_remote_key (lib/lrmd/lrmd_client.c, Pacemaker 2.1.5): the
first key it can read of PCMK_authkey_location, /etc/pacemaker/authkey, then (2.x only)
/etc/corosync/authkey; the reader on a cluster node is hacluster. The differential proof
on a real Pacemaker is tests/cluster/test_pacemaker_key.py.
"""

from __future__ import annotations

from typing import List, Optional

import pytest

from corokey.findings import ERROR, NOTE, Finding
from corokey.nodescripts import parse_answer
from corokey.pacemaker import (
    FALLBACK_KEY_PATH,
    PACEMAKER_KEY_PATH,
    KeyFacts,
    PacemakerFacts,
    adjust_findings,
    from_answers,
    refusal,
    shares_corosync_key,
)

HACLUSTER, HACLIENT = 103, 105
OTHER = "/etc/pacemaker/other.key"


def key(
    path: str,
    mode: int = 0o440,
    uid: int = 0,
    gid: int = HACLIENT,
    size: int = 256,
    ino: Optional[int] = None,
) -> KeyFacts:
    return KeyFacts(
        path=path,
        kind="regular",
        mode=mode,
        uid=uid,
        gid=gid,
        size=size,
        dev=1,
        ino=ino if ino is not None else hash(path) % 10000,
    )


def facts(
    *keys: KeyFacts, version: str = "2.1.5", location: Optional[str] = None
) -> PacemakerFacts:
    return PacemakerFacts(
        version=version,
        location=location,
        keys={k.path: k for k in keys},
        reader_uid=HACLUSTER,
        reader_gids=frozenset({HACLIENT}),
    )


COROSYNC_0440 = key(FALLBACK_KEY_PATH)


@pytest.mark.parametrize(
    "own, version, location, shared",
    [
        ([], "2.1.5", None, "/etc/pacemaker/authkey does not exist"),
        ([key(PACEMAKER_KEY_PATH, size=0)], "2.1.5", None, "is empty"),
        ([key(PACEMAKER_KEY_PATH, mode=0o400)], "2.1.5", None, "not readable by hacluster"),
        ([KeyFacts(path=PACEMAKER_KEY_PATH, kind="directory")], "2.1.5", None, "directory"),
        # Debian's own key (root:haclient 0640), pcs's (hacluster:haclient 0400).
        ([key(PACEMAKER_KEY_PATH, mode=0o640)], "2.1.5", None, None),
        ([key(PACEMAKER_KEY_PATH, mode=0o400, uid=HACLUSTER)], "2.1.5", None, None),
        # The owner's bits decide for the owner, even when the group could read.
        ([key(PACEMAKER_KEY_PATH, mode=0o040, uid=HACLUSTER)], "2.1.5", None, "not readable"),
        # PCMK_authkey_location readable: used; unreadable: Pacemaker goes on down the list.
        ([key(OTHER)], "2.1.5", OTHER, None),
        ([key(OTHER, size=0), key(PACEMAKER_KEY_PATH)], "2.1.5", OTHER, None),
        ([key(OTHER, size=0)], "2.1.5", OTHER, "other.key is empty"),
        # Pacemaker 3.0 dropped the fallback; a version pacemakerd did not tell is taken
        # to fall back (never advise cutting a node off).
        ([], "3.0.0", None, None),
        ([], "unknown", None, "does not exist"),
        # /etc/pacemaker/authkey a link to corosync's key: the same file.
        ([key(PACEMAKER_KEY_PATH, ino=COROSYNC_0440.ino)], "2.1.5", None, "through"),
        ([key(PACEMAKER_KEY_PATH, ino=COROSYNC_0440.ino)], "3.0.1", None, "through"),
    ],
)
def test_when_pacemaker_reads_corosyncs_key(
    own: List[KeyFacts], version: str, location: Optional[str], shared: Optional[str]
) -> None:
    reason = shares_corosync_key(
        facts(*own, COROSYNC_0440, version=version, location=location), FALLBACK_KEY_PATH
    )
    if shared is None:
        assert reason is None
    else:
        assert reason is not None and shared in reason, reason


def test_a_corosync_key_hacluster_cannot_read_is_not_shared() -> None:
    assert shares_corosync_key(facts(key(FALLBACK_KEY_PATH, mode=0o400)), FALLBACK_KEY_PATH) is None
    assert shares_corosync_key(facts(key(FALLBACK_KEY_PATH, gid=0)), FALLBACK_KEY_PATH) is None


def test_only_the_fallback_path_is_read_by_pacemaker() -> None:
    elsewhere = "/etc/corosync/cluster.key"  # totem.keyfile elsewhere: not Pacemaker's
    assert shares_corosync_key(facts(key(elsewhere)), elsewhere) is None
    assert shares_corosync_key(None, FALLBACK_KEY_PATH) is None  # no Pacemaker there


def test_the_mode_error_becomes_a_note_naming_the_way_out() -> None:
    findings = [
        Finding(ERROR, "mode-readable", "k is 0440 (readable by group)", "chmod 0400 k"),
        Finding("warning", "group", "k has group gid 105, not root (gid 0)", "chown root:root k"),
        Finding(ERROR, "too-short", "k has 12 bytes"),
    ]
    adjusted = adjust_findings(findings, "Pacemaker 2.1.5 reads it", FALLBACK_KEY_PATH, 0o440)
    assert [(f.severity, f.reference) for f in adjusted] == [
        (NOTE, "pacemaker-remote-key"),
        (ERROR, "too-short"),
    ]
    assert "its own key on every cluster and remote node" in (adjusted[0].fix or "")
    assert adjust_findings(findings, None, FALLBACK_KEY_PATH, 0o440) == findings


def test_readable_by_others_stays_an_error_whose_fix_keeps_pacemakers_access() -> None:
    others = [Finding(ERROR, "mode-readable", "k is 0444 (readable by group and others)", "x")]
    adjusted = adjust_findings(others, "Pacemaker reads it", "k", 0o444)
    assert [(f.reference, f.fix) for f in adjusted] == [
        ("pacemaker-remote-key", adjusted[0].fix),
        ("mode-readable", "chmod 0440 k"),
    ]


def test_rotate_names_every_node_and_the_way_out() -> None:
    assert refusal({}, FALLBACK_KEY_PATH) is None
    text = refusal({"n2": "why 2", "n1": "why 1"}, FALLBACK_KEY_PATH) or ""
    assert "on n1, n2 (n1: why 1)" in text and "own key on every cluster and remote node" in text


def test_the_node_answers_parse() -> None:
    lines = [
        "corokey-result pacemaker version=2.1.5 uid=103 gids=105,4",
        'corokey-result pcmk-env path="/etc/pacemaker/x key"',
        "corokey-result pcmk-key kind=missing path=/etc/pacemaker/x key",
        "corokey-result pcmk-key kind=regular mode=440 uid=0 gid=105 dev=2049 ino=77 size=256 "
        "sha256=ab path=/etc/corosync/authkey",
    ]
    parsed = from_answers(a for a in map(parse_answer, lines) if a is not None)
    assert parsed is not None
    assert (parsed.version, parsed.location, parsed.reader_uid) == (
        "2.1.5",
        "/etc/pacemaker/x key",
        103,
    )
    assert parsed.reader_gids == frozenset({105, 4})
    corosync = parsed.keys[FALLBACK_KEY_PATH]
    assert (corosync.mode, corosync.gid, corosync.size, corosync.ino, corosync.sha256) == (
        0o440,
        105,
        256,
        77,
        "ab",
    )
    assert parsed.keys["/etc/pacemaker/x key"].kind == "missing"
    assert from_answers([]) is None


def _node(sha256: str, shared: bool = True) -> PacemakerFacts:
    corosync = key(FALLBACK_KEY_PATH, mode=0o440 if shared else 0o400)
    corosync._set(sha256=sha256)
    return facts(corosync)


def test_push_keeps_pacemakers_key_readable_and_never_changes_it() -> None:
    from corokey.pacemaker import push_plan

    # The same key: written root:haclient 0440 where Pacemaker reads it, 0400 elsewhere.
    nodes = {"n1": _node("old"), "n2": _node("old", shared=False), "n3": None}
    assert push_plan(nodes, FALLBACK_KEY_PATH, "old") == (["n1"], None)
    # A new key where Pacemaker reads the old one: refused, with the way out.
    shared, problem = push_plan(nodes, FALLBACK_KEY_PATH, "new")
    assert shared == ["n1"] and problem is not None
    assert "on n1 (n1: Pacemaker 2.1.5" in problem[0]
    assert "--from GOOD" in problem[1] and "its own key on every cluster" in problem[1]
    # A repair: another node of the push, or the --from node, holds it as Pacemaker's.
    odd = {"n1": _node("good"), "n3": _node("odd")}
    assert push_plan(odd, FALLBACK_KEY_PATH, "good") == (["n1", "n3"], None)
    assert push_plan({"n3": _node("odd")}, FALLBACK_KEY_PATH, "good", True) == (["n3"], None)
    # Another key path than the fallback: nothing of Pacemaker's.
    assert push_plan(nodes, "/etc/corosync/cluster.key", "new") == ([], None)
