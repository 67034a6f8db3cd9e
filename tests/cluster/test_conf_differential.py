"""corokey's reading of corosync.conf against the real corosync's (issue 16, part 1).

Each variant is loaded by a real ``corosync -f`` (Debian's 3.1.7, and the 2.4.6 and
2.3.5 builds of tests/corosync2.py), one test host per generation; the cmap keys are
read back with ``corosync-cmapctl`` and compared, names, types and values, with what
:func:`corokey.corosync_conf.parse_conf` makes of the same bytes for that generation.
A variant a corosync refuses must be refused by corokey too, naming the same line
(3.x names ``FILE:LINE``; 2.x names none, and the test checks that it says so).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

from corokey.coroparse import CmapValue, ConfParseError
from corokey.corosync_conf import parse_conf
from corokey.key import generate_key
from tests import corosync2
from tests.testhosts import LOG_PATH, Host, Network, unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.root]

CONF = "/etc/corosync/corosync.conf"
OTHER_KEY = "/etc/corosync/cluster.key"
#: The cmap keys compared: where corokey's decisions come from.
COMPARED = re.compile(r"(?!runtime\.|internal_configuration\.|config\.|resources\.)")
#: Keys corosync's totemconfig.c writes after parsing (not from the file): this node's
#: place in the nodelist (3.x); the link's address and multicast address it derived
#: (3.x from the nodelist, 2.x for udpu from the interface and the nodelist).
RUNTIME_ADDED = re.compile(
    r"(nodelist\.local_node_pos|totem\.interface\.\d+\.(bindnetaddr|mcastaddr))\Z"
)
GENERATIONS = (None, "2.4.6", "2.3.5")


class Variant(NamedTuple):
    name: str
    #: lines put in totem {} (may be empty), then lines after it; {addr} is the host's
    totem: str
    after: str
    #: the standard nodelist {} of this one node (else the variant brings its own)
    nodelist: bool = True
    #: generations whose corosync refuses it (None: 3.1.7)
    refused: Tuple[Optional[str], ...] = ()
    #: the line 3.x names: (part, index): the index-th line of "totem" or "after"
    bad: Tuple[str, int] = ("after", 0)


LONG_TAIL = "totem.keyfile: " + OTHER_KEY
VARIANTS = [
    Variant("plain", "", ""),
    Variant("dotted-keyfile-at-top-level", "", f"totem.keyfile: {OTHER_KEY}\n"),
    Variant("section-name-with-colon", "", f"totem: {{\n    keyfile: {OTHER_KEY}\n}}\n"),
    Variant("keyfile-in-totem", f"    keyfile: {OTHER_KEY}\n", ""),
    Variant(
        "repeated-nodelist-restarts-the-index",
        "",
        "nodelist {\n    node {\n        ring0_addr: 10.250.255.97\n        nodeid: 97\n    }\n"
        "    node {\n        ring0_addr: {addr}\n        nodeid: {nodeid}\n    }\n}\n"
        "nodelist {\n    node {\n        ring0_addr: 10.250.255.98\n        nodeid: 98\n"
        "    }\n}\n",
        nodelist=False,
    ),
    Variant(
        "dotted-node-keys",
        "",
        # 3.x refuses a knet node without a u32 nodeid, which dotted keys cannot give
        # (they are text): name the node {} one's node 0 instead
        "nodelist.node.0.name: dotted\nnodelist.node.0.extra: value\n",
    ),
    Variant(
        "quotes-hashes-tabs-crlf",
        '\tcluster_name: "quoted # not a comment"\r\n  # indented comment\r\n',
        "\t# tab comment\na.b.quoted: 'single'   \t\n",
    ),
    Variant("top-level-values-unchecked", "", "totem.crypto_cipher: bogus\nquorum.two_node: x\n"),
    Variant("one-letter-names", "", "x {\n    y: z\n}\nxy {\n    z: w\n}\n"),
    Variant(
        "value-after-an-unknown-subsection",
        "    sub {\n        k: v\n    }\n    crypto_cipher: bogus\n",
        "",
        refused=(None, "2.4.6"),  # 2.3.5's one state left totem at sub's end
        bad=("totem", 3),
    ),
    Variant(
        "logger-subsys-quorum-types-and-empty-values",
        "    token: 3000\n    config_version: 7\n",
        "logging {\n    logger_subsys {\n        subsys: QUORUM\n        debug: off\n"
        "        debug: on\n    }\n}\nquorum {\n    expected_votes: 1\n    two_node: 0\n}\n"
        "a.b.empty:\na.b.colon: x: y\n",
    ),
    Variant(
        "subsection-inside-a-node-counts-as-a-node",
        "",
        "nodelist {\n    node {\n        ring0_addr: {addr}\n        nodeid: {nodeid}\n"
        "        sub {\n            k: v\n        }\n    }\n"
        "    node {\n        ring0_addr: 10.250.255.96\n        nodeid: 96\n    }\n}\n",
        nodelist=False,
    ),
    Variant("secauth-off-with-crypto", "    secauth: off\n", ""),
    Variant("line-of-510-bytes", "", "a.b.long: " + "x" * 500 + "\n"),
    Variant(
        "line-of-511-bytes",
        "",
        "a.b.long: " + "x" * (511 - len("a.b.long: ") - len(LONG_TAIL)) + LONG_TAIL + "\n",
        refused=(None,),
    ),
    Variant("no-section-key-or-brace", "", "this is no line\n", refused=(None,)),
    Variant("text-after-brace", "", "a.b {  stray\n    x: y\n}\n", refused=(None,)),
    Variant(
        "bad-cipher-inside-totem",
        "    crypto_cipher: bogus\n",
        "",
        refused=GENERATIONS,
        bad=("totem", 0),
    ),
    Variant(
        "bad-nodeid-inside-node",
        "",
        "nodelist {\n    node {\n        ring0_addr: {addr}\n        nodeid: one\n    }\n}\n",
        nodelist=False,
        refused=GENERATIONS,
        bad=("after", 3),
    ),
]


def _conf(variant: Variant, host: Host) -> Tuple[str, int]:
    """The variant in a conf one node of ``host``'s generation starts on, and the line
    3.x names if it refuses it."""
    two = host.corosync_version is not None
    transport = (
        "    transport: udpu\n    interface {\n        ringnumber: 0\n"
        f"        bindnetaddr: {host.network.subnet}.0\n        mcastport: 5405\n    }}\n"
        if two
        else "    transport: knet\n"
    )
    nodelist = (
        f"nodelist {{\n    node {{\n        ring0_addr: {host.address}\n"
        f"        nodeid: {host.nodeid}\n    }}\n}}\n"
        if variant.nodelist
        else ""
    )
    head = (
        "totem {\n    version: 2\n    cluster_name: difftest\n"
        "    crypto_cipher: aes256\n    crypto_hash: sha256\n" + transport
    )
    middle = "}\n" + nodelist
    after = variant.after.replace("{addr}", host.address).replace("{nodeid}", str(host.nodeid))
    text = (
        head
        + variant.totem
        + middle
        + after
        + "quorum {\n    provider: corosync_votequorum\n}\n"
        + f"logging {{\n    to_logfile: yes\n    logfile: {LOG_PATH}\n    to_stderr: yes\n}}\n"
        + ("qb {\n    ipc_type: socket\n}\n" if two else "")
    )
    part, index = variant.bad
    before = head if part == "totem" else head + variant.totem + middle
    return text, before.count("\n") + index + 1


@pytest.fixture(scope="module")
def hosts() -> Iterator[List[Host]]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    network = Network()
    try:
        found: List[Host] = []
        for version in GENERATIONS:
            if version is not None and corosync2.unavailable_reason(version):
                continue
            found += network.add_hosts(1, corosync=False, corosync_version=version)
        key = generate_key()
        for host in found:
            host.write_key(key)
            host.write_key(key, OTHER_KEY)
        yield found
    finally:
        network.close()


def _cmap(host: Host) -> Dict[str, CmapValue]:
    """corosync-cmapctl's keys, typed as it prints them (``name (type) = value``)."""
    out = host.run(["corosync-cmapctl"]).stdout
    result: Dict[str, CmapValue] = {}
    for line in out.splitlines():
        match = re.match(r"(\S+) \((\w+)\) = ?(.*)\Z", line)
        if match is None:
            continue
        name, kind, value = match.groups()
        if COMPARED.match(name):
            result[name] = CmapValue(kind, int(value) if kind[0] in "ui" else value)
    return result


