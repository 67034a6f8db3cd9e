"""The only module that reads or writes secret files.

Writing follows the pattern of systemd's credential writer: a temp file in the
target directory, created exclusively, without following links and with its
final mode from the first instant; written, fsynced, renamed into place; the
directory fsynced; the temp file removed on every error path.  Whatever fails,
the target holds the old key or the new key, never a mix.

Reading opens without following links and takes every decision on the open
descriptor (``fstat``), never on the path a second time.

Nothing here prints, exits, or puts key bytes into an exception.
"""

import os
import stat
import time

from corokey.record import Record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Callable, Iterator, Optional, Tuple

    from corokey.errors import SecretFileError, UnsafeTargetError

    Owner = Tuple[int, int]

#: Temp files are named ``.NAME.corokey-PID-RANDOM.tmp`` next to the target.
TEMP_INFIX = ".corokey-"
TEMP_SUFFIX = ".tmp"
#: A temp file older than this is stale even if its PID is alive again (reused).
STALE_TEMP_SECONDS = 600
#: How much of a key file we read at most: corosync 3 never uses more (key.KEY_LEN_MAX),
#: plus one byte so callers can tell "exactly 4096" from "longer".
DEFAULT_READ_LIMIT = 4096 + 1


class WriteResult(Record):
    """What :func:`write_secret` did."""

    __slots__ = ("old_path", "path", "replaced")
    path: str
    replaced: bool
    old_path: "Optional[str]"

    def __init__(self, path: str, replaced: bool, old_path: "Optional[str]" = None) -> None:
        self._set(path=path, replaced=replaced, old_path=old_path)


class FileFacts(Record):
    """What the file system says about a path, taken from ``lstat`` or ``fstat``.

    ``kind`` is one of regular, symlink, directory, fifo, socket, char-device,
    block-device, missing; ``mode`` holds the permission bits only.
    """

    __slots__ = ("gid", "kind", "link_target", "mode", "nlink", "path", "size", "uid")
    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    nlink: int
    size: int
    link_target: "Optional[str]"

    def __init__(
        self,
        path: str,
        kind: str,
        mode: int = 0,
        uid: int = -1,
        gid: int = -1,
        nlink: int = 0,
        size: int = 0,
        link_target: "Optional[str]" = None,
    ) -> None:
        self._set(
            path=path,
            kind=kind,
            mode=mode,
            uid=uid,
            gid=gid,
            nlink=nlink,
            size=size,
            link_target=link_target,
        )


class SecretContent(Record):
    """A secret read safely: its first bytes and the facts of the open descriptor."""

    __slots__ = ("data", "facts")
    data: bytes
    facts: "FileFacts"

    def __init__(self, data: bytes, facts: "FileFacts") -> None:
        self._set(data=data, facts=facts)

    def __repr__(self) -> str:  # never show key bytes, even in a debugger or traceback
        return f"SecretContent(<{len(self.data)} bytes>, {self.facts!r})"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "regular"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "char-device"),
        (stat.S_ISBLK, "block-device"),
    ):
        if test(mode):
            return name
    return "unknown"  # pragma: no cover - every Linux file type is listed above


def _facts(path: str, st: "os.stat_result", link_target: "Optional[str]" = None) -> "FileFacts":
    return FileFacts(
        path=path,
        kind=_kind(st.st_mode),
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        nlink=st.st_nlink,
        size=st.st_size,
        link_target=link_target,
    )


def lstat_facts(path: str) -> "FileFacts":
    """Facts about ``path`` itself (a symlink is reported, not followed)."""
    try:
        st = os.lstat(path)
        target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    except FileNotFoundError:
        return FileFacts(path=path, kind="missing")
    except OSError as exc:  # ENOTDIR, EACCES, ELOOP in a parent, ...
        raise _read_error(
            "look up", path, exc, _lookup_hint(exc.errno, path), reference="lookup-failed"
        ) from None
    return _facts(path, st, target)


# ----------------------------------------------------------------------------- the process


def forbid_core_dumps() -> None:
    """No core file of this process, or of its children (ssh), can hold key bytes.

    RLIMIT_CORE 0, soft and hard, so nothing later in the process lowers the
    guard again; children inherit it.  systemd-coredump honours the limit too.
    Called first thing by every command that may hold key bytes.
    """
    import resource  # 0.15 ms, paid by commands that hold keys

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


# ----------------------------------------------------------------------------- reading


