"""The Debian package (debian/, scripts/build-deb.sh), tested in a throwaway Debian 12 root.

corokey takes over /usr/sbin/corosync-keygen and its manual page from corosync
with dpkg-divert --rename.  Each scenario installs, upgrades and removes the
packages in its own copy of the cached root (tests/debroot.py) and checks at
every step which corosync-keygen is in place, the diversions, and that an
existing /etc/corosync/authkey stays byte for byte the same.
"""

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple, TypeVar

import pytest

from tests.debroot import DebianRoot, RootUnavailable, cached_root_tarball

REPO = Path(__file__).resolve().parent.parent
KEYGEN = "/usr/sbin/corosync-keygen"
KEYGEN_DIVERTED = "/usr/sbin/corosync-keygen.corosync"
MAN = "/usr/share/man/man8/corosync-keygen.8.gz"
MAN_DIVERTED = "/usr/share/man/man8/corosync-keygen.corosync.8.gz"
AUTHKEY = "/etc/corosync/authkey"
DEB_IN_ROOT = "/tmp/pkg"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, namespaces)")
Test = TypeVar("Test", bound=Callable[..., None])


def in_debian_root(test: Test) -> Test:
    """The marks of a scenario that runs in a copy of the Debian root."""
    marked: Test = needs_root(pytest.mark.root(pytest.mark.slow(test)))
    return marked


def test_changelog_version_is_the_project_version() -> None:
    """debian/changelog must follow pyproject.toml, or the .deb lies about its version."""
    changelog = (REPO / "debian/changelog").read_text().splitlines()[0]
    pyproject = (REPO / "pyproject.toml").read_text()
    deb_version = re.match(r"corokey \(([^)]+)\)", changelog)
    project_version = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert deb_version and project_version
    assert deb_version.group(1).split("-")[0] == project_version.group(1)


