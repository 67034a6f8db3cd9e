#!/bin/sh
# Build the corokey Debian package (Debian 12 or newer) from this checkout:
#
#   sh scripts/build-deb.sh [--no-lintian] [OUTDIR]
#
# The build runs in a copy of the source tree in a temp dir, so nothing is
# written into the checkout except OUTDIR (default: dist/deb, ignored by git),
# which receives corokey_VERSION_all.deb and its .buildinfo and .changes.
# lintian then checks the package and fails the build on any error or warning.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

lintian=yes
if [ "${1:-}" = "--no-lintian" ]; then
    lintian=no
    shift
fi
outdir=${1:-$here/dist/deb}

tools="dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools"
[ "$lintian" = no ] || tools="$tools lintian"
missing() {
    echo "build-deb.sh: $1; install the build tools as root:" \
        "apt-get install --no-install-recommends $tools" >&2
    exit 2
}
command -v dpkg-buildpackage >/dev/null 2>&1 || missing "dpkg-buildpackage not found"
[ "$lintian" = no ] || command -v lintian >/dev/null 2>&1 || missing "lintian not found"
version=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)

work=$(mktemp -d "${TMPDIR:-/tmp}/corokey-deb.XXXXXXXX")
trap 'rm -rf "$work"' EXIT
# The files of the checkout as git sees them (tracked, and new files not
# ignored), so a .venv or build/ left in the tree never ends up in the package.
mkdir "$work/src"
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$here" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
        xargs -0 -r cp --parents -P -t "$work/src")
else
    (cd "$here" && tar -cf - --exclude=./.venv --exclude=./build --exclude=./dist \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=./.git . ) |
        tar -xf - -C "$work/src"
fi

# Debian's own Python must build the package, never a python3 from pyenv, a
# venv or /usr/local that comes first in the caller's PATH.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
(cd "$work/src" && dpkg-checkbuilddeps) || missing "build dependencies missing (above)"
(cd "$work/src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
    cat "$work/build.log" >&2
    echo "build-deb.sh: dpkg-buildpackage failed (log above)" >&2
    exit 1
}
mkdir -p "$outdir"
changes=$(cd "$work" && ls corokey_"$version"_*.changes)
mv -f "$work/corokey_${version}_all.deb" "$work"/corokey_"$version"_*.buildinfo \
    "$work/$changes" "$outdir/"
if [ "$lintian" = yes ]; then
    lintian --info --fail-on error,warning "$outdir/$changes"
fi
echo "$outdir/corokey_${version}_all.deb"
