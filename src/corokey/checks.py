"""The findings engine behind ``corokey check`` (and doctor, verify, rotate).

API:

* :func:`check_key` reads a key file safely and returns a :class:`CheckReport`.
* :func:`check_facts` and :func:`check_content` check what someone else read
  (a remote node's ``stat`` output, bytes that arrived on stdin), so the same
  rules serve local and remote keys.
* :func:`host_fips_enabled` tells whether this host runs in FIPS mode.

Every :class:`Finding` has a severity (``error``: corosync will fail or the
secret is exposed; ``warning``: works but is wrong; ``note``: worth knowing), a
stable reference, a message naming the path and value, and the command that
fixes it.  A report's exit code is 0 when clean (notes only), 1 with warnings,
2 with errors.
"""

from corokey.exitcodes import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from corokey.findings import ERROR, NOTE, WARNING, Finding
from corokey.key import (
    COROSYNC2_KEY_LEN,
    FIPS_KEY_LEN_MAX,
    KEY_LEN_MAX,
    KEY_LEN_MIN,
    KEY_LEN_MIN_NEEDS,
    fingerprint,
    fingerprint_whole,
)
from corokey.profiles import Profile
from corokey.record import Record
from corokey.secretfile import FileFacts, lstat_facts, read_secret

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple, Type

    from corokey.errors import ProfileOwnerError

_RANK = {NOTE: 0, WARNING: 1, ERROR: 2}
FIPS_FLAG = "/proc/sys/crypto/fips_enabled"
#: A key whose zlib-compressed form is smaller than this share of it has structure.
COMPRESSIBLE_RATIO = 0.8
#: zlib's deflate ends a block after this many symbols (lit_bufsize - 1 in deflate.c).
_ZLIB_SYMBOLS_PER_BLOCK = 16383
#: Below this size the key is refused for its size alone; its content says nothing more.
MIN_SIZE_FOR_CONTENT_CHECKS = 16
#: Repeated patterns up to this period are "a short repeated pattern".
MAX_PATTERN_PERIOD = 32

_HEX = frozenset(b"0123456789abcdefABCDEF\r\n")
_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_\r\n")
_TEXT = frozenset(range(0x20, 0x7F)) | frozenset(b"\t\r\n")


class CheckReport(Record):
    """All findings about one key, with its size and fingerprint when it could be read."""

    __slots__ = ("findings", "fingerprint", "path", "profile", "size")
    path: str
    profile: str
    size: "Optional[int]"
    fingerprint: "Optional[str]"
    findings: "Tuple[Finding, ...]"

    def __init__(
        self,
        path: str,
        profile: str,
        size: "Optional[int]" = None,
        fingerprint: "Optional[str]" = None,
        findings: "Tuple[Finding, ...]" = (),
    ) -> None:
        self._set(path=path, profile=profile, size=size, fingerprint=fingerprint, findings=findings)

    @property
    def status(self) -> str:
        """``ok``, ``warning`` or ``error``: the worst finding (notes count as ok)."""
        worst = max((_RANK[f.severity] for f in self.findings), default=0)
        return {0: "ok", 1: WARNING, 2: ERROR}[worst]

    @property
    def exit_code(self) -> int:
        return {"ok": EXIT_OK, WARNING: EXIT_FINDINGS, ERROR: EXIT_ERROR}[self.status]

    def to_json(self) -> "Dict[str, Any]":
        return {
            "path": self.path,
            "profile": self.profile,
            "status": self.status,
            "size": self.size,
            "fingerprint": self.fingerprint,
            "findings": [f.to_json() for f in self.findings],
        }


def host_fips_enabled(flag_path: str = FIPS_FLAG) -> bool:
    """True when the kernel runs in FIPS mode (NSS then refuses keys over 256 bytes)."""
    try:
        with open(flag_path, encoding="ascii") as handle:
            return handle.read().strip() == "1"
    except OSError:
        return False