def read_secret(path: str, limit: int = DEFAULT_READ_LIMIT) -> "SecretContent":
    """Read up to ``limit`` bytes of the regular file ``path`` safely.

    Refuses symlinks (``O_NOFOLLOW``) and anything that is not a regular file,
    without blocking on a FIFO.  The returned facts come from ``fstat`` on the
    descriptor the bytes were read from.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        import errno  # failure paths only: start-up time of the commands that read keys

        if exc.errno == errno.ELOOP:
            raise _unsafe(path, lstat_facts(path), "read") from None
        raise _read_error(
            "read", path, exc, _read_hint(exc.errno, path), reference="read-failed"
        ) from None
    try:
        st = os.fstat(fd)
        facts = _facts(path, st)
        if facts.kind != "regular":
            raise _unsafe(path, facts, "read")
        return SecretContent(b"".join(_read_up_to(fd, path, limit)), facts)
    finally:
        os.close(fd)


def read_secret_fd(fd: int, label: str = "-", limit: int = 1 << 20) -> "SecretContent":
    """Read a secret from an inherited descriptor such as standard input.

    Reads everything up to ``limit`` bytes so that the reported size is the real
    size of what was sent, even past the 4096 bytes corosync uses.
    """
    if os.isatty(fd):
        from corokey.errors import SecretFileError  # loaded only on failure

        raise SecretFileError(
            f"refusing to read a key from a terminal ({label}): it would echo as typed",
            hint="pipe or redirect the key in (e.g. < FILE), or name the file instead of -",
            reference="stdin-terminal",
            stage="read",
            path=label,
        )
    st = os.fstat(fd)
    data = b"".join(_read_up_to(fd, label, limit + 1))
    if len(data) > limit:
        from corokey.errors import SecretFileError  # loaded only on failure

        raise SecretFileError(
            f"{label} holds more than {limit} bytes, which is no corosync key "
            "(corosync reads at most 4096)",
            hint="send the key file itself, not an archive or a log",
            reference="read-too-large",
            stage="read",
            path=label,
        )
    facts = FileFacts(
        path=label,
        kind=_kind(st.st_mode),
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        nlink=st.st_nlink,
        size=len(data),
    )
    return SecretContent(data, facts)


def _read_up_to(fd: int, path: str, limit: int) -> "Iterator[bytes]":
    remaining = limit
    while remaining > 0:
        try:
            chunk = os.read(fd, min(remaining, 65536))
        except BlockingIOError:
            # Only non-regular inputs (pipes) can get here; wait for data.
            import select

            select.select([fd], [], [])
            continue
        except OSError as exc:
            from corokey.errors import SecretFileError  # loaded only on failure

            raise SecretFileError(
                f"cannot read {path}: {exc.strerror}",
                hint="check the disk and the file, then try again",
                reference="read-failed",
                stage="read",
                path=path,
                errno=exc.errno,
                strerror=exc.strerror,
            ) from None
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def _read_hint(err: "Optional[int]", path: str) -> str:
    import errno  # failure paths only

    if err == errno.ENOENT:
        return f"check the path, or create a key with: corokey generate {path}"
    if err in (errno.EACCES, errno.EPERM):
        return "run as root (keys are readable by their owner only)"
    return "check the path and try again"


def _read_error(
    verb: str, path: str, exc: "OSError", hint: str, *, reference: str
) -> "SecretFileError":
    from corokey.errors import SecretFileError  # loaded only on failure: start-up time

    return SecretFileError(
        f"cannot {verb} {path}: {exc.strerror}",
        hint=hint,
        reference=reference,
        stage="read",
        path=path,
        errno=exc.errno,
        strerror=exc.strerror,
    )


def _lookup_hint(err: "Optional[int]", path: str) -> str:
    import errno  # failure paths only

    if err == errno.ENOTDIR:
        return f"a component of {path} is not a directory; check the path"
    return _read_hint(err, path)


def _unsafe(path: str, facts: "FileFacts", stage: str) -> "UnsafeTargetError":
    if facts.kind == "symlink":
        what = f"a symbolic link to {facts.link_target}"
        hint = (
            f"corokey never follows links at key paths; remove the link ({path}) or name its target"
        )
    else:
        what = f"a {facts.kind.replace('-', ' ')}, not a regular file"
        hint = f"move {path} out of the way, or choose another path"
    if stage == "read":
        message = f"refusing to read {path}: it is {what}"
    elif facts.kind == "directory":
        message = f"Could not create {path}: Is a directory"  # corosync-keygen's words
    else:
        message = f"Could not create {path}: it is {what}; refusing to replace it"
    from corokey.errors import UnsafeTargetError  # loaded only on failure

    return UnsafeTargetError(
        message,
        hint=hint,
        reference="not-regular" if facts.kind != "symlink" else "symlink",
        stage=stage,
        path=path,
    )


# ----------------------------------------------------------------------------- writing


def write_secret(
    path: str,
    data: bytes,
    *,
    mode: int = 0o400,
    owner: "Optional[Owner]" = None,
    keep_old: bool = False,
    make_parents: bool = False,
    on_created: "Optional[Callable[[], None]]" = None,
) -> "WriteResult":
    """Atomically put ``data`` at ``path`` with exactly ``mode`` (and ``owner``).

    The temp file is created next to the target with ``O_EXCL|O_NOFOLLOW`` and
    ``mode`` from the first instant; it is written fully, fsynced, renamed over
    the target and the directory fsynced.  ``keep_old`` first saves an existing
    target as ``PATH.old`` (same way, same mode and owner).  ``on_created`` is
    called once the temp file exists with its final mode, before any key byte is
    written (``corosync-keygen`` prints its "Writing" line there).

    Raises :class:`SecretFileError` whose ``stage`` is ``create``, ``mode``,
    ``write`` or ``commit``; the target is untouched unless the stage is
    ``commit`` and the message says the new key is in place.
    """
    directory, name = os.path.split(path)
    directory = directory or "."
    if not name:  # "" or "DIR/": as corosync-keygen's open(2), fail before anything is made
        import errno  # failure paths only

        missing = errno.EISDIR if path and os.path.isdir(directory) else errno.ENOENT
        raise _error(
            "create", path, f"Could not create {path}", OSError(missing, os.strerror(missing))
        )
    if make_parents:
        _make_parents(directory, path)
    dir_fd = _open_directory(directory, path)
    try:
        existing = _check_target(dir_fd, name, path)
        remove_stale_temps(dir_fd, name)
        old_path = None
        if keep_old and existing is not None:
            old_path = path + ".old"
            _save_old(dir_fd, name, path, old_path, existing)
        _write_and_commit(dir_fd, name, path, data, mode, owner, on_created)
        return WriteResult(path=path, replaced=existing is not None, old_path=old_path)
    finally:
        os.close(dir_fd)


def _make_parents(directory: str, path: str) -> None:
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise _error("create", path, f"Could not create {directory}", exc) from None


def _open_directory(directory: str, path: str) -> int:
    try:
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _error("create", path, f"Could not create {path}", exc) from None


def _check_target(dir_fd: int, name: str, path: str) -> "Optional[os.stat_result]":
    """Refuse a target that is not a regular file; return its stat if it exists."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _error("create", path, f"Could not create {path}", exc) from None
    if not stat.S_ISREG(st.st_mode):
        target = os.readlink(name, dir_fd=dir_fd) if stat.S_ISLNK(st.st_mode) else None
        raise _unsafe(path, _facts(path, st, target), "create")
    return st


