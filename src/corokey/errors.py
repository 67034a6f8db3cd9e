"""One exception hierarchy for the whole library.

Every error carries a short reference (stable, greppable, documented), a
one-line message naming the path or value at fault, and a hint saying what to
do next.  The library raises these and never prints or exits; exactly one place
per command line tool (``corokey.cli.common.run``) turns them into a message and an
exit status.
"""

from corokey.exitcodes import EXIT_ERROR

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Optional


class CorokeyError(Exception):
    """Base class of every error corokey reports to a user."""

    #: Short stable reference, e.g. ``"key-size"``; docs/errors.md lists every one.
    reference: str = "error"
    #: Exit status the ``corokey`` command uses for this error.
    exit_code: int = EXIT_ERROR

    def __init__(
        self, message: str, hint: "Optional[str]" = None, reference: "Optional[str]" = None
    ):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if reference is not None:
            self.reference = reference

    def __str__(self) -> str:
        return self.message


class UsageError(CorokeyError):
    """The command line or an argument value is wrong."""

    reference = "usage"


class KeySizeError(CorokeyError):
    """A key size is outside what corosync accepts."""

    reference = "key-size"


class RandomSourceError(CorokeyError):
    """The random source could not be opened or read, or ended early."""

    reference = "random-source"


class SecretFileError(CorokeyError):
    """A secret file could not be read or written safely.

    ``stage`` says which step failed, so that ``corosync-keygen`` can map it to
    the exit status the C tool uses for that step: ``"create"``, ``"mode"``,
    ``"write"`` or ``"commit"`` (for reading: ``"read"``).
    """

    reference = "secret-file"

    def __init__(
        self,
        message: str,
        hint: "Optional[str]" = None,
        reference: "Optional[str]" = None,
        *,
        stage: str = "create",
        path: "Optional[str]" = None,
        errno: "Optional[int]" = None,
        strerror: "Optional[str]" = None,
    ):
        super().__init__(message, hint, reference)
        self.stage = stage
        self.path = path
        self.errno = errno
        self.strerror = strerror


class UnsafeTargetError(SecretFileError):
    """The target path is a symlink, a directory or another non-regular file."""

    reference = "unsafe-target"


class ProfileOwnerError(CorokeyError):
    """The profile's owner or group does not exist on this host."""

    reference = "unknown-owner"

    def __init__(self, profile: str, kind: str, name: str) -> None:
        # The profile's name, not the Profile: errors depends on nothing of corokey but
        # exitcodes (profiles -> key -> errors would otherwise be a circle).
        package = "pacemaker" if profile == "pacemaker" else None
        hint = (
            f"install {package} first (it creates {name}), or pass --profile for another secret"
            if package
            else f"create the {kind} {name} first"
        )
        super().__init__(
            f"the {profile} profile wants {kind} {name}, which does not exist on this host",
            hint=hint,
        )


class KeyExistsError(CorokeyError):
    """A key exists where a new one would go, and replacing was not asked for."""

    reference = "key-exists"
