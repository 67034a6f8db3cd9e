"""Every shell text that runs on a node, and what each of its answers means.

A node runs fixed POSIX sh scripts (through :mod:`corokey.remote`); nothing is
installed there.  Every script starts with one prelude (C locale, ``set -u``,
``umask 077``, the marker, the shared functions) and answers in lines of one
shape::

    corokey-result NAME field=value ... [path=REST OF LINE | detail=REST OF LINE]

The admin side decides on ``NAME`` and the fields only, never on wording; the
names that mean a failure are in :data:`FAILURES` with their message, reference
and hint.  Key bytes never appear in a script: they travel on stdin only, after
the script has asked for them.

What a node needs: sshd, /bin/sh (whatever the login shell: :func:`corokey.remote.
remote_command`), coreutils (base64, cat, chmod, chown, cp, cut, head, ln and mv with
-T, mktemp, rm, sha256sum, stat, sync >= 8.24), sed, grep, id, getent (the pacemaker
profile), and
util-linux's flock (every push, rollback and restore holds a lock on the key's
directory, so two runs, or two names of one host in one run, never remove each
other's staged copies).
"""

import shlex
from typing import Dict, Iterable, Mapping, NamedTuple, Optional, Tuple

#: Printed first by every script: what a node's shell start-up prints before it (a
#: banner from .bashrc, say) is not taken for an answer.
MARKER = "--corokey--"
RESULT = "corokey-result"
#: Lines of a copied text file (corosync.conf) carry this prefix.
TEXT_PREFIX = "| "
#: Where corosync reads its configuration on a node (both generations' default).
NODE_CONF_PATH = "/etc/corosync/corosync.conf"
#: Staged copies: ``.NAME.corokey-push-XXXXXXXX`` next to the key.
STAGE_INFIX = ".corokey-push-"
RESTORE_INFIX = ".corokey-restore-"
#: Exit status of a script that answered with a named failure.
FAILED = 3