def _save_old(dir_fd: int, name: str, path: str, old_path: str, existing: "os.stat_result") -> None:
    """Keep the current key as NAME.old, with its owner and its mode less any group or
    other bits: the old key may still be the live key of other nodes, so a key that was
    exposed is not kept exposed."""
    old_name = name + ".old"
    _check_target(dir_fd, old_name, old_path)
    content = read_secret(path, limit=max(existing.st_size, 1) + 1)
    owner = (existing.st_uid, existing.st_gid) if os.geteuid() == 0 else None
    mode = stat.S_IMODE(existing.st_mode) & 0o700 or 0o400
    _write_and_commit(dir_fd, old_name, old_path, content.data, mode, owner, None)


def _temp_name(name: str) -> str:
    return f".{name}{TEMP_INFIX}{os.getpid()}-{os.urandom(4).hex()}{TEMP_SUFFIX}"


def _write_and_commit(
    dir_fd: int,
    name: str,
    path: str,
    data: bytes,
    mode: int,
    owner: "Optional[Owner]",
    on_created: "Optional[Callable[[], None]]",
) -> None:
    temp = _temp_name(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temp, flags, mode & 0o777, dir_fd=dir_fd)
    except OSError as exc:
        raise _error("create", path, f"Could not create {path}", exc) from None
    committed = False
    try:
        try:
            _set_protection(fd, path, mode, owner)
            if on_created is not None:
                on_created()
            _write_all(fd, path, data)
        finally:
            closing_error = _close(fd)
        if closing_error is not None:
            raise _error("commit", path, f"Could not close {path}", closing_error)
        # The path may have been swapped for a link or directory since we looked.
        _check_target(dir_fd, name, path)
        try:
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            raise _error("commit", path, f"Could not rename the new key to {path}", exc) from None
        committed = True
        try:
            os.fsync(dir_fd)
        except OSError as exc:
            raise _error(
                "commit",
                path,
                f"The new key is at {path}, but its directory could not be synced",
                exc,
            ) from None
    finally:
        if not committed:
            _unlink_quietly(temp, dir_fd)


