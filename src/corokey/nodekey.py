"""The key file on a remote node: inspect it, stage a new one, commit, abort.

Each operation is one fixed POSIX sh script run through :class:`corokey.remote.Ssh`.
Fingerprints are compared as hex SHA-256 of the first 4096 bytes (what corosync
uses), computed on the node with ``head -c 4096 | sha256sum``: key bytes never
travel back.
"""

import os
from typing import Optional

from corokey.record import Record
from corokey.remote import RemoteResult, Ssh, quote, validate_path

STAGE_INFIX = ".corokey-push-"

# Every script first prints MARKER: what a node's shell start-up prints before it (a
# banner from .bashrc, say) is not taken for the script's answer.
MARKER = "--corokey--"

_INSPECT = r"""
echo --corokey--
k=%(key)s
if [ -L "$k" ]; then printf 'symlink|%%s\n' "$(readlink "$k")"; exit 0; fi
if [ ! -e "$k" ]; then echo missing; exit 0; fi
stat -c '%%F|%%a|%%u|%%g|%%U|%%G|%%h|%%s' -- "$k" || exit 3
if [ -f "$k" ]; then head -c 4096 -- "$k" | sha256sum | cut -d' ' -f1 || exit 3; fi
"""

_STAGE = r"""
echo --corokey--
set -u
umask 077
d=%(dir)s; n=%(name)s
cd "$d" || { echo "no directory $d" >&2; exit 20; }
if [ -L "$n" ] || { [ -e "$n" ] && [ ! -f "$n" ]; }; then
  echo "$d/$n is a symbolic link or not a regular file; refusing" >&2; exit 21
fi
if [ -L "$n.old" ] || { [ -e "$n.old" ] && [ ! -f "$n.old" ]; }; then
  echo "$d/$n.old is a symbolic link or not a regular file; refusing" >&2; exit 21
fi
for old in ".$n%(infix)s"* ".$n.old%(infix)s"; do [ -f "$old" ] && rm -f -- "$old"; done
if [ -f "$n" ] && [ "$(stat -c '%%U:%%G|%%a|%%h|%%s' -- "$n")" = %(want_stat)s ] \
   && [ "$(head -c 4096 -- "$n" | sha256sum | cut -d' ' -f1)" = %(fp)s ]; then
  cat > /dev/null; echo unchanged; exit 0
fi
t=$(mktemp ".$n%(infix)sXXXXXXXX") || { echo "cannot create a file in $d" >&2; exit 22; }
trap 'rm -f -- "$t"' EXIT
cat > "$t" || { echo "cannot write $d/$t" >&2; exit 23; }
chown %(owner)s "$t" && chmod %(mode)s "$t" || { echo "cannot set owner or mode" >&2; exit 24; }
sync -- "$t" || { echo "cannot sync $d/$t" >&2; exit 25; }
size=$(wc -c < "$t")
fp=$(head -c 4096 -- "$t" | sha256sum | cut -d' ' -f1)
trap - EXIT
echo "staged|$t|$size|$fp"
"""

_COMMIT = r"""
echo --corokey--
set -u
d=%(dir)s; n=%(name)s; t=%(staged)s
cd "$d" || { echo "no directory $d" >&2; exit 20; }
[ -f "$t" ] || { echo "the staged copy $d/$t is gone" >&2; exit 30; }
fp=$(head -c 4096 -- "$t" | sha256sum | cut -d' ' -f1)
[ "$fp" = %(fp)s ] || { echo "the staged copy $d/$t changed" >&2; exit 31; }
for f in "$n" "$n.old"; do
  if [ -L "$f" ] || { [ -e "$f" ] && [ ! -f "$f" ]; }; then
    echo "$d/$f is a symbolic link or not a regular file; refusing" >&2; exit 21
  fi
done
# mv -T: never into a directory that appeared at the name since the check.
if [ -f "$n" ]; then
  ln -f -- "$n" ".$n.old%(infix)s" && mv -f -T -- ".$n.old%(infix)s" "$n.old" \
    || { echo "cannot keep $d/$n.old" >&2; exit 32; }
fi
mv -f -T -- "$t" "$n" || { echo "cannot rename into $d/$n" >&2; exit 33; }
sync -- . || { echo "cannot sync $d" >&2; exit 34; }
echo committed
"""

_ABORT = r"""
cd %(dir)s 2>/dev/null && rm -f -- %(staged)s
"""

_READ = r"""
k=%(key)s
if [ -L "$k" ] || [ ! -f "$k" ]; then echo "$k is not a regular file" >&2; exit 21; fi
echo --corokey-- && cat -- "$k"
"""


def _answer(stdout: str) -> str:
    """What the script printed after its marker."""
    _, marker, answer = stdout.partition(MARKER + "\n")
    return answer if marker else stdout


