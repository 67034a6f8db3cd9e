#!/bin/sh
# Install corokey for root on Debian/Ubuntu: a virtual environment in
# /opt/corokey, with corosync-keygen and corokey linked into /usr/local/sbin
# (which comes before /usr/sbin in root's PATH, so our corosync-keygen is the
# one run even when Debian's corosync package is installed).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=${COROKEY_PREFIX:-/opt/corokey}
bindir=${COROKEY_BINDIR:-/usr/local/sbin}

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv
fi
python3 -m venv "$prefix"
"$prefix/bin/pip" install --quiet --disable-pip-version-check "$here"
mkdir -p "$bindir"
ln -sf "$prefix/bin/corosync-keygen" "$bindir/corosync-keygen"
ln -sf "$prefix/bin/corokey" "$bindir/corokey"
# Manual pages (both commands are in sbin: section 8) and bash completion, in
# the local directory bash-completion loads on demand (/etc/bash_completion.d
# is the legacy one, sourced eagerly by every interactive shell).  What an
# earlier install.sh put in the old places goes.
rm -f /usr/local/share/man/man1/corokey.1 /etc/bash_completion.d/corokey
install -D -m 0644 "$here/docs/man/corokey.8" /usr/local/share/man/man8/corokey.8
install -D -m 0644 "$here/docs/man/corosync-keygen.8" /usr/local/share/man/man8/corosync-keygen.8
install -D -m 0644 "$here/completions/corokey.bash" \
    /usr/local/share/bash-completion/completions/corokey
# The key's home; Debian's corosync package makes it too (corosync-keygen,
# like corosync's own, refuses to create missing directories).
install -d -m 0755 /etc/corosync
echo "corokey installed in $prefix; commands linked in $bindir"
# The Debian package and this install do not mix: these links come first in
# root's PATH and survive "apt remove corokey".
if dpkg-query -W -f '${Status}' corokey 2>/dev/null | grep -q ' installed$'; then
    echo "install.sh: warning: the corokey Debian package is installed too; $bindir/corokey" \
        "and $bindir/corosync-keygen now shadow it (use one of the two; see docs/install.md)" >&2
fi