def check_key(
    path: str, profile: "Profile", fips: "Optional[bool]" = None, corosync2: bool = False
) -> "CheckReport":
    """Read ``path`` safely and check it against ``profile``.

    ``fips``: ``None`` asks this host; ``True``/``False`` forces the answer.
    ``corosync2``: judge a corosync key by 2.x's rules (exactly the first 128 bytes).
    """
    if fips is None:
        fips = host_fips_enabled()
    facts = lstat_facts(path)
    if facts.kind == "missing":
        finding = Finding(
            ERROR,
            "missing",
            f"{path} does not exist; corosync will refuse to start with crypto enabled",
            f"corokey generate {_q(path)}",
        )
        return CheckReport(path, profile.name, findings=(finding,))
    if facts.kind != "regular":
        return CheckReport(path, profile.name, findings=tuple(check_facts(facts, profile)))
    content = read_secret(path)
    findings = check_facts(content.facts, profile)
    if profile.corosync and any(f.reference in ("mode-readable", "group") for f in findings):
        # Pacemaker 2.x may read corosync's key too (corokey.pacemaker): then its group
        # needs to read it. Looked at only here: a 0400 key costs nothing more.
        from corokey.pacemaker import adjust_findings, local_reason

        findings = adjust_findings(findings, local_reason(path), path, content.facts.mode)
    findings += check_content(content.data, content.facts.size, profile, fips, path, corosync2)
    return CheckReport(
        path,
        profile.name,
        content.facts.size,
        fingerprint(content.data, corosync2)
        if profile.corosync
        else fingerprint_whole(content.data),
        tuple(findings),
    )


def check_facts(facts: "FileFacts", profile: "Profile") -> "List[Finding]":
    """Findings about the file itself: type, links, mode, owner."""
    path = facts.path
    if facts.kind == "symlink":
        return [
            Finding(
                ERROR,
                "symlink",
                f"{path} is a symbolic link to {facts.link_target}; whoever controls the "
                "link controls the key, and corokey never writes through it",
                f"rm {_q(path)} && corokey install {_q(facts.link_target or '')} {_q(path)}",
            )
        ]
    if facts.kind != "regular":
        return [
            Finding(
                ERROR,
                "not-regular",
                f"{path} is a {facts.kind.replace('-', ' ')}, not a regular file",
                f"move {_q(path)} away, then: corokey generate {_q(path)}",
            )
        ]
    findings: List[Finding] = []
    if facts.nlink > 1:
        findings.append(
            Finding(
                ERROR,
                "hard-links",
                f"{path} has {facts.nlink} hard links; the key can be read or replaced "
                "through another name",
                f"corokey install {_q(path)} {_q(path)} (writes a fresh single-link copy)",
            )
        )
    if profile.name == "pacemaker":
        from corokey.pacemaker_access import local_access_findings

        return findings + local_access_findings(path, facts.mode, facts.uid, facts.gid)
    findings += mode_findings(facts, profile)
    findings += _owner_findings(facts, profile)
    return findings


def mode_findings(facts: "FileFacts", profile: "Profile") -> "List[Finding]":
    path, mode = facts.path, facts.mode
    fix = f"chmod {profile.mode:04o} {_q(path)}"
    if mode & 0o044:
        who = (
            "group and others" if mode & 0o044 == 0o044 else ("group" if mode & 0o040 else "others")
        )
        return [Finding(ERROR, "mode-readable", f"{path} is {mode:04o} (readable by {who})", fix)]
    if mode & 0o022:
        return [Finding(ERROR, "mode-writable", f"{path} is {mode:04o} (writable by others)", fix)]
    if mode == profile.mode:
        return []
    if mode in (0o400, 0o600):
        return [
            Finding(
                NOTE,
                "mode-accepted",
                f"{path} is {mode:04o}; the {profile.name} profile uses {profile.mode:04o}",
                fix,
            )
        ]
    return [
        Finding(WARNING, "mode-unusual", f"{path} is {mode:04o}, expected {profile.mode:04o}", fix)
    ]


def _profile_owner_error() -> "Type[ProfileOwnerError]":
    # Called by the except clause only when an exception arrives: corokey.errors
    # stays off the path of a clean check (start-up time).
    from corokey.errors import ProfileOwnerError

    return ProfileOwnerError


