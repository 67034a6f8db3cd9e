"""Every finding of the check engine: a file that triggers it and one that does not."""

from __future__ import annotations

import grp
import os
import pwd
import random
import subprocess
import sys
import zlib
from pathlib import Path
from typing import List

import pytest

from corokey.checks import (
    COMPRESSIBLE_RATIO,
    _deflate_cannot_shrink,
    check_content,
    check_key,
    host_fips_enabled,
)
from corokey.profiles import Profile, get_profile
from tests.cli_helpers import write_key

ROOT = os.geteuid() == 0


def as_this_user(profile: Profile) -> Profile:
    """A root-owned profile as owned by this user, when the tests cannot make root's files.

    Not root (a package build, say), every key the tests write is this user's, and each
    check would find the owner wrong; the owner checks have tests of their own, as root.
    """
    if ROOT or profile.owner != "root":
        return profile
    fields = {name: getattr(profile, name) for name in Profile.__slots__}
    fields["owner"] = pwd.getpwuid(os.geteuid()).pw_name
    fields["group"] = grp.getgrgid(os.getegid()).gr_name
    return Profile(**fields)


COROSYNC = as_this_user(get_profile("corosync"))
FENCE = as_this_user(get_profile("fence-xvm"))
_RNG = random.Random(1)


def refs(path: Path, fips: bool = False, profile: str = "corosync") -> List[str]:
    checked = as_this_user(get_profile(profile))
    return [f.reference for f in check_key(str(path), checked, fips).findings]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_key(tmp_path / "authkey", os.urandom(256))


def test_a_good_key_has_no_findings(good: Path) -> None:
    report = check_key(str(good), COROSYNC, fips=False)
    assert report.findings == () and report.status == "ok" and report.exit_code == 0
    assert report.size == 256 and report.fingerprint and report.fingerprint.startswith("SHA256:")


def test_missing(tmp_path: Path) -> None:
    assert refs(tmp_path / "nope") == ["missing"]


