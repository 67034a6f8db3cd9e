#!/bin/sh
# Build the corokey source and binary packages (Debian 12 or newer) from this
# checkout:
#
#   sh scripts/build-deb.sh [--no-lintian] [OUTDIR]
#
# The build runs in a copy of the source tree in a temp dir, so nothing is
# written into the checkout except OUTDIR (default: dist/deb, ignored by git),
# which receives the source package (.dsc, the .orig tarball made from the
# checkout without debian/, the .debian tarball), corokey_VERSION_all.deb and
# the .buildinfo and .changes.  lintian then checks all of it (the .changes,
# --pedantic, info tags and experimental ones shown) and fails on any tag
# that is not overridden in debian/.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

lintian=yes
if [ "${1:-}" = "--no-lintian" ]; then
    lintian=no
    shift
fi
outdir=${1:-$here/dist/deb}

tools="dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools python3-pytest python3-hypothesis"
[ "$lintian" = no ] || tools="$tools lintian"
missing() {
    echo "build-deb.sh: $1; install the build tools as root:" \
        "apt-get install --no-install-recommends $tools" >&2
    exit 2
}
command -v dpkg-buildpackage >/dev/null 2>&1 || missing "dpkg-buildpackage not found"
[ "$lintian" = no ] || command -v lintian >/dev/null 2>&1 || missing "lintian not found"
version=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
upstream=${version%-*}
timestamp=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Timestamp)

work=$(mktemp -d "${TMPDIR:-/tmp}/corokey-deb.XXXXXXXX")
trap 'rm -rf "$work"' EXIT
# The files of the checkout as git sees them (tracked, and new files not
# ignored), so a .venv or build/ left in the tree never ends up in the package.
tree=$work/corokey-$upstream
mkdir "$tree"
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$here" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
        xargs -0 -r cp --parents -P -t "$tree")
else
    (cd "$here" && tar -cf - --exclude=./.venv --exclude=./build --exclude=./dist \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=./.git . ) |
        tar -xf - -C "$tree"
fi

# Debian's own Python must build the package, never a python3 from pyenv, a
# venv or /usr/local that comes first in the caller's PATH.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
(cd "$tree" && dpkg-checkbuilddeps) || missing "build dependencies missing (above)"
# The upstream tarball is the checkout without debian/, the same bytes for the
# same files (names sorted, owner root, times from the changelog).
(cd "$work" && tar --create --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$timestamp" --exclude="corokey-$upstream/debian" "corokey-$upstream" |
    xz -6 >"corokey_$upstream.orig.tar.xz")
(cd "$tree" && dpkg-buildpackage -us -uc) >"$work/build.log" 2>&1 || {
    cat "$work/build.log" >&2
    echo "build-deb.sh: dpkg-buildpackage failed (log above)" >&2
    exit 1
}
mkdir -p "$outdir"
changes=$(cd "$work" && ls corokey_"$version"_*.changes)
mv -f "$work/corokey_${version}_all.deb" "$work"/corokey_"$version"_*.buildinfo \
    "$work/corokey_$version.dsc" "$work/corokey_$version.debian.tar.xz" \
    "$work/corokey_$upstream.orig.tar.xz" "$work/$changes" "$outdir/"
if [ "$lintian" = yes ]; then
    # Every tag shown fails the build.  (lintian 2.116's --fail-on info also
    # counts the hints a screen masks, such as python/egg/metadata's, so the
    # output is what is judged.)
    report=$(lintian --pedantic -I -E "$outdir/$changes") || {
        printf '%s\n' "$report" >&2
        echo "build-deb.sh: lintian failed" >&2
        exit 1
    }
    if printf '%s\n' "$report" | grep -q '^[EWIPX]: '; then
        printf '%s\n' "$report" >&2
        echo "build-deb.sh: lintian found the tags above" >&2
        exit 1
    fi
fi
echo "$outdir/corokey_${version}_all.deb"