# --- the package, built once per test session -------------------------------------------


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """corokey_VERSION_all.deb built from this checkout by scripts/build-deb.sh."""
    if shutil.which("dpkg-buildpackage") is None:
        pytest.skip("dpkg-buildpackage not installed (scripts/test.sh installs the build tools)")
    outdir = tmp_path_factory.mktemp("deb")
    result = subprocess.run(
        ["sh", str(REPO / "scripts/build-deb.sh"), "--no-lintian", str(outdir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def deb_members(deb: Path) -> Dict[str, bytes]:
    """Every regular file of a .deb's data, by absolute path, with its bytes."""
    data = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                files["/" + member.name.removeprefix("./")] = extracted.read()
    return files


@pytest.mark.slow
def test_lintian_is_clean(deb: Path) -> None:
    if shutil.which("lintian") is None:
        pytest.skip("lintian not installed (scripts/test.sh installs it)")
    result = subprocess.run(
        ["lintian", "--fail-on", "error,warning", "--info", str(deb)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not re.search(r"^[EW]: ", result.stdout, re.M), result.stdout


@pytest.mark.slow
def test_package_contents(deb: Path) -> None:
    files = deb_members(deb)
    control = subprocess.run(
        ["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"^Depends: .*python3 \(>= 3\.9\)", control, re.M), control
    assert re.search(r"^Depends: .*openssh-client", control, re.M), control
    assert re.search(r"^Recommends: corosync$", control, re.M), control
    assert "Architecture: all" in control
    for path in (
        "/usr/sbin/corokey",
        KEYGEN,
        MAN,
        "/usr/share/man/man1/corokey.1.gz",
        "/usr/share/bash-completion/completions/corokey",
        "/usr/lib/python3/dist-packages/corokey/cli/keygen.py",
    ):
        assert path in files, sorted(files)
    assert not [p for p in files if p.startswith("/usr/bin/")], "commands belong in /usr/sbin"
    assert files[KEYGEN].startswith(b"#!/usr/bin/python3\n")


# --- scenarios in the root ----------------------------------------------------------------


@pytest.fixture(scope="session")
def root_tarball() -> Path:
    try:
        return cached_root_tarball()
    except RootUnavailable as why:
        pytest.skip(f"no Debian 12 root: {why}")


class Scenario:
    """One extracted root, the packages' files, and the authkey that must not change."""

    def __init__(self, root: DebianRoot, deb: Path) -> None:
        self.root = root
        self.deb_name = deb.name
        self.ours = deb_members(deb)
        archives = root.host_path("/var/cache/apt/archives")
        corosync_debs = sorted(archives.glob("corosync_*.deb"))
        assert len(corosync_debs) == 1, corosync_debs
        self.corosyncs = deb_members(corosync_debs[0])
        self.key = b""
        pkgdir = root.host_path(DEB_IN_ROOT)
        pkgdir.mkdir()
        shutil.copy(deb, pkgdir / deb.name)

    def run(self, *argv: str) -> "subprocess.CompletedProcess[str]":
        return self.root.run(argv)

    def read(self, path: str) -> bytes:
        return self.root.host_path(path).read_bytes()

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.root.host_path(path))

    def write_authkey(self) -> None:
        self.key = os.urandom(256)
        path = self.root.host_path(AUTHKEY)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.key)
        path.chmod(0o400)

    def assert_authkey_untouched(self) -> None:
        path = self.root.host_path(AUTHKEY)
        assert path.read_bytes() == self.key, "the existing authkey changed"
        assert path.stat().st_mode & 0o7777 == 0o400

    def diversions(self) -> List[str]:
        listing = self.run("dpkg-divert", "--list").stdout
        return sorted(line for line in listing.splitlines() if "corokey" in line)

    def install_corokey(self, deb_name: str = "") -> None:
        self.run(
            "apt-get",
            "install",
            "--yes",
            "--no-install-recommends",
            f"{DEB_IN_ROOT}/{deb_name or self.deb_name}",
        )

    def assert_ours_in_place(self, corosync_installed: bool) -> None:
        assert self.diversions() == [
            f"diversion of {KEYGEN} to {KEYGEN_DIVERTED} by corokey",
            f"diversion of {MAN} to {MAN_DIVERTED} by corokey",
        ]
        assert self.read(KEYGEN) == self.ours[KEYGEN]
        assert self.read(MAN) == self.ours[MAN]
        if corosync_installed:
            assert self.read(KEYGEN_DIVERTED) == self.corosyncs[KEYGEN]
            assert self.read(MAN_DIVERTED) == self.corosyncs[MAN]
        else:
            assert not self.exists(KEYGEN_DIVERTED)
            assert not self.exists(MAN_DIVERTED)
        self.assert_keygen_is_ours()
        self.assert_authkey_untouched()

    def assert_keygen_is_ours(self) -> None:
        self.run("rm", "-f", "/tmp/F")
        made = self.run(KEYGEN, "-k", "/tmp/F")
        assert made.stdout.endswith("Writing corosync key to /tmp/F.\n"), made.stdout
        key = self.root.host_path("/tmp/F")
        assert key.stat().st_size == 256
        assert key.stat().st_mode & 0o7777 == 0o400
        # By name too, and with the messages only corokey's tool has.
        usage = self.run("corosync-keygen", "--help").stdout
        assert "corokey push" in usage, usage
        failed = self.root.run(["corosync-keygen", "-k", "/nonexistent/F"], check=False)
        assert failed.returncode == 2
        assert "corosync-keygen: hint: create the directory first" in failed.stderr
        fingerprint = self.run("corokey", "fingerprint", "--hex", "/tmp/F").stdout
        assert hashlib.sha256(key.read_bytes()).hexdigest() in fingerprint

    def assert_corosyncs_back(self) -> None:
        assert self.diversions() == []
        assert self.read(KEYGEN) == self.corosyncs[KEYGEN]
        assert self.read(MAN) == self.corosyncs[MAN]
        assert not self.exists(KEYGEN_DIVERTED)
        assert not self.exists(MAN_DIVERTED)
        assert not self.exists("/usr/sbin/corokey")
        self.assert_authkey_untouched()

    def assert_nothing_of_ours(self) -> None:
        """After purge: no file, diversion, dpkg record or byte-compiled leftover of corokey."""
        status = self.root.run(["dpkg-query", "--show", "corokey"], check=False)
        assert status.returncode != 0, status.stdout
        assert self.diversions() == []
        for path in self.ours:
            if path not in (KEYGEN, MAN):  # corosync's, when corosync is installed
                assert not self.exists(path), path
        leftovers = self.run(
            "find",
            "/",
            "-xdev",
            "(",
            "-path",
            "/tmp",
            "-o",
            "-path",
            "/var/log",
            ")",
            "-prune",
            "-o",
            "(",
            "-name",
            "*corokey*",
            "-o",
            "-name",
            "*.corosync*",
            ")",
            "-print",
        ).stdout.split()
        assert leftovers == []


@pytest.fixture
def scenario(root_tarball: Path, deb: Path) -> Iterator[Scenario]:
    root = DebianRoot.extract(root_tarball)
    try:
        yield Scenario(root, deb)
    finally:
        root.remove()


def newer_version_of(deb: Path, workdir: Path) -> Tuple[Path, str]:
    """The same package as version VERSION+upgrade, to test a real upgrade."""
    tree = workdir / "tree"
    subprocess.run(["dpkg-deb", "--raw-extract", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN/control"
    version = re.search(r"^Version: (\S+)$", control.read_text(), re.M)
    assert version
    newer = version.group(1) + "+upgrade"
    control.write_text(control.read_text().replace(version.group(0), f"Version: {newer}"))
    out = workdir / f"corokey_{newer}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)],
        check=True,
        capture_output=True,
    )
    return out, newer


@in_debian_root
def test_corosync_then_corokey(scenario: Scenario) -> None:
    s = scenario
    s.write_authkey()
    s.run("apt-get", "install", "--yes", "--no-install-recommends", "corosync")
    assert s.read(KEYGEN) == s.corosyncs[KEYGEN]
    s.assert_authkey_untouched()

    s.install_corokey()
    s.assert_ours_in_place(corosync_installed=True)

    # An upgrade of corosync (same files, same maintainer scripts) keeps ours.
    s.run("apt-get", "install", "--yes", "--reinstall", "--no-install-recommends", "corosync")
    s.assert_ours_in_place(corosync_installed=True)

    s.run("apt-get", "remove", "--yes", "corokey")
    s.assert_corosyncs_back()
    s.run("apt-get", "purge", "--yes", "corokey")
    s.assert_corosyncs_back()
    s.assert_nothing_of_ours()


@in_debian_root
def test_corokey_then_corosync_and_upgrades(scenario: Scenario, deb: Path) -> None:
    s = scenario
    s.write_authkey()
    s.install_corokey()
    assert not s.exists("/usr/sbin/corosync")
    s.assert_ours_in_place(corosync_installed=False)

    # Reinstalling and upgrading corokey run the old postrm with "upgrade":
    # the diversion must survive both.  (Had it gone, installing corosync next
    # would fail: our corosync-keygen would be in its way.)
    s.run("apt-get", "install", "--yes", "--reinstall", f"{DEB_IN_ROOT}/{s.deb_name}")
    s.assert_ours_in_place(corosync_installed=False)

    s.run("apt-get", "install", "--yes", "--no-install-recommends", "corosync")
    s.assert_ours_in_place(corosync_installed=True)

    newer, version = newer_version_of(deb, s.root.host_path(DEB_IN_ROOT))
    s.install_corokey(newer.name)
    assert s.run("dpkg-query", "--show", "--showformat=${Version}", "corokey").stdout == version
    s.assert_ours_in_place(corosync_installed=True)

    s.run("apt-get", "purge", "--yes", "corokey")
    s.assert_corosyncs_back()
    s.assert_nothing_of_ours()


@in_debian_root
def test_corokey_alone_removes_cleanly(scenario: Scenario) -> None:
    """Without corosync there is nothing to give back: remove leaves no corosync-keygen."""
    s = scenario
    s.install_corokey()
    s.assert_keygen_is_ours()
    s.run("apt-get", "remove", "--yes", "corokey")
    assert s.diversions() == []
    assert not s.exists(KEYGEN)
    assert not s.exists(MAN)
    s.run("dpkg", "--purge", "corokey")
    s.assert_nothing_of_ours()