def _owner_findings(facts: "FileFacts", profile: "Profile") -> "List[Finding]":
    path = facts.path
    try:
        uid, gid = profile.owner_ids()
    except _profile_owner_error() as exc:
        return [Finding(NOTE, "owner-unknown", f"owner of {path} not checked: {exc.message}")]
    fix = f"chown {profile.owner_label()} {_q(path)}"
    if facts.uid != uid:
        return [
            Finding(
                ERROR,
                "owner",
                f"{path} is owned by uid {facts.uid}, not {profile.owner} (uid {uid}); "
                "that user can read or replace the key",
                fix,
            )
        ]
    if facts.gid != gid:
        return [
            Finding(
                WARNING,
                "group",
                f"{path} has group gid {facts.gid}, not {profile.group} (gid {gid})",
                fix,
            )
        ]
    return []


def check_content(
    data: bytes,
    size: int,
    profile: "Profile",
    fips: bool,
    path: str = "-",
    corosync2: bool = False,
) -> "List[Finding]":
    """Findings about the key bytes: size limits, FIPS, text encodings, low entropy.

    ``data`` may be only the first bytes of the key (at least 4097 when the key
    is longer); ``size`` is the whole size.  With ``corosync2`` (and a corosync
    profile) 2.x's rules apply and only the 128 bytes it uses are judged.
    """
    if corosync2 and profile.corosync:
        findings = size_findings_2x(size, path)
        used = data[:COROSYNC2_KEY_LEN]
    else:
        findings = size_findings(size, profile, fips, path)
        used = data[:KEY_LEN_MAX]
    if size >= MIN_SIZE_FOR_CONTENT_CHECKS:
        findings += _entropy_findings(used, profile, path)
    return findings


def content_errors(data: bytes, profile: "Profile", label: str) -> "List[Finding]":
    """The errors of :func:`check_content` for a whole key about to be written somewhere
    (install, push, rotate refuse such a key), with this host's FIPS mode."""
    findings = check_content(data, len(data), profile, host_fips_enabled(), label)
    return [f for f in findings if f.severity == ERROR]


def size_findings(size: int, profile: "Profile", fips: bool, path: str) -> "List[Finding]":
    regenerate = f"corokey generate --force --profile {profile.name} {_q(path)}, then corokey push"
    if size < KEY_LEN_MIN:
        if profile.corosync:
            message = (
                f"{path} has {size} bytes; corosync 3 refuses to start: "
                f'"Could only read {size * 8} bits of minimum {KEY_LEN_MIN * 8} bits from {path}."'
            )
        else:
            message = f"{path} has {size} bytes, fewer than the {KEY_LEN_MIN} bytes a key needs"
        return [Finding(ERROR, "too-short", message, regenerate)]
    findings: List[Finding] = []
    if size > KEY_LEN_MAX:
        findings.append(
            Finding(
                WARNING,
                "too-long",
                f"{path} has {size} bytes; corosync silently ignores all past the first "
                f"{KEY_LEN_MAX}",
                regenerate,
            )
        )
    if profile.corosync and fips and size > FIPS_KEY_LEN_MAX:
        findings.append(
            Finding(
                ERROR,
                "fips-too-long",
                f"{path} has {size} bytes; in FIPS mode NSS refuses keys over "
                f"{FIPS_KEY_LEN_MAX} bytes and corosync cannot start",
                f"corokey generate --force --size {FIPS_KEY_LEN_MAX} {_q(path)}, then corokey push",
            )
        )
    if profile.corosync and size == KEY_LEN_MIN:
        findings.append(
            Finding(
                NOTE,
                "minimum-size",
                f"{path} has exactly {KEY_LEN_MIN} bytes, which needs {KEY_LEN_MIN_NEEDS}; "
                f"corosync 2.x uses only the first {COROSYNC2_KEY_LEN} bytes of any key",
            )
        )
    return findings