def _set_protection(fd: int, path: str, mode: int, owner: "Optional[Owner]") -> None:
    try:
        if owner is not None:
            os.fchown(fd, owner[0], owner[1])
        # After fchown: it may clear set-id bits, and the umask may have taken bits off.
        os.fchmod(fd, mode)
    except OSError as exc:
        raise _error(
            "mode", path, f"Failed to set key file permissions to {mode:04o}", exc
        ) from None


def _write_all(fd: int, path: str, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except OSError as exc:
        raise _error("write", path, f"Could not write {path}", exc) from None


def _close(fd: int) -> "Optional[OSError]":
    try:
        os.close(fd)
    except OSError as exc:
        return exc
    return None


def _unlink_quietly(name: str, dir_fd: int) -> None:
    try:  # noqa: SIM105 - contextlib would cost start-up time
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass  # nothing more to do: the next run removes it (remove_stale_temps)


def _error(stage: str, path: str, what: str, exc: "OSError") -> "SecretFileError":
    from corokey.errors import SecretFileError  # loaded only on failure

    return SecretFileError(
        f"{what}: {exc.strerror}",
        hint=_write_hint(exc.errno, path),
        reference=f"{stage}-failed",
        stage=stage,
        path=path,
        errno=exc.errno,
        strerror=exc.strerror,
    )


def _write_hint(err: "Optional[int]", path: str) -> str:
    import errno  # failure paths only

    if not path:
        return "name the key file, e.g. -k /etc/corosync/authkey"
    directory = os.path.dirname(path) or "."
    if err == errno.ENOENT:
        return f"create the directory first (mkdir -p {directory}) or choose another path"
    if err in (errno.EACCES, errno.EPERM):
        return f"run as root, or choose a directory you may write to instead of {directory}"
    if err == errno.ENOSPC or err == errno.EDQUOT:
        return f"free some space on the file system of {directory}, then run again"
    if err == errno.EROFS:
        return f"{directory} is read-only; remount it read-write or use another path"
    if err == errno.EISDIR:
        return f"name a file, not a directory (e.g. {os.path.join(path, 'authkey')})"
    return "the existing key, if any, is unchanged; fix the cause above and run again"


# ----------------------------------------------------------------------------- temp files


def is_temp_of(entry: str, name: str) -> bool:
    """True when ``entry`` is a temp file :func:`write_secret` made for ``name``."""
    return entry.startswith(f".{name}{TEMP_INFIX}") and entry.endswith(TEMP_SUFFIX)


def _temp_pid(entry: str, name: str) -> "Optional[int]":
    middle = entry[len(f".{name}{TEMP_INFIX}") : -len(TEMP_SUFFIX)]
    pid_text = middle.split("-", 1)[0]
    return int(pid_text) if pid_text.isdigit() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(dir_fd: int, name: str) -> int:
    """Remove temp files of ``name`` left by runs that were killed; return how many."""
    removed = 0
    now = time.time()
    for entry in os.listdir(dir_fd):
        if not is_temp_of(entry, name):
            continue
        try:
            st = os.lstat(entry, dir_fd=dir_fd)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        pid = _temp_pid(entry, name)
        stale = pid is None or not _pid_alive(pid) or now - st.st_mtime > STALE_TEMP_SECONDS
        if stale and pid != os.getpid():
            _unlink_quietly(entry, dir_fd)
            removed += 1
    return removed


# ----------------------------------------------------------------------------- streams


def write_secret_stream(data: bytes, fd: int = 1) -> "Optional[str]":
    """Write key bytes to an inherited descriptor (standard output).

    Refuses a terminal (the key would end up in scroll-back and screen logs).
    Returns a warning when the descriptor is a file others can read.
    """
    if os.isatty(fd):
        from corokey.errors import SecretFileError  # loaded only on failure

        raise SecretFileError(
            "refusing to write a raw key to a terminal",
            hint="redirect it (corokey generate - > FILE) or name a path instead of -",
            reference="stdout-terminal",
            stage="create",
            path="-",
        )
    st = os.fstat(fd)
    warning = None
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o044:
        warning = (
            f"standard output is a file of mode {stat.S_IMODE(st.st_mode):04o}, readable by "
            "others; protect it: chmod 0400 FILE"
        )
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise _error("write", "-", "Could not write the key to standard output", exc) from None
    return warning