_PRELUDE = r"""export LC_ALL=C
# corosync's tools are in sbin, which a non-root login's PATH lacks on Debian.
PATH=$PATH:/usr/sbin:/sbin
set -u
umask 077
echo --corokey--
say() { printf 'corokey-result %s\n' "$*"; }
die() { say "$@"; exit 3; }
kind() {
  # Sets kd (no subshell: every fork counts on a node serving many sessions).
  if [ -L "$1" ]; then kd=symlink; elif [ -f "$1" ]; then kd=regular
  elif [ -d "$1" ]; then kd=directory; elif [ -e "$1" ]; then kd=other; else kd=missing; fi
}
sha() {
  # h: the SHA-256 of the first $1 bytes of $2 ($3, when known, is its size: then no
  # head). Fails, with why naming the cause, when the file could not be read whole: the
  # hash of what could not be read is the empty input's, the same on every node.
  # The file is opened by exec, its failure in the captured words; head's exit status is
  # lost in the pipe, so it reports a failure on fd 3.
  if [ -n "${3:-}" ] && [ "$3" -le "$1" ]; then
    h=$(exec 2>&1; exec < "$2" || exit; sha256sum)
  else
    h=$(exec 2>&1 3>&1; exec < "$2" || exit; { head -c "$1" || echo read-failed >&3; } | sha256sum)
  fi
  r=${h%"  -"}
  case ${#h}:${#r}:$r in
    67:64:*[!0-9a-f]*) ;;
    67:64:*) h=$r; return 0 ;;
  esac
  case $h in
    *"Permission denied"*) why=permission-denied ;;
    *"Input/output error"*) why=io-error ;;
    *) why=read-failed ;;
  esac
  return 1
}
fp() {
  # h: the fingerprint of our own file $1 (size $2); a file we cannot read ends the script.
  sha "$eff" "$1" "${2:-}" || die unreadable "why=$why" "path=$PWD/$1"
}
facts() {
  # Sets F to the facts of $1 and sz to its size. sha256: of the bytes corokey compares
  # (the first 4096); used: of the bytes this node's corosync uses, where that is fewer
  # (2.x: the first 128); unreadable: why neither could be read (never a fingerprint).
  kind "$1"; sz=
  if [ "$kd" = regular ]; then
    F=$(stat -c 'mode=%a uid=%u gid=%g owner=%U group=%G nlink=%h size=%s' -- "$1")
    sz=${F##*size=}
    if ! sha "$eff" "$1" "$sz"; then
      F="kind=regular $F unreadable=$why"
    elif [ "${ceff:-$eff}" -ge "$eff" ]; then
      F="kind=regular $F sha256=$h"
    else
      F="kind=regular $F sha256=$h"
      if sha "$ceff" "$1" "$sz"; then F="$F used=$h"; else F="$F unreadable=$why"; fi
    fi
  else
    F="kind=$kd"
  fi
}
show_text() {
  if [ -f "$1" ] && [ -r "$1" ]; then
    say text-begin; sed 's/^/| /' -- "$1"; echo; say text-end
  else
    say text-missing
  fi
}
show_startup() {
  # The files corosync's unit or init script reads its options from (corokey.corosync_startup).
  for f in /etc/default/corosync /etc/sysconfig/corosync; do
    if [ -f "$f" ] && [ -r "$f" ]; then
      say startup-file readable=yes "path=$f"; sed 's/^/| /' -- "$f"; echo
    elif [ -e "$f" ]; then say startup-file readable=no "path=$f"; fi
  done
}
dir_unsafe() {
  # Whether others could put a name into the key's directory $1 (physical): it and every
  # directory above it must be root's (or this user's) and writable by nobody else, as
  # sshd's StrictModes asks of a home directory. Above the key's directory a sticky one
  # (/tmp) is safe, as others cannot rename what is not theirs; the key's own is not:
  # others could plant names there. Prints "uid= mode= path=" of the first at fault.
  # The mode's octal digits are read as digits: no $((0$m)), which zsh takes as decimal.
  me=$(id -u); p=$1; first=${2:-}; set -- "$p"
  while [ "$p" != / ]; do p=${p%/*}; [ -n "$p" ] || p=/; set -- "$@" "$p"; done
  stat -c '%u %a %n' -- "$@" | {
    while read -r uid m name; do
      d=000$m; d=${d#"${d%????}"}; special=${d%???}; go=${d#??}
      case $go in *[2367]*) w=yes ;; *) w=no ;; esac
      if [ "$w" = yes ] && [ "$first" != key ]; then case $special in [1357]) w=no ;; esac; fi
      first=
      if { [ "$uid" != 0 ] && [ "$uid" != "$me" ]; } || [ "$w" = yes ]; then
        printf 'uid=%s mode=%s path=%s\n' "$uid" "$m" "$name"; break
      fi
    done
  }
}
key_dir_unsafe() {
  # bad: what makes the key's directory $1 unsafe (empty: nothing): its physical
  # directories, and where $1 is a link, the directories holding the link.
  bad=$(cd -P -- "$1" 2>/dev/null && dir_unsafe "$(pwd -P)" key)
  if [ -z "$bad" ] && [ -L "$1" ]; then
    up=${1%/*}; [ -n "$up" ] || up=/
    bad=$(cd -P -- "$up" 2>/dev/null && dir_unsafe "$(pwd -P)")
  fi
}
generation() {
  # Which corosync runs here, and how many bytes of the key it uses: 2.x reads exactly the
  # first 128 (totemconfig.c), 3.x up to 4096.
  v=$(corosync -v 2>/dev/null)
  case $v in *"version '"*) v=${v#*"version '"}; v=${v%%"'"*} ;; *) v= ;; esac
  case $v in 1.*|2.*) ceff=128 ;; *) ceff=4096 ;; esac
  say corosync "version=${v:-none}" "effective=$ceff"
}
enter() {
  # cd into the key's directory (physically), check it, and lock it for this session.
  cd -P -- "$1" 2>/dev/null || die no-directory "path=$1"
  key_dir_unsafe "$1"
  [ -z "$bad" ] || die unsafe-directory "$bad"
  command -v flock >/dev/null 2>&1 || die missing-tool tool=flock
  exec 9<.
  flock -n 9 || die busy "path=$1"
}
plain() {
  # A name we will replace or keep must be a regular file or absent, never a link.
  for f in "$@"; do
    kind "$f"
    case $f in /*) at=$f ;; *) at=$PWD/$f ;; esac
    case $kd in regular|missing) ;; *) die not-regular "kind=$kd" "path=$at" ;; esac
  done
}
written() {
  # Name the failure of a write from what the tool said (C locale).
  case $1 in
    *"No space left"*|*"Disk quota"*) echo no-space ;;
    *"Read-only file system"*) echo read-only ;;
    *"Permission denied"*|*"Operation not permitted"*) echo no-permission ;;
    *) echo write-failed ;;
  esac
}
"""

