#!/bin/sh
# Install what the tests need (Debian/Ubuntu, as root), then run the whole suite:
# ruff, mypy --strict and pytest.  Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v corosync >/dev/null 2>&1 || missing="$missing corosync"
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
command -v ssh >/dev/null 2>&1 || missing="$missing openssh-client"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v nsenter >/dev/null 2>&1 || missing="$missing util-linux"
# A login shell whose arithmetic differs from sh's (the node scripts must not care).
command -v zsh >/dev/null 2>&1 || missing="$missing zsh"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
# The Debian package: build it with its build-time tests (scripts/build-deb.sh),
# lintian, and mmdebstrap for the Debian 12 and 13 roots it is tested in
# (tests/debroot.py; autopkgtest runs inside them, so it is not needed here).
for pkg in dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all python3-pytest \
    python3-hypothesis python3-setuptools lintian mmdebstrap; do
    dpkg-query -W -f '${Status}\n' "$pkg" 2>/dev/null | grep -q ' installed$' ||
        missing="$missing $pkg"
done
# Build deps of the corosync 2.x test hosts (tests/corosync2.py builds them once per machine).
for pkg in libqb-dev libnss3-dev autoconf automake libtool pkg-config make gcc; do
    dpkg-query -W -f '${Status}\n' "$pkg" 2>/dev/null | grep -q ' installed$' ||
        missing="$missing $pkg"
done
# Pacemaker on the cluster test hosts (tests/pacemakerhosts.py); pacemaker-remoted comes from
# pacemaker-remote, which conflicts with pacemaker: the tests fetch it with apt-get download.
for pkg in pacemaker pacemaker-cli-utils; do
    dpkg-query -W -f '${Status}\n' "$pkg" 2>/dev/null | grep -q ' installed$' ||
        missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing packages:$missing; install them as root (apt-get install$missing)" >&2
        exit 2
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y \
        --no-install-recommends $missing
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test,ansible]'
.venv/bin/ruff check --output-format=concise src tests bench
.venv/bin/mypy
# Two workers, a test file each at a time: the long files mostly wait (Pacemaker's key
# cache, cluster restarts), so two run beside each other in about half the time.
# COROKEY_TEST_WORKERS=0 runs the tests in this process, one after another.
exec .venv/bin/pytest -n "${COROKEY_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