def test_symlink(tmp_path: Path, good: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(good)
    report = check_key(str(link), COROSYNC, False)
    assert [f.reference for f in report.findings] == ["symlink"]
    assert str(good) in report.findings[0].message
    assert "symlink" not in refs(good)


def test_not_regular(tmp_path: Path, good: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert refs(fifo) == ["not-regular"]
    assert refs(tmp_path) == ["not-regular"]
    assert "not-regular" not in refs(good)


def test_hard_links(tmp_path: Path, good: Path) -> None:
    assert "hard-links" not in refs(good)
    os.link(good, tmp_path / "second")
    assert "hard-links" in refs(good)


@pytest.mark.parametrize(
    ("mode", "reference", "severity"),
    [
        (0o644, "mode-readable", "error"),
        (0o440, "mode-readable", "error"),
        (0o404, "mode-readable", "error"),
        (0o420, "mode-writable", "error"),
        (0o600, "mode-accepted", "note"),
        (0o000, "mode-unusual", "warning"),
        (0o700, "mode-unusual", "warning"),
    ],
)
def test_modes(tmp_path: Path, mode: int, reference: str, severity: str) -> None:
    if mode == 0 and not ROOT:
        pytest.skip("a key of mode 000 is readable by root only")
    key = write_key(tmp_path / "authkey", os.urandom(256), mode)
    findings = check_key(str(key), COROSYNC, False).findings
    assert [(f.reference, f.severity) for f in findings] == [(reference, severity)]
    assert findings[0].fix == f"chmod 0400 {key}"


def test_fence_xvm_profile_wants_0600(tmp_path: Path) -> None:
    key = write_key(tmp_path / "fence_xvm.key", os.urandom(512), 0o600)
    assert refs(key, profile="fence-xvm") == []
    key.chmod(0o400)
    assert refs(key, profile="fence-xvm") == ["mode-accepted"]


@pytest.mark.skipif(not ROOT, reason="needs root to give the file away")
def test_owner_and_group(tmp_path: Path, good: Path) -> None:
    os.chown(good, 4242, 0)
    report = check_key(str(good), COROSYNC, False)
    assert [(f.reference, f.severity) for f in report.findings] == [("owner", "error")]
    assert report.findings[0].fix == f"chown root:root {good}"
    os.chown(good, 0, 4242)
    assert refs(good) == ["group"]
    os.chown(good, 0, 0)
    assert refs(good) == []


@pytest.mark.skipif(
    os.geteuid() != 0, reason="the key must be root's: another owner is a finding of its own"
)
def test_a_pacemaker_key_only_root_reads_is_right_where_hacluster_does_not_exist(
    good: Path,
) -> None:
    try:
        import pwd

        pwd.getpwnam("hacluster")
        pytest.skip("hacluster exists on this host")
    except KeyError:
        pass
    # What the pacemaker profile writes there (corokey.pacemaker_access.owner_for).
    assert refs(good, profile="pacemaker") == []


def test_too_short_quotes_corosync(tmp_path: Path) -> None:
    key = write_key(tmp_path / "authkey", os.urandom(127))
    report = check_key(str(key), COROSYNC, False)
    assert [f.reference for f in report.findings] == ["too-short"]
    assert (
        f'"Could only read 1016 bits of minimum 1024 bits from {key}."'
        in report.findings[0].message
    )
    assert report.exit_code == 2
    empty = write_key(tmp_path / "empty", b"")
    assert refs(empty) == ["too-short"]


def test_exactly_128_is_a_note(tmp_path: Path) -> None:
    key = write_key(tmp_path / "authkey", os.urandom(128))
    report = check_key(str(key), COROSYNC, False)
    assert [f.reference for f in report.findings] == ["minimum-size"]
    assert report.exit_code == 0
    assert refs(write_key(tmp_path / "k129", os.urandom(129))) == []


def test_over_4096_is_a_warning(tmp_path: Path) -> None:
    key = write_key(tmp_path / "authkey", os.urandom(4097))
    report = check_key(str(key), COROSYNC, False)
    assert [f.reference for f in report.findings] == ["too-long"]
    assert report.exit_code == 1
    assert refs(write_key(tmp_path / "k4096", os.urandom(4096))) == []


def test_fips_refuses_over_256(tmp_path: Path) -> None:
    key = write_key(tmp_path / "authkey", os.urandom(257))
    assert refs(key, fips=True) == ["fips-too-long"]
    assert refs(key, fips=False) == []
    assert refs(write_key(tmp_path / "k256", os.urandom(256)), fips=True) == []


@pytest.mark.parametrize(
    ("content", "reference"),
    [
        (b"\0" * 256, "one-byte"),
        (b"\xff" * 200, "one-byte"),
        (b"abc" * 100, "repeated-pattern"),
        (os.urandom(16) * 16, "repeated-pattern"),
        (os.urandom(128).hex().encode(), "text"),
        (__import__("base64").b64encode(os.urandom(192)) + b"\n", "text"),
        (b"correct horse battery staple, a passphrase\n" * 4, "text"),
        (bytes(_RNG.choice(b"\x00\x01\x02\x03") for _ in range(512)), "compressible"),
    ],
)
def test_low_entropy_and_text(tmp_path: Path, content: bytes, reference: str) -> None:
    key = write_key(tmp_path / "authkey", content)
    assert refs(key) == [reference]


def test_random_keys_of_every_size_are_clean() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        size = rng.randint(129, 4096)
        data = os.urandom(size)
        findings = check_content(data, size, COROSYNC, False, "k")
        assert findings == [], (size, findings)
    for _ in range(2000):
        assert [f.reference for f in check_content(os.urandom(128), 128, COROSYNC, False)] == [
            "minimum-size"
        ]


def _key_compressing_to(size: int, compressed: int) -> bytes:
    """A key of ``size`` bytes (random, then zeros) that zlib level 9 packs into exactly
    ``compressed`` bytes; searched, so it holds for whichever zlib is installed."""
    for seed in range(2000):
        noise = random.Random(seed).randbytes(size)
        for zeros in range(size - compressed - 40, size - compressed + 40):
            data = noise[: size - zeros] + bytes(zeros)
            if len(zlib.compress(data, 9)) == compressed:
                return data
    raise AssertionError(f"no {size}-byte key compresses to {compressed} bytes")


def test_compressible_is_decided_exactly_at_the_threshold() -> None:
    size = 500  # COMPRESSIBLE_RATIO * 500 is a whole number of bytes: the boundary is sharp
    boundary = int(size * COMPRESSIBLE_RATIO)
    assert boundary == size * COMPRESSIBLE_RATIO
    below = _key_compressing_to(size, boundary - 1)
    at = _key_compressing_to(size, boundary)
    assert [f.reference for f in check_content(below, size, COROSYNC, False)] == ["compressible"]
    assert check_content(at, size, COROSYNC, False) == []


def test_host_fips_flag(tmp_path: Path) -> None:
    flag = tmp_path / "fips_enabled"
    flag.write_text("1\n")
    assert host_fips_enabled(str(flag))
    flag.write_text("0\n")
    assert not host_fips_enabled(str(flag))
    assert not host_fips_enabled(str(tmp_path / "absent"))


def _de_bruijn_3(alphabet: int) -> bytes:
    """A sequence over ``alphabet`` byte values in which no 3-byte run repeats."""
    sequence: List[int] = []
    word = [0] * 4

    def extend(t: int, p: int) -> None:
        if t > 3:
            if 3 % p == 0:
                sequence.extend(word[1 : p + 1])
            return
        word[t] = word[t - p]
        extend(t + 1, p)
        for value in range(word[t - p] + 1, alphabet):
            word[t] = value
            extend(t + 1, t)

    extend(1, 1)
    return bytes(sequence)


def _proven_ratio(data: bytes) -> float:
    """The largest ratio below which _deflate_cannot_shrink claims zlib cannot go."""
    low, high = 0.0, 1.0
    if not _deflate_cannot_shrink(data, low):
        return -1.0
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if _deflate_cannot_shrink(data, middle) else (low, middle)
    return low


@pytest.mark.parametrize("alphabet", [3, 4, 6, 8, 11, 16, 20, 25])
def test_deflate_bound_holds_tightly_on_sequences_without_repeats(alphabet: int) -> None:
    # Low-entropy data with no repeated 3-byte run: zlib can only Huffman-code it,
    # which is exactly the case the shortcut reasons about; the claimed bound must
    # never exceed what zlib really achieves.
    sequence = _de_bruijn_3(alphabet)
    assert len({sequence[i : i + 3] for i in range(len(sequence) - 2)}) == len(sequence) - 2
    rng = random.Random(alphabet)
    for _ in range(20):
        length = rng.randint(3, len(sequence))
        start = rng.randint(0, len(sequence) - length)
        values = rng.sample(range(256), alphabet)
        data = bytes(values[b] for b in sequence[start : start + length])
        ratio = _proven_ratio(data)
        assert ratio >= 0
        assert len(zlib.compress(data, 9)) >= ratio * len(data), (alphabet, length, ratio)


def test_deflate_bound_is_never_claimed_for_repeats_or_big_inputs() -> None:
    random_key = os.urandom(256)
    assert _deflate_cannot_shrink(random_key, COMPRESSIBLE_RATIO)
    assert not _deflate_cannot_shrink(random_key[:100] + random_key[:3], 0.0)
    assert not _deflate_cannot_shrink(os.urandom(16383), 0.0)
    assert not _deflate_cannot_shrink(b"ab", 0.0)


def test_checking_a_random_key_does_not_load_zlib(tmp_path: Path) -> None:
    # zlib is loaded only when the proof is inconclusive: start-up time of check.
    key = write_key(tmp_path / "authkey", os.urandom(256))
    program = (
        "import sys\n"
        "from corokey.checks import check_key\n"
        "from corokey.profiles import get_profile\n"
        f"check_key({str(key)!r}, get_profile('corosync'), False)\n"
        "print('zlib' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