# Where Pacemaker reads Pacemaker Remote's key (corokey.pacemaker decides): only where
# pacemakerd is installed, so other nodes pay nothing. Key files are followed (fopen
# follows links); the reader is hacluster, as pacemaker-controld runs.
_PACEMAKER = r"""
pm=/usr/sbin/pacemakerd
if [ -x "$pm" ]; then
  v=$("$pm" --version 2>/dev/null) || v=
  v=${v#Pacemaker }; v=${v%%[!0-9.]*}
  u=$(id -u hacluster 2>/dev/null) || u=
  g=$(id -G hacluster 2>/dev/null) || g=
  say pacemaker "version=${v:-unknown}" "uid=$u" "gids=$(echo $g | sed 's/ /,/g')"
  loc=$(sed -n 's/^[[:space:]]*PCMK_authkey_location=//p' -- /etc/default/pacemaker \
    /etc/sysconfig/pacemaker 2>/dev/null | sed -n '$p')
  say pcmk-env "path=$loc"
  case $loc in \"*\") loc=${loc#\"}; loc=${loc%\"} ;; \'*\') loc=${loc#\'}; loc=${loc%\'} ;; esac
  for f in ${loc:+"$loc"} /etc/pacemaker/authkey /etc/corosync/authkey; do
    if [ -f "$f" ]; then
      F=$(stat -L -c 'mode=%a uid=%u gid=%g dev=%d ino=%i size=%s' -- "$f")
      if [ "$f" = /etc/corosync/authkey ] && sha "$eff" "$f" "${F##*size=}"; then
        F="$F sha256=$h"
      fi
      say pcmk-key kind=regular $F "path=$f"
    elif [ -d "$f" ]; then say pcmk-key kind=directory "path=$f"
    elif [ -e "$f" ]; then say pcmk-key kind=other "path=$f"
    else say pcmk-key kind=missing "path=$f"; fi
  done
fi
"""

# Whether the user and group a profile gives its key to exist here (acct=USER:GROUP, set
# for the pacemaker profile only), and the user's login group: corokey.pacemaker_access
# decides the owner from them (pacemaker-remoted reads the key as root, and a remote node
# may lack hacluster).
_ACCOUNTS = r"""
if [ -n "$acct" ]; then
  an=${acct%%:*}; au=no; ag=no; lg=
  if id -u "$an" >/dev/null 2>&1; then
    au=yes; lg=$(id -gn "$an" 2>/dev/null) || lg=$(id -g "$an" 2>/dev/null) || lg=
  fi
  if getent group "${acct#*:}" >/dev/null 2>&1; then ag=yes; fi
  say accounts "user=$au" "group=$ag" "login-group=$lg"
fi
"""

# Inspect what corosync reads: the node's corosync.conf, the key at each candidate
# path (the admin's, and every keyfile the conf names: the admin parses the conf with
# corosync's rules and picks), its .old, and whether its directory is safe.
_INSPECT = (
    r"""
show_text "$conf"
show_startup
generation
"""
    + _PACEMAKER
    + _ACCOUNTS
    + r"""
inspect_one() {
  facts "$1"; say key $F "path=$1"
  facts "$1.old"; say old $F "path=$1.old"
  d=${1%/*}; [ -n "$d" ] || d=/
  # Said right after the key: the path at fault may be a parent, or a link's target.
  bad=; [ ! -d "$d" ] || key_dir_unsafe "$d"
  if [ -n "$bad" ]; then say dir unsafe=yes "$bad"; else say dir unsafe=no "path=$d"; fi
}
for k in "$@"; do inspect_one "$k"; done
# keyfile as corosync names it: totem { keyfile: } or a dotted totem.keyfile: anywhere
kf='^[[:space:]]*\([^{}:]*\.\)\{0,1\}keyfile[[:space:]]*:[[:space:]]*'
sed -n "s/$kf//p" -- "$conf" 2>/dev/null \
  | sed 's/[[:space:]]*$//' | while IFS= read -r k; do
      case $k in /*) inspect_one "$k" ;; esac
    done
"""
)