def size_findings_2x(size: int, path: str) -> "List[Finding]":
    """corosync 2.x (exec/totemconfig.c read_keyfile) reads exactly COROSYNC2_KEY_LEN bytes."""
    if size < COROSYNC2_KEY_LEN:
        return [
            Finding(
                ERROR,
                "too-short",
                f"{path} has {size} bytes; corosync 2.x refuses to start: "
                f'"Could only read {size * 8} bits of {COROSYNC2_KEY_LEN * 8} bits from {path}."',
                f"corokey generate --force {_q(path)}, then copy it to every node",
            )
        ]
    if size > COROSYNC2_KEY_LEN:
        return [
            Finding(
                NOTE,
                "corosync2-prefix",
                f"{path} has {size} bytes; corosync 2.x uses only the first "
                f"{COROSYNC2_KEY_LEN}: keys that agree there are the same key to it",
            )
        ]
    return []


def _entropy_findings(data: bytes, profile: "Profile", path: str) -> "List[Finding]":
    regenerate = f"corokey generate --force --profile {profile.name} {_q(path)}, then corokey push"
    distinct = set(data)
    if len(distinct) == 1:
        return [
            Finding(
                ERROR,
                "one-byte",
                f"{path} is {len(data)} copies of one byte value; it is no secret",
                regenerate,
            )
        ]
    period = _pattern_period(data)
    if period is not None:
        return [
            Finding(
                ERROR,
                "repeated-pattern",
                f"{path} repeats a {period}-byte pattern; it is guessable",
                regenerate,
            )
        ]
    encoding = _text_encoding(distinct)
    if encoding is not None:
        return [
            Finding(
                WARNING,
                "text",
                f"{path} looks like {encoding}, not raw random bytes; corosync uses the "
                "characters as they are, so the key holds far less entropy than its size "
                "(was it written with 'openssl rand -base64' or echo?)",
                regenerate,
            )
        ]
    if _deflate_cannot_shrink(data, COMPRESSIBLE_RATIO):
        return []
    import zlib  # only when the cheap proof above is inconclusive: loading it costs start-up

    compressed = len(zlib.compress(data, 9))
    if compressed < len(data) * COMPRESSIBLE_RATIO:
        return [
            Finding(
                WARNING,
                "compressible",
                f"{path} compresses to {compressed * 100 // len(data)}% of its size; "
                "random keys do not compress, so this one has little entropy",
                regenerate,
            )
        ]
    return []


def _deflate_cannot_shrink(data: bytes, ratio: float) -> bool:
    """True when zlib level 9 provably cannot compress ``data`` below ``ratio`` of its size.

    A proof, not an estimate, so the "compressible" finding stays zlib's verdict:
    with no 3-byte sequence occurring twice, deflate finds no match (its
    shortest is 3 bytes) and codes every byte as a literal; under 16383 symbols
    zlib emits one block, whose Huffman code cannot beat the bytes' empirical
    entropy, sum(c * log2(n / c)) bits.  Each log2 is rounded down to 1/8 bit
    with integers (the math module is not built in everywhere and costs start-up).
    """
    size = len(data)
    if size >= _ZLIB_SYMBOLS_PER_BLOCK or size < 3:
        return False
    if len({data[i : i + 3] for i in range(size - 2)}) != size - 2:
        return False
    eighths = 0
    for value in set(data):
        count = data.count(value)
        eighths += count * ((size**8 // count**8).bit_length() - 1)
    return eighths / 64 >= size * ratio


def _pattern_period(data: bytes) -> "Optional[int]":
    for period in range(2, min(MAX_PATTERN_PERIOD, len(data) // 2) + 1):
        unit = data[:period]
        repeated = unit * (len(data) // period + 1)
        if repeated[: len(data)] == data:
            return period
    return None


def _text_encoding(distinct: "set[int]") -> "Optional[str]":
    if distinct <= _HEX:
        return "hex text"
    if distinct <= _BASE64:
        return "base64 text"
    if distinct <= _TEXT:
        return "printable text"
    return None


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./-_")


def _q(path: str) -> str:
    """Quote for a shell like shlex.quote (shlex imports re: start-up time)."""
    if path and all(char in _SAFE for char in path):
        return path
    return "'" + path.replace("'", "'\"'\"'") + "'"
