"""Key material: corosync's limits, generation, effective bytes, fingerprints.

The numbers below come from corosync's sources; each cites where.
"""

import os

# include/corosync/totem/totem.h: TOTEM_PRIVATE_KEY_LEN_MIN / _MAX (corosync 3.x).
# corosync 3 refuses a key file shorter than MIN ("Could only read N bits of
# minimum 1024 bits from FILE." in exec/totemconfig.c) and silently ignores
# everything past MAX.
KEY_LEN_MIN = 128
KEY_LEN_MAX = 4096
# tools/corosync-keygen.c: DEFAULT_KEYFILE_LEN.
KEY_LEN_DEFAULT = 256
# corosync 2.x (exec/totemconfig.c, totem.h TOTEM_PRIVATE_KEY_LEN) reads exactly
# the first 128 bytes of the key file.
COROSYNC2_KEY_LEN = 128
# NSS in FIPS mode refuses HMAC keys longer than this (knet crypto_nss.c).
FIPS_KEY_LEN_MAX = 256
# A key of exactly KEY_LEN_MIN needs corosync >= 3.0.2 with knet >= 1.9
# (older knet required more than 128 bytes).
KEY_LEN_MIN_NEEDS = "corosync >= 3.0.2 with knet >= 1.9"
# tools/corosync-keygen.c: DEFAULT_KEYFILE (COROSYSCONFDIR "/authkey").
DEFAULT_KEY_PATH = "/etc/corosync/authkey"

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Callable, Iterator, Optional

# corokey.errors is imported where an error is raised: corosync-keygen's
# success path does not need it, and every module counts at start-up.

_GETRANDOM_CHUNK = 256  # getrandom(2) never returns short for requests this small


def check_key_size(
    size: int,
    minimum: int = KEY_LEN_MIN,
    maximum: int = KEY_LEN_MAX,
    default: int = KEY_LEN_DEFAULT,
    what: str = "corosync",
) -> int:
    """The one size rule: ``size`` if it lies in ``[minimum, maximum]``, else KeySizeError.

    The defaults are what corosync 3 accepts; :func:`corokey.profiles.key_size`
    applies a profile's own range and default size.
    """
    if not minimum <= size <= maximum:
        from corokey.errors import KeySizeError

        fips = " and fits FIPS mode" if default <= FIPS_KEY_LEN_MAX else ""
        raise KeySizeError(
            f"a {what} key of {size} bytes is not supported (supported <{minimum},{maximum}>)",
            hint=f"choose a size from {minimum} to {maximum} bytes; {default} is the default{fips}",
            reference="key-size",
        )
    return size