# How corosync runs, for rotate: each tool's output framed by a section line.
_LIVE = r"""
section() {
  name=$1; shift
  out=$("$@" 2>/dev/null); st=$?
  say section "name=$name" "status=$st"
  [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/| /'
}
section members corosync-cmapctl -b runtime.members
section members2 corosync-cmapctl -b runtime.totem.pg.mrp.srp.members
section quorum corosync-quorumtool -s
section reload corosync-cmapctl -b config.reload
section version corosync -v
section fips cat /proc/sys/crypto/fips_enabled
say live-end
"""

# push, phase 1 and 2 in one session: show the conf; then, told where and what, stage
# a copy of the key (read from stdin) next to it and wait; commit only when told.
# End of input at any point before "commit" removes the staged copy.
_PUSH = (
    r"""
show_text "$conf"
show_startup
"""
    + _PACEMAKER
    + _ACCOUNTS
    + r"""
# Only whether corosync is 2.x (for the report), without running it: 2.x links its totem
# library, 3.x compiles totem in (corokey.key reads the same mark).
if grep -qa libtotem_pg.so /usr/sbin/corosync 2>/dev/null; then
  say corosync version=2 effective=128
else
  say corosync
fi
IFS= read -r cmd || exit 0
[ "$cmd" = stage ] || { say aborted; exit 0; }
IFS= read -r k; IFS= read -r size; IFS= read -r owner; IFS= read -r mode; IFS= read -r want
d=${k%/*}; [ -n "$d" ] || d=/; n=${k##*/}
enter "$d"
plain "$n" "$n.old"
for f in ".$n$infix"* ".$n.old$infix"*; do [ -f "$f" ] && rm -f -- "$f"; done
kind "$n"
if [ "$kd" = regular ] \
   && [ "$(stat -c '%U:%G|%a|%h|%s' -- "$n")" = "$owner|$mode|1|$size" ] \
   && sha "$eff" "$n" "$size" && [ "$h" = "$want" ]; then
  head -c "$size" > /dev/null; facts "$n"; say unchanged $F; exit 0
fi
o=
t=$(mktemp ".$n${infix}XXXXXXXX" 2>&1) || die "$(written "$t")" step=create "path=$PWD"
trap 'rm -f -- "$t" ${o:+"$o"}' EXIT
err=$(head -c "$size" 2>&1 > "$t") || die "$(written "$err")" step=write "path=$PWD/$t"
err=$(chown -h -- "$owner" "$t" 2>&1 && chmod "$mode" -- "$t" 2>&1) \
  || die owner-failed "owner=$owner" "mode=$mode" "path=$PWD/$t"
err=$(sync -- "$t" 2>&1) || die "$(written "$err")" step=sync "path=$PWD/$t"
facts "$t"
[ "$sz" = "$size" ] || die short-input "path=$PWD/$t"
say staged "name=$t" $F
IFS= read -r cmd || cmd=eof
[ "$cmd" = commit ] || { say aborted; exit 0; }
kind "$t"
[ "$kd" = regular ] && fp "$t" "$size" && [ "$h" = "$want" ] \
  || die changed-underneath "path=$PWD/$t"
plain "$n" "$n.old"
# -T: never into a directory that appeared at a name since the check. .old keeps the
# previous key's inode, without group and other bits; its link is made under a name of
# mktemp's (a fixed name could be a planted link to elsewhere).
if [ -f "$n" ]; then
  o=$(mktemp ".$n.old${infix}XXXXXXXX" 2>&1) || die "$(written "$o")" step=create "path=$PWD"
  ln -f -T -- "$n" "$o" && mv -f -T -- "$o" "$n.old" || die keep-old-failed "path=$PWD/$n.old"
  o=
fi
err=$(mv -f -T -- "$t" "$n" 2>&1) || die rename-failed "path=$PWD/$n"
trap - EXIT
[ ! -f "$n.old" ] || chmod go= -- "$n.old"
err=$(sync -- . 2>&1) || die "$(written "$err")" step=sync-directory "path=$PWD"
facts "$n"; say committed $F
"""
)

