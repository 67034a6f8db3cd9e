"""corokey: make and manage the shared authentication key of Corosync clusters.

The public API (imported lazily, so that command start-up stays fast)::

    generate_key(size=256) -> bytes          fresh key bytes from the kernel CSPRNG
    write_secret(path, data, ...) -> WriteResult
                                             atomic, never-torn key file write
    read_secret(path) -> SecretContent       safe read: no links, checks on the fd
    fingerprint(data) -> str                 "SHA256:..." of the bytes corosync uses
    effective_key_bytes(data) -> bytes       the first 4096 (or 128 for corosync 2)
    CorokeyError and its subclasses          every error carries message and hint
"""

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time

__version__ = "0.1.0"

_EXPORTS = {
    "generate_key": "corokey.key",
    "effective_key_bytes": "corokey.key",
    "fingerprint": "corokey.key",
    "fingerprint_hex": "corokey.key",
    "same_key": "corokey.key",
    "check_key_size": "corokey.key",
    "KEY_LEN_MIN": "corokey.key",
    "KEY_LEN_MAX": "corokey.key",
    "KEY_LEN_DEFAULT": "corokey.key",
    "write_secret": "corokey.secretfile",
    "read_secret": "corokey.secretfile",
    "WriteResult": "corokey.secretfile",
    "SecretContent": "corokey.secretfile",
    "FileFacts": "corokey.secretfile",
    "CorokeyError": "corokey.errors",
    "SecretFileError": "corokey.errors",
    "UnsafeTargetError": "corokey.errors",
    "KeySizeError": "corokey.errors",
    "RandomSourceError": "corokey.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from typing import Any

    from corokey.errors import (
        CorokeyError,
        KeySizeError,
        RandomSourceError,
        SecretFileError,
        UnsafeTargetError,
    )
    from corokey.key import (
        KEY_LEN_DEFAULT,
        KEY_LEN_MAX,
        KEY_LEN_MIN,
        check_key_size,
        effective_key_bytes,
        fingerprint,
        fingerprint_hex,
        generate_key,
        same_key,
    )
    from corokey.secretfile import FileFacts, SecretContent, WriteResult, read_secret, write_secret


def __getattr__(name: str) -> "Any":
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'corokey' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