def generate_key(size: int = KEY_LEN_DEFAULT) -> bytes:
    """Return ``size`` fresh random bytes from the kernel CSPRNG.

    Uses getrandom(2), which never blocks once the kernel's pool is
    initialised (early boot only) and never asks for keyboard input.
    """
    check_key_size(size)
    parts = []
    remaining = size
    while remaining:
        chunk = os.getrandom(min(remaining, _GETRANDOM_CHUNK))
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def read_random_source(
    path: str, size: int, on_opened: "Optional[Callable[[], None]]" = None
) -> bytes:
    """Read exactly ``size`` bytes from ``path`` as corosync-keygen -r does.

    Short reads are retried; the end of the file before ``size`` bytes is an
    error (``Unexpected end of PATH``), never a short key.  ``on_opened`` runs
    once the source is open, before the first read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        from corokey.errors import RandomSourceError

        raise RandomSourceError(
            f"Failed to open random source: {exc.strerror}",
            hint=f"check that {path} exists and is readable, or drop -r to use the kernel CSPRNG",
            reference="random-open",
        ) from None
    try:
        if on_opened is not None:
            on_opened()
        return b"".join(_read_exactly(fd, path, size))
    finally:
        os.close(fd)


def _read_exactly(fd: int, path: str, size: int) -> "Iterator[bytes]":
    remaining = size
    while remaining:
        try:
            chunk = os.read(fd, remaining)
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
        except OSError as exc:
            from corokey.errors import RandomSourceError

            raise RandomSourceError(
                f"Could not read {path}: {exc.strerror}",
                hint="use another random source, or drop -r to use the kernel CSPRNG",
                reference="random-read",
            ) from None
        if not chunk:
            from corokey.errors import RandomSourceError

            raise RandomSourceError(
                f"Unexpected end of {path}",
                hint=f"{path} holds fewer than {size} bytes; use a larger source or a smaller -s",
                reference="random-eof",
            )
        remaining -= len(chunk)
        yield chunk


def effective_key_bytes(data: bytes, corosync2: bool = False) -> bytes:
    """The bytes corosync actually uses from a key file's content.

    corosync 3 uses the first 4096 bytes; corosync 2 the first 128.
    """
    return data[: COROSYNC2_KEY_LEN if corosync2 else KEY_LEN_MAX]


def fingerprint_digest(data: bytes, corosync2: bool = False) -> bytes:
    """SHA-256 of the effective key bytes."""
    return _sha256(effective_key_bytes(data, corosync2))


def _sha256(data: bytes) -> bytes:
    # The builtin module loads in microseconds; hashlib loads OpenSSL (~2 ms of start-up).
    try:
        from _sha256 import sha256  # type: ignore[import-not-found]  # CPython <= 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found]  # CPython >= 3.12
        except ImportError:
            from hashlib import sha256
    digest: bytes = sha256(data).digest()
    return digest


def fingerprint(data: bytes, corosync2: bool = False) -> str:
    """ssh-keygen style fingerprint: ``SHA256:`` + base64 without padding."""
    return "SHA256:" + _base64_unpadded(fingerprint_digest(data, corosync2))


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _base64_unpadded(data: bytes) -> str:
    # 32 bytes in pure Python: cheaper than loading binascii on the start-up path.
    number = int.from_bytes(data, "big") << (-len(data) * 8 % 6)
    length = (len(data) * 8 + 5) // 6
    return "".join(_B64[(number >> (6 * (length - 1 - i))) & 63] for i in range(length))


def fingerprint_whole(data: bytes) -> str:
    """The fingerprint of every byte: for secrets read whole (Pacemaker reads its key to
    the end of the file, lib/lrmd/lrmd_client.c read_gnutls_key)."""
    return "SHA256:" + _base64_unpadded(_sha256(data))


#: The "effective bytes" that ask a node for the fingerprint of the whole file.
WHOLE_FILE = 1 << 40


def fingerprint_hex(data: bytes, corosync2: bool = False) -> str:
    """Hex SHA-256 of the effective bytes; equals ``sha256sum`` for keys <= 4096 bytes."""
    return fingerprint_digest(data, corosync2).hex()


def same_key(a: bytes, b: bytes, corosync2: bool = False) -> bool:
    """True when corosync treats both contents as the same key."""
    import hmac

    return hmac.compare_digest(effective_key_bytes(a, corosync2), effective_key_bytes(b, corosync2))


# ----------------------------------------------------------------------------- generation
# Which corosync generation (2.x or 3.x) this node runs, found cheaply.
#
# Cheap enough for the start-up path of corosync-keygen: no process is run (``corosync -v``
# costs more than the whole of our start-up) and no package database is read.  Instead the
# start of the daemon's ELF file is read once: its dynamic section names the libraries it
# links, and the two generations differ there for good reasons of architecture, not of
# packaging: 2.x keeps totem in ``libtotem_pg.so`` (exec/Makefile.am builds corosync
# against it), 3.x compiles totem in and links ``libknet.so`` for transport.
#
# ``COROKEY_COROSYNC`` overrides the detection, for tests and for admins preparing keys for
# another node: ``2`` or ``3``, or a version such as ``2.4.6``.


ENV_OVERRIDE = "COROKEY_COROSYNC"
COROSYNC_BINARY = "/usr/sbin/corosync"
# The dynamic string table sits in the first pages of an ELF file (after the headers,
# .interp, .gnu.hash and .dynsym); 64 KiB holds it with room to spare in both generations.
_HEAD_BYTES = 64 * 1024
_MARK_2X = b"libtotem_pg.so"
_MARK_3X = b"libknet.so"


class Generation:
    """A corosync generation: ``major`` 2 or 3; ``version`` when known to the minor."""

    __slots__ = ("major", "source", "version")

    def __init__(self, major: int, source: str, version: "Optional[str]" = None) -> None:
        self.major = major
        self.source = source  # "COROKEY_COROSYNC", the binary's path, or "default"
        self.version = version

    @property
    def corosync2(self) -> bool:
        return self.major == 2

    def at_least(self, major: int, minor: int) -> bool:
        """Whether the version, where known, is ``major.minor`` or later."""
        if self.version is None:
            return False
        parts = self.version.split(".")
        return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0) >= (major, minor)

    def __repr__(self) -> str:
        return f"Generation({self.major}, {self.source!r}, {self.version!r})"


def parse_override(value: str) -> "Generation":
    """``2``, ``3``, ``2.x`` or a dotted version; anything else raises UsageError."""
    text = value.strip()
    major, dot, rest = text.partition(".")
    ok = major in ("2", "3") and (
        not dot or rest == "x" or all(part.isdigit() for part in rest.split("."))
    )
    if not ok:
        from corokey.errors import UsageError

        raise UsageError(
            f"{ENV_OVERRIDE}={value!r} is not a corosync generation",
            hint=f"set {ENV_OVERRIDE} to 2 or 3 (or a version such as 2.3.5), or unset it "
            f"to detect it from {COROSYNC_BINARY}",
        )
    return Generation(int(major), ENV_OVERRIDE, text if rest not in ("", "x") else None)


def detect_binary(path: str = COROSYNC_BINARY) -> "Optional[int]":
    """2 or 3 from what the daemon at ``path`` links, or None (missing, unreadable, unknown)."""
    try:
        with open(path, "rb", buffering=0) as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return None
    if not head.startswith(b"\x7fELF"):
        return None
    if _MARK_2X in head:
        return 2
    if _MARK_3X in head:
        return 3
    return None


def local_is_corosync2() -> bool:
    """Whether this node's corosync (or COROKEY_COROSYNC) is 2.x."""
    return local_generation().corosync2


def local_generation(binary: str = COROSYNC_BINARY) -> "Generation":
    """This node's corosync generation: the override, else the binary, else 3.x."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        return parse_override(override)
    major = detect_binary(binary)
    if major is None:
        return Generation(3, "default")
    return Generation(major, binary)