# Rollback: put .old back (a copy: the key must end with one name), only if .old holds
# the key the cluster ran before.
_RESTORE = r"""
d=${k%/*}; [ -n "$d" ] || d=/; n=${k##*/}
enter "$d"
# Whatever is at the key path is replaced, never followed (rename), a link included.
plain "$n.old"
kind "$n.old"
[ "$kd" = regular ] || die no-old "path=$PWD/$n.old"
fp "$n.old"
[ "$h" = "$want" ] || die old-differs "path=$PWD/$n.old"
kind "$n"
if [ "$kd" = regular ] && sha "$eff" "$n" && [ "$h" = "$want" ]; then
  facts "$n"; say unchanged $F; exit 0
fi
t=$(mktemp ".$n${rinfix}XXXXXXXX" 2>&1) || die "$(written "$t")" step=create "path=$PWD"
trap 'rm -f -- "$t"' EXIT
err=$(cp -p -- "$n.old" "$t" 2>&1 && sync -- "$t" 2>&1) \
  || die "$(written "$err")" step=write "path=$PWD/$t"
err=$(mv -f -T -- "$t" "$n" 2>&1) || die rename-failed "path=$PWD/$n"
trap - EXIT
sync -- . 2>/dev/null
facts "$n"; say restored $F
"""

# push --from: the key's bytes, framed by its facts so that the admin can check what
# it read (a banner printed into the session is not taken for key bytes).
_READ = r"""
plain "$k"
kind "$k"
[ "$kd" = regular ] || die not-regular kind=missing "path=$k"
facts "$k"; say key $F "path=$k"
cat -- "$k"
"""

# rotate --restart: the admin's own command to stop or start the cluster stack.
_RUN = r"""
# One stack command at a time on a node: a start waits for a stop that goes on after its
# session was cut. The command itself does not inherit the lock (a daemon it starts would
# hold it for ever).
if command -v flock >/dev/null 2>&1 && { exec 8>>/run/corokey-stack.lock; } 2>/dev/null; then
  flock -w "$wait" 8 || die busy "path=/run/corokey-stack.lock"
fi
out=$(sh -c "$cmd" 2>&1 </dev/null 8>&-); st=$?
if [ "$st" -eq 0 ]; then say ran; exit 0; fi
last=$(printf '%s\n' "$out" | sed -n '$p')
die command-failed "status=$st" "what=$what" "detail=$last"
"""

#: How rotate --restart stops and starts the stack by default: systemd, with pacemaker
#: stopped first where it runs, and started last exactly where it ran before the stop
#: (asked with PACEMAKER_ACTIVE before any stop; whether it is enabled does not matter:
#: ``pcs cluster start`` without ``--enable`` runs it without enabling it).
STOP_STACK = (
    "if systemctl is-active --quiet pacemaker 2>/dev/null; then systemctl stop pacemaker "
    "|| exit 1; fi; systemctl stop corosync"
)
START_STACK = "systemctl start corosync"
START_PACEMAKER = "systemctl start pacemaker"
PACEMAKER_ACTIVE = "systemctl is-active --quiet pacemaker"

_RELOAD = r"""
out=$(corosync-cfgtool -R 2>&1); st=$?
if [ "$st" -eq 0 ]; then say reloaded; else say reload-failed "status=$st"; fi
"""


def _script(body: str, variables: "Mapping[str, str]", args: "Iterable[str]" = ()) -> str:
    """The prelude, the variables (shell-quoted), the body; ``args`` become "$@"."""
    assign = "".join(f"{name}={shlex.quote(value)}\n" for name, value in variables.items())
    quoted = " ".join(shlex.quote(a) for a in args)
    setargs = f"set -- {quoted}\n" if quoted else "set --\n"
    return _PRELUDE + assign + setargs + body


