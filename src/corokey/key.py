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


def fingerprint_hex(data: bytes, corosync2: bool = False) -> str:
    """Hex SHA-256 of the effective bytes; equals ``sha256sum`` for keys <= 4096 bytes."""
    return fingerprint_digest(data, corosync2).hex()


def same_key(a: bytes, b: bytes, corosync2: bool = False) -> bool:
    """True when corosync treats both contents as the same key."""
    import hmac

    return hmac.compare_digest(effective_key_bytes(a, corosync2), effective_key_bytes(b, corosync2))