def _load(host: Host, text: str) -> Tuple[Optional[Dict[str, CmapValue]], str]:
    """Start corosync on ``text``: its cmap (None when it refused) and what it said."""
    host.path(CONF).write_bytes(text.encode())
    log = host.path(LOG_PATH)
    if log.exists():
        log.write_bytes(b"")
    (host.root / "corosync.stderr").write_bytes(b"")
    process = host.start_or_refused()
    if process is None:
        return None, host.corosync_stderr() + host.log_text()
    try:
        return _cmap(host), ""
    finally:
        host.stop_corosync()


def _compared(cmap: Dict[str, CmapValue]) -> Dict[str, CmapValue]:
    return {k: v for k, v in cmap.items() if COMPARED.match(k) and not RUNTIME_ADDED.match(k)}


def _check(variant: Variant, host: Host) -> None:
    generation = host.corosync_version
    text, bad_line = _conf(variant, host)
    real, said = _load(host, text)
    label = f"{variant.name} on {generation or '3.1.7'}"
    try:
        ours = parse_conf(text.encode(), CONF, generation)
    except ConfParseError as exc:
        assert real is None, f"{label}: corosync took it, corokey refused: {exc.message}"
        assert generation in variant.refused, f"{label}: both refused it, unexpectedly"
        if generation is None:
            assert f"parser error: {CONF}:{bad_line}:" in said, f"{label}: {said[-600:]}"
            assert exc.line == bad_line, f"{label}: corokey names {exc.line}, not {bad_line}"
        else:
            # 2.x names no line: its message is the parser's or the value check's alone.
            assert exc.line is None
            assert exc.problem in said, f"{label}: corosync said {said[-600:]!r}"
        return
    assert real is not None, f"{label}: corokey took it, corosync refused: {said[-600:]}"
    assert generation not in variant.refused, f"{label}: both took it, unexpectedly"
    expected, got = _compared(real), _compared(ours.cmap)
    differ = {
        k: (got.get(k), expected.get(k))
        for k in set(got) | set(expected)
        if got.get(k) != expected.get(k)
    }
    assert not differ, f"{label}: (corokey, corosync) differ: {differ}"


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_corokey_reads_corosync_conf_as_corosync_does(variant: Variant, hosts: List[Host]) -> None:
    with ThreadPoolExecutor(len(hosts)) as pool:
        futures = [pool.submit(_check, variant, h) for h in hosts]
    failures = [str(f.exception()) for f in futures if f.exception() is not None]
    assert not failures, "\n".join(failures)