def inspect_script(
    paths: "Iterable[str]",
    live: bool = False,
    conf: str = NODE_CONF_PATH,
    effective: int = 4096,
    accounts: str = "",
) -> str:
    """corosync.conf and the key at ``paths`` (and every keyfile the conf names), with the
    fingerprints of the first ``effective`` bytes and of the bytes the node's corosync uses;
    with ``live``, how corosync runs too: rotate's preflight in one session. ``accounts``
    (USER:GROUP): whether they exist there."""
    body = _INSPECT + (_LIVE if live else "")
    return _script(body, {"eff": str(effective), "conf": conf, "acct": accounts}, paths)


def live_script() -> str:
    return _script(_LIVE, {"eff": "4096"})


def push_script(effective: int, conf: str = NODE_CONF_PATH, accounts: str = "") -> str:
    variables = {"eff": str(effective), "conf": conf, "infix": STAGE_INFIX, "acct": accounts}
    return _script(_PUSH, variables)


def stage_request(path: str, size: int, owner: str, mode: int, sha256: str) -> bytes:
    """What push writes to a session before the key bytes (validated: one line each)."""
    for value in (path, owner):
        if "\n" in value or "\0" in value:
            raise ValueError("a stage request field holds a newline")
    return f"stage\n{path}\n{size}\n{owner}\n{mode:o}\n{sha256}\n".encode()


def restore_script(path: str, old_sha256: str, effective: int) -> str:
    return _script(
        _RESTORE, {"eff": str(effective), "k": path, "want": old_sha256, "rinfix": RESTORE_INFIX}
    )


def read_script(path: str, effective: int) -> str:
    return _script(_READ, {"eff": str(effective), "k": path})


def run_script(command: str, what: str, wait: int = 0) -> str:
    """The admin's ``command`` (stop or start the stack), run by sh on the node once no
    other stack command runs there (waiting up to ``wait`` seconds)."""
    return _script(_RUN, {"eff": "4096", "cmd": command, "what": what, "wait": str(wait)})


def reload_script() -> str:
    return _script(_RELOAD, {"eff": "4096"})


# Pacemaker's view of its nodes, asked of a cluster node (corokey.pacemaker_nodes): the
# CIB as the running cluster holds it, and crm_mon's node states (Pacemaker 2.0.3+).
_CIB = r"""
command -v cibadmin >/dev/null 2>&1 || die missing-tool tool=cibadmin
cib=$(cibadmin -Q 2>&1) || die cib-failed "status=$?" "detail=$(printf %s "$cib" | tail -n 1)"
say cib-begin; printf '%s\n' "$cib" | sed 's/^/| /'; say cib-end
if mon=$(crm_mon --output-as=xml 2>/dev/null); then
  say crm-mon-begin; printf '%s\n' "$mon" | sed 's/^/| /'; say crm-mon-end
else
  say crm-mon-failed
fi
"""


def cib_script() -> str:
    return _script(_CIB, {"eff": "4096"})


# Pacemaker on a node, for rotate --profile pacemaker: its version and part (pacemakerd:
# a cluster node; only pacemaker-remoted: a remote node), the PCMK_authkey_location its
# units' EnvironmentFile sets, and on a cluster node the cluster's maintenance-mode.
_PCMK_FACTS = r"""
# The part is the daemon that answers (a pacemakerd that does not run is not there).
if v=$(pacemakerd --version 2>/dev/null) && [ -n "$v" ]; then r=cluster
elif v=$(pacemaker-remoted --version 2>/dev/null) && [ -n "$v" ]; then r=remote
else r=none; v=; fi
v=$(printf '%s\n' "$v" | sed -n 's/^Pacemaker \([0-9][0-9.]*\).*/\1/p' | sed -n 1p)
m=
if [ "$r" = cluster ]; then
  m=$(crm_attribute --type crm_config --name maintenance-mode --query --quiet 2>/dev/null)
fi
# As the inspect script (and corokey.pacemaker) read it: systemd's NAME=value lines.
loc=$(sed -n 's/^[[:space:]]*PCMK_authkey_location=//p' -- /etc/default/pacemaker \
  /etc/sysconfig/pacemaker 2>/dev/null | sed -n '$p' | tr -d "\"'")
say pacemaker "version=${v:-none}" "role=$r" "maintenance=${m:-false}" "path=$loc"
"""

