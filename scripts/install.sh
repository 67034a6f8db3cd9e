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
# Manual pages and bash completion.
install -D -m 0644 "$here/docs/man/corokey.1" /usr/local/share/man/man1/corokey.1
install -D -m 0644 "$here/docs/man/corosync-keygen.8" /usr/local/share/man/man8/corosync-keygen.8
install -D -m 0644 "$here/completions/corokey.bash" /etc/bash_completion.d/corokey
# The key's home; Debian's corosync package makes it too (corosync-keygen,
# like corosync's own, refuses to create missing directories).
install -d -m 0755 /etc/corosync
echo "corokey installed in $prefix; commands linked in $bindir"