class RemoteKey(Record):
    """What a node holds at the key path (from ``stat``, and the fingerprint)."""

    __slots__ = (
        "gid",
        "group",
        "kind",
        "link_target",
        "mode",
        "nlink",
        "owner",
        "sha256",
        "size",
        "uid",
    )
    kind: str  # regular, symlink, missing, directory, ...
    mode: int
    uid: int
    gid: int
    owner: str
    group: str
    nlink: int
    size: int
    sha256: "Optional[str]"
    link_target: "Optional[str]"

    def __init__(self, **fields: object) -> None:
        defaults = dict(
            kind="missing",
            mode=0,
            uid=-1,
            gid=-1,
            owner="",
            group="",
            nlink=0,
            size=0,
            sha256=None,
            link_target=None,
        )
        defaults.update(fields)
        self._set(**defaults)


class NodeKeyError(Exception):
    """A remote step failed on one node; ``result`` has its output."""

    def __init__(self, result: "RemoteResult") -> None:
        super().__init__(result.why())
        self.result = result


def _kind(text: str) -> str:
    text = text.lower()
    if text.startswith("regular"):
        return "regular"
    return text.replace("symbolic link", "symlink").replace(" ", "-")


def inspect(ssh: "Ssh", node: str, key_path: str) -> "RemoteKey":
    result = ssh.run(node, _INSPECT % {"key": quote(validate_path(key_path))})
    if result.status != 0:
        raise NodeKeyError(result)
    lines = _answer(result.stdout).splitlines()
    if not lines or lines[0] == "missing":
        return RemoteKey()
    if lines[0].startswith("symlink|"):
        return RemoteKey(kind="symlink", link_target=lines[0].split("|", 1)[1])
    kind, mode, uid, gid, owner, group, nlink, size = lines[0].split("|")
    return RemoteKey(
        kind=_kind(kind),
        mode=int(mode, 8),
        uid=int(uid),
        gid=int(gid),
        owner=owner,
        group=group,
        nlink=int(nlink),
        size=int(size),
        sha256=lines[1].strip() if len(lines) > 1 else None,
    )


def stage(
    ssh: "Ssh", node: str, key_path: str, key: bytes, owner: str, mode: int
) -> "Optional[str]":
    """Write a staged copy next to the key and return its name; None when the node
    already holds this key with this owner and mode (one byte-exact hard link). Raises
    NodeKeyError."""
    import hashlib

    directory, name = os.path.split(validate_path(key_path))
    sha256 = hashlib.sha256(key[:4096]).hexdigest()
    script = _STAGE % {
        "dir": quote(directory or "/"),
        "name": quote(name),
        "infix": STAGE_INFIX,
        "owner": quote(owner),
        "mode": f"{mode:04o}",
        "fp": quote(sha256),
        "want_stat": quote(f"{owner}|{mode:o}|1|{len(key)}"),
    }
    result = ssh.run(node, script, stdin=key)
    answer = _answer(result.stdout)
    if result.status == 0 and answer.strip() == "unchanged":
        return None
    if result.status != 0 or not answer.startswith("staged|"):
        raise NodeKeyError(result)
    _, staged, size, sha256 = answer.strip().split("|")

    if int(size) != len(key) or sha256 != hashlib.sha256(key[:4096]).hexdigest():
        raise NodeKeyError(
            RemoteResult(node, 1, "", f"the staged copy {staged} does not read back as the key")
        )
    return staged


def commit_command(key_path: str, staged: str, sha256: str, for_admin: bool = False) -> str:
    """The commit script; ``for_admin``: without the marker line, to show to a person."""
    directory, name = os.path.split(validate_path(key_path))
    script = _COMMIT.replace("echo " + MARKER + "\n", "", 1) if for_admin else _COMMIT
    return script % {
        "dir": quote(directory or "/"),
        "name": quote(name),
        "staged": quote(staged),
        "fp": quote(sha256),
        "infix": STAGE_INFIX,
    }


def commit(ssh: "Ssh", node: str, key_path: str, staged: str, sha256: str) -> None:
    result = ssh.run(node, commit_command(key_path, staged, sha256))
    if result.status != 0 or _answer(result.stdout).strip() != "committed":
        raise NodeKeyError(result)


def abort(ssh: "Ssh", node: str, key_path: str, staged: str) -> bool:
    directory = os.path.dirname(validate_path(key_path)) or "/"
    result = ssh.run(node, _ABORT % {"dir": quote(directory), "staged": quote(staged)})
    return result.status == 0


def read_key(ssh: "Ssh", node: str, key_path: str) -> bytes:
    """The key bytes of a node, into memory only (for push --from)."""
    status, data, stderr = ssh.run_bytes(node, _READ % {"key": quote(validate_path(key_path))})
    if status != 0:
        raise NodeKeyError(RemoteResult(node, status, "", stderr))
    _, marker, key = data.partition(MARKER.encode() + b"\n")
    if not marker:
        raise NodeKeyError(RemoteResult(node, 1, "", f"no answer from the read of {key_path}"))
    return key