# The cluster's maintenance-mode on or off (rotate --profile pacemaker's window).
_MAINTENANCE = r"""
crm_attribute --type crm_config --name maintenance-mode --update "$value" >/dev/null 2>&1 \
  || die maintenance-failed "value=$value"
say maintenance "value=$value"
"""


def pacemaker_facts_script() -> str:
    return _script(_PCMK_FACTS, {"eff": "4096"})


def maintenance_script(on: bool) -> str:
    return _script(_MAINTENANCE, {"eff": "4096", "value": "true" if on else "false"})


# Owner and mode of a key that holds the expected bytes (a restored .old keeps .old's
# 0600: Pacemaker's hacluster could not read it).
_OWN = r"""
d=${k%/*}; [ -n "$d" ] || d=/; n=${k##*/}
enter "$d"
plain "$n"
kind "$n"
[ "$kd" = regular ] || die not-regular "kind=$kd" "path=$PWD/$n"
fp "$n"; [ "$h" = "$want" ] || die old-differs "path=$PWD/$n"
err=$(chown -h -- "$owner" "$n" 2>&1 && chmod "$mode" -- "$n" 2>&1) \
  || die owner-failed "owner=$owner" "mode=$mode" "path=$PWD/$n"
facts "$n"; say owned $F
"""


def own_script(path: str, owner: str, mode: int, sha256: str, effective: int) -> str:
    return _script(
        _OWN,
        {"eff": str(effective), "k": path, "owner": owner, "mode": f"{mode:o}", "want": sha256},
    )


# ---------------------------------------------------------------------------- answers


class Answer(NamedTuple):
    """One ``corokey-result`` line: its name and fields."""

    name: str
    fields: "Dict[str, str]"

    def get(self, field: str, default: str = "") -> str:
        return self.fields.get(field, default)


def parse_answer(line: str) -> "Optional[Answer]":
    """The answer on ``line``, or None when it is not one. ``path=`` or ``detail=`` takes
    the rest of the line."""
    if not line.startswith(RESULT + " "):
        return None
    rest = line[len(RESULT) + 1 :].rstrip("\n")
    name, _, rest = rest.partition(" ")
    fields: Dict[str, str] = {}
    while rest:
        if rest.startswith(("path=", "detail=")):
            key, _, value = rest.partition("=")
            fields[key] = value
            break
        item, _, rest = rest.partition(" ")
        key, sep, value = item.partition("=")
        if sep:
            fields[key] = value
    return Answer(name, fields)


class Failure(NamedTuple):
    message: str  # formatted with the answer's fields and node
    reference: str
    hint: str


#: Every named failure a node script can answer with: message, reference, hint.
FAILURES: "Dict[str, Failure]" = {
    "no-directory": Failure(
        "{node}: {path} does not exist or is not a directory",
        "node-no-directory",
        "create it on {node} (install -d -m 0755 {qpath}), or fix --key-path",
    ),
    "unsafe-directory": Failure(
        "{node}: {path} (owner uid {uid}, mode {mode}) can be written by others: they could "
        "swap the key for a link while it is written",
        "node-unsafe-directory",
        "on {node}: chown root {qpath} && chmod go-w {qpath}",
    ),
    "missing-tool": Failure(
        "{node} lacks {tool}, which corokey needs there",
        "node-missing-tool",
        "install it on {node} (flock is in util-linux)",
    ),
    "busy": Failure(
        "{node}: another corokey run holds the lock on {path} (or {node} is a second name of "
        "a node already in this run)",
        "node-busy",
        "wait for the other run to finish, and name each node once",
    ),
    "not-regular": Failure(
        "{node}: {path} is a {kind}, not a regular file; refusing to replace or keep it",
        "node-not-regular",
        "look at it on {node} and remove or replace it with the key file by hand",
    ),
    "no-space": Failure(
        "{node}: no space left to {step} a copy of the key in {path}",
        "node-no-space",
        "free space on {node}'s file system, then run the command again",
    ),
    "read-only": Failure(
        "{node}: {path} is on a read-only file system",
        "node-read-only",
        "remount it read-write on {node}, then run the command again",
    ),
    "no-permission": Failure(
        "{node}: permission denied to {step} in {path}",
        "node-no-permission",
        "log in as root on {node} (User root in ssh_config)",
    ),
    "write-failed": Failure(
        "{node}: cannot {step} {path}",
        "node-write-failed",
        "look at {node}'s file system and logs, then run the command again",
    ),
    "short-input": Failure(
        "{node}: the key arrived incomplete at {path}",
        "node-short-input",
        "check the connection to {node} and run the command again",
    ),
    "owner-failed": Failure(
        "{node}: cannot give {path} owner {owner} and mode {mode}",
        "node-owner-failed",
        "create the user and group on {node}, or choose another --profile",
    ),
    "changed-underneath": Failure(
        "{node}: the staged copy {path} changed between staging and commit",
        "node-changed-underneath",
        "find what else writes in that directory on {node}, then push again",
    ),
    "keep-old-failed": Failure(
        "{node}: cannot keep the previous key as {path}",
        "node-keep-old-failed",
        "look at {path} on {node}, then push again",
    ),
    "rename-failed": Failure(
        "{node}: cannot rename the new key into {path}",
        "node-rename-failed",
        "look at {path} on {node}, then push again",
    ),
    "no-old": Failure(
        "{node}: there is no previous key {path} to restore",
        "node-no-old",
        "copy the cluster's key there from a good node: corokey push --from GOODNODE",
    ),
    "old-differs": Failure(
        "{node}: {path} is not the key the cluster ran before; not restoring it",
        "node-old-differs",
        "copy the cluster's key there from a good node: corokey push --from GOODNODE",
    ),
    "command-failed": Failure(
        "{node}: the {what} command failed (exit status {status}): {detail}",
        "node-command-failed",
        "run it by hand on {node} to see why; --stop-command and --start-command set them",
    ),
    "unreadable": Failure(
        "{node}: cannot read {path} ({why}), so its fingerprint is unknown",
        "node-unreadable",
        "log in as root on {node} (User root in ssh_config); if root cannot read it either, "
        "look at {node}'s disk (dmesg) and copy the key there again",
    ),
    "maintenance-failed": Failure(
        "{node}: crm_attribute could not set maintenance-mode={value}",
        "node-maintenance-failed",
        "run crm_attribute --type crm_config --name maintenance-mode --update {value} on "
        "{node} by hand and look at its error",
    ),
    "cib-failed": Failure(
        "{node}: cibadmin -Q failed (exit status {status}): {detail}",
        "node-cib-failed",
        "ask a node where Pacemaker runs (--cib-from NODE), or name the nodes with --nodes",
    ),
    "reload-failed": Failure(
        "{node}: corosync-cfgtool -R failed (exit status {status})",
        "node-reload-failed",
        "run corokey doctor on {node}",
    ),
}


def describe(node: str, answer: "Answer") -> "Tuple[str, str, str]":
    """Message, reference and hint of a named failure, filled in."""
    failure = FAILURES.get(answer.name) or Failure(
        "{node}: unexpected answer '{answer}'",
        "node-unexpected",
        "run the command again; report it if it persists",
    )
    values = {k: _printable(v) for k, v in answer.fields.items()}
    values.setdefault("path", "the key's directory")
    values.setdefault("step", "write")
    values["qpath"] = shlex.quote(values["path"])
    values["node"] = node
    values["answer"] = _printable(answer.name)

    class _Blank(dict):  # type: ignore[type-arg]
        def __missing__(self, key: str) -> str:
            return "?"

    fill = _Blank(values)
    return (
        failure.message.format_map(fill),
        failure.reference,
        failure.hint.format_map(fill),
    )


def _printable(text: str) -> str:
    """No raw control characters from a node reach the admin's terminal."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
