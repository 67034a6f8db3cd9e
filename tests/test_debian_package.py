"""The Debian package (debian/, scripts/build-deb.sh), tested in throwaway Debian 12 and 13 roots.

corokey takes over /usr/sbin/corosync-keygen and its manual page from corosync
with dpkg-divert --rename.  Each scenario installs, upgrades and removes the
packages in its own copy of a cached root (tests/debroot.py) and checks at
every step which corosync-keygen is in place, the diversions, and that an
existing /etc/corosync/authkey stays byte for byte the same.  The package's
autopkgtests (debian/tests/) run there too, with autopkgtest itself.

Debian 12 gets every scenario; Debian 13 the install and diversion with
corosync and the autopkgtests, which keeps the suite's time down.
"""

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, TypeVar

import pytest

from tests.debroot import SUITE, DebianRoot, RootUnavailable, cached_root_tarball, root_name

REPO = Path(__file__).resolve().parent.parent
KEYGEN = "/usr/sbin/corosync-keygen"
KEYGEN_DIVERTED = "/usr/sbin/corosync-keygen.corosync"
MAN = "/usr/share/man/man8/corosync-keygen.8.gz"
MAN_DIVERTED = "/usr/share/man/man8/corosync-keygen.corosync.8.gz"
AUTHKEY = "/etc/corosync/authkey"
DEB_IN_ROOT = "/tmp/pkg"
# The roots the package is tested in: Debian 12 (bookworm) for every scenario, and 13.
SUITES = ("bookworm", "trixie")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, namespaces)")
Test = TypeVar("Test", bound=Callable[..., None])


def in_debian_root(test: Test) -> Test:
    """The marks of a scenario that runs in a copy of the Debian root."""
    marked: Test = needs_root(pytest.mark.root(pytest.mark.slow(test)))
    return marked


def test_changelog_version_is_the_project_version() -> None:
    """debian/changelog must follow pyproject.toml, or the .deb lies about its version.

    The software has its own upstream, so the package is 3.0 (quilt) with a Debian revision.
    """
    changelog = (REPO / "debian/changelog").read_text().splitlines()[0]
    pyproject = (REPO / "pyproject.toml").read_text()
    deb_version = re.match(r"corokey \(([^)]+)\) unstable;", changelog)
    project_version = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert deb_version and project_version
    upstream, _, revision = deb_version.group(1).rpartition("-")
    assert upstream == project_version.group(1)
    assert revision.isdigit()
    assert (REPO / "debian/source/format").read_text() == "3.0 (quilt)\n"


def test_license_is_expat_everywhere() -> None:
    """One license text: the project's, the Ansible collection's copy, debian/copyright's."""
    license_text = (REPO / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n\nCopyright (c) 2026 the corokey authors\n")
    collection = REPO / "ansible_collections/corokey/corosync/LICENSE"
    assert collection.read_text() == license_text
    assert 'license = { text = "MIT" }' in (REPO / "pyproject.toml").read_text()
    copyright_file = (REPO / "debian/copyright").read_text()
    assert "Files: *\nCopyright: 2026 the corokey authors\nLicense: Expat\n" in copyright_file
    grant = license_text.split("\n\n", 2)[2]
    dep5 = copyright_file.split("\nLicense: Expat\n", 2)[2]
    as_dep5 = "\n".join(" " + line if line else " ." for line in grant.strip().split("\n"))
    assert dep5.strip("\n") == as_dep5


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
    """The source and binary packages, as a sponsor checks them: not one tag shown."""
    if shutil.which("lintian") is None:
        pytest.skip("lintian not installed (scripts/test.sh installs it)")
    (changes,) = deb.parent.glob("corokey_*.changes")
    result = subprocess.run(
        ["lintian", "--pedantic", "-I", "-E", str(changes)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not re.search(r"^[EWIPX]: ", result.stdout, re.M), result.stdout


@pytest.mark.slow
def test_source_package(deb: Path) -> None:
    (dsc,) = deb.parent.glob("corokey_*.dsc")
    fields = dsc.read_text()
    assert re.search(r"^Format: 3\.0 \(quilt\)$", fields, re.M), fields
    assert re.search(r"^Version: 0\.1\.0-1$", fields, re.M), fields
    (orig,) = deb.parent.glob("corokey_*.orig.tar.xz")
    with tarfile.open(orig) as tar:
        names = tar.getnames()
    assert "corokey-0.1.0/LICENSE" in names
    assert not [n for n in names if n.startswith("corokey-0.1.0/debian")]
    assert not [n for n in names if "/.venv" in n or "__pycache__" in n]


@pytest.mark.slow
def test_package_contents(deb: Path) -> None:
    files = deb_members(deb)
    control = subprocess.run(
        ["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    # dh_python3's python3:any is the whole Python dependency (every target suite has 3.11+).
    assert re.search(r"^Depends: python3:any$", control, re.M), control
    # An admin machine needs no corosync (its postinst would start a one-node cluster), and
    # the one-node commands need no ssh.
    assert re.search(r"^Recommends: openssh-client$", control, re.M), control
    assert re.search(r"^Enhances: corosync$", control, re.M), control
    assert "Architecture: all" in control
    for path in (
        "/usr/sbin/corokey",
        KEYGEN,
        MAN,
        "/usr/share/man/man8/corokey.8.gz",
        "/usr/share/bash-completion/completions/corokey",
        "/usr/lib/python3/dist-packages/corokey/cli/keygen.py",
        "/usr/share/doc/corokey/README.Debian",
        "/usr/share/doc/corokey/copyright",
    ):
        assert path in files, sorted(files)
    # dh_compress compresses a doc over 4 KiB: the README may be either.
    readme = "/usr/share/doc/corokey/README.md"
    assert readme in files or readme + ".gz" in files, sorted(files)
    docs = {p.split("/")[-1].removesuffix(".gz") for p in files if "/usr/share/doc/" in p}
    assert {
        "errors.md",
        "corokey.md",
        "corosync-keygen.md",
        "install.md",
        "corosync-conf.md",
        "pacemaker.md",
    } <= docs, docs
    assert not [p for p in files if "/man1/" in p], "commands in /usr/sbin: manual in section 8"
    assert not [p for p in files if p.startswith("/usr/bin/")], "commands belong in /usr/sbin"
    assert files[KEYGEN].startswith(b"#!/usr/bin/python3\n")


# --- scenarios in the root ----------------------------------------------------------------


_ROOTS: Dict[str, Path] = {}


def root_tarball(suite: str) -> Path:
    """The cached root of suite (built once per machine); skips when it cannot be built."""
    if suite not in _ROOTS:
        try:
            _ROOTS[suite] = cached_root_tarball(suite=suite)
        except RootUnavailable as why:
            pytest.skip(f"no {root_name(suite)}: {why}")
    return _ROOTS[suite]


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

    def fails(self, *argv: str) -> "subprocess.CompletedProcess[str]":
        result = self.root.run(argv, check=False)
        assert result.returncode != 0, f"{' '.join(argv)} succeeded:\n{result.stdout}"
        return result

    def status(self, package: str) -> str:
        """dpkg's status of package ("install ok installed"), or "" when dpkg has no record."""
        return self.root.run(
            ["dpkg-query", "--show", "--showformat=${Status}", package], check=False
        ).stdout

    def version(self, package: str) -> str:
        return self.run("dpkg-query", "--show", "--showformat=${Version}", package).stdout

    def assert_not_installed(self, package: str) -> None:
        """Not installed, not half-installed: dpkg has no files of it and nothing to finish."""
        status = self.status(package)
        assert status == "" or status.endswith(" not-installed"), status
        assert self.run("dpkg", "--audit").stdout == ""

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

    def install_corosync(self) -> None:
        self.run("apt-get", "install", "--yes", "--no-install-recommends", "corosync")

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
def scenario(request: pytest.FixtureRequest, deb: Path) -> Iterator[Scenario]:
    """A scenario in a fresh copy of the Debian 12 root, or of the suite given by indirect=."""
    suite = getattr(request, "param", SUITE)
    root = DebianRoot.extract(root_tarball(suite))
    try:
        yield Scenario(root, deb)
    finally:
        root.remove()


in_both_roots = pytest.mark.parametrize(
    "scenario", SUITES, indirect=True, ids=[root_name(s) for s in SUITES]
)


def repacked(deb: Path, workdir: Path, name: str, change: Callable[[Path], None]) -> Path:
    """deb rebuilt into workdir/NAME/ after change(tree) edited its files and DEBIAN/."""
    tree = workdir / f"{name}-tree"
    subprocess.run(["dpkg-deb", "--raw-extract", str(deb), str(tree)], check=True)
    change(tree)
    out = workdir / name
    out.mkdir()
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)],
        check=True,
        capture_output=True,
    )
    (built,) = out.iterdir()  # named PACKAGE_VERSION_ARCH.deb by dpkg-deb
    return built


def version_of(deb: Path) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def bump_version(tree: Path, suffix: str) -> None:
    control = tree / "DEBIAN/control"
    version = re.search(r"^Version: (\S+)$", control.read_text(), re.M)
    assert version
    newer = f"Version: {version.group(1)}{suffix}"
    control.write_text(control.read_text().replace(version.group(0), newer))


@in_debian_root
@in_both_roots
def test_corosync_then_corokey(scenario: Scenario) -> None:
    s = scenario
    s.write_authkey()
    s.install_corosync()
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

    s.install_corosync()
    s.assert_ours_in_place(corosync_installed=True)

    pkgdir = s.root.host_path(DEB_IN_ROOT)
    newer = repacked(deb, pkgdir, "newer", lambda tree: bump_version(tree, "+upgrade"))
    s.install_corokey(str(newer.relative_to(pkgdir)))
    assert s.version("corokey") == version_of(newer)
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
    # Installed without its Recommends: no ssh, and the one-node commands above worked; the
    # commands that need ssh say so.
    assert not s.exists("/usr/bin/ssh")
    verify = s.root.run(["corokey", "verify", "--nodes", "node1"], check=False)
    assert verify.returncode == 2
    assert "corokey: error[no-ssh]:" in verify.stderr, verify.stderr
    assert not s.exists("/root/.cache/corokey")  # nothing made for a command that cannot run
    s.run("apt-get", "remove", "--yes", "corokey")
    assert s.diversions() == []
    assert not s.exists(KEYGEN)
    assert not s.exists(MAN)
    s.run("dpkg", "--purge", "corokey")
    s.assert_nothing_of_ours()


@in_debian_root
def test_default_install_pulls_no_corosync(scenario: Scenario) -> None:
    """apt's default install (with Recommends) on an admin machine: the ssh client, no cluster.

    With corosync recommended, this install started corosync.service with Debian's one-node
    configuration on a machine that only pushes keys.
    """
    s = scenario
    s.write_authkey()
    s.run("apt-get", "install", "--yes", f"{DEB_IN_ROOT}/{s.deb_name}")
    assert s.status("openssh-client") == "install ok installed"
    s.assert_not_installed("corosync")
    assert not s.exists("/usr/sbin/corosync")
    s.assert_ours_in_place(corosync_installed=False)


def foreign_diversion(owner: str) -> List[str]:
    """The dpkg-divert argv that gives /usr/sbin/corosync-keygen to owner (or the local admin)."""
    who = ["--local"] if owner == "LOCAL" else ["--package", owner]
    return ["dpkg-divert", *who, "--add", "--rename", "--divert", KEYGEN + ".other", KEYGEN]


@in_debian_root
@pytest.mark.parametrize("owner", ["other-keygen", "LOCAL"])
def test_a_foreign_diversion_is_refused_and_kept(scenario: Scenario, owner: str) -> None:
    """preinst refuses with the diversion in the way and its undo; abort-install leaves it alone.

    Before the guard, preinst's dpkg-divert failed ("clashes with"), then postrm abort-install
    failed too ("mismatch on package"), leaving corokey half-installed and unremovable.
    """
    s = scenario
    s.write_authkey()
    s.install_corosync()
    s.run(*foreign_diversion(owner))
    theirs = s.run("dpkg-divert", "--list").stdout

    refused = s.fails("dpkg", "--install", f"{DEB_IN_ROOT}/{s.deb_name}")
    who = "the local admin" if owner == "LOCAL" else f"package {owner}"
    assert f"corokey: {KEYGEN} is already diverted to {KEYGEN}.other by {who};" in refused.stderr
    undo = foreign_diversion(owner)
    undo[undo.index("--add")] = "--remove"
    undo.remove("--divert")
    undo.remove(KEYGEN + ".other")
    if owner == "LOCAL":
        fix = f"first undo that diversion: {' '.join(undo)}"
    else:
        fix = f"first remove {owner}, whose diversion it is (apt remove {owner})"
    assert f"corokey: to install corokey, {fix}\n" in refused.stderr, refused.stderr
    # Nothing changed: no trace of corokey in dpkg's database, their diversion as it was.
    s.assert_not_installed("corokey")
    assert s.run("dpkg-divert", "--list").stdout == theirs
    assert s.read(KEYGEN + ".other") == s.corosyncs[KEYGEN]
    assert not s.exists(KEYGEN)
    s.assert_authkey_untouched()

    # Once the diversion is gone (undone, or with the package that made it), corokey installs.
    s.run(*undo)
    s.install_corokey()
    s.assert_ours_in_place(corosync_installed=True)


def fail_after_the_diversions(tree: Path) -> None:
    """preinst fails after adding the diversions (as a full disk would)."""
    preinst = tree / "DEBIAN/preinst"
    script = preinst.read_text()
    assert script.endswith("\nexit 0\n")
    preinst.write_text(script.removesuffix("exit 0\n") + "echo injected failure >&2\nexit 1\n")


@in_debian_root
def test_an_aborted_install_gives_corosyncs_back(scenario: Scenario, deb: Path) -> None:
    """preinst diverted, then failed: dpkg's postrm abort-install removes our diversions."""
    s = scenario
    s.write_authkey()
    s.install_corosync()
    pkgdir = s.root.host_path(DEB_IN_ROOT)
    failing = repacked(deb, pkgdir, "failing", fail_after_the_diversions)
    aborted = s.fails("dpkg", "--install", f"{DEB_IN_ROOT}/{failing.relative_to(pkgdir)}")
    assert "injected failure" in aborted.stderr, aborted.stderr
    s.assert_not_installed("corokey")
    assert s.diversions() == []
    assert s.read(KEYGEN) == s.corosyncs[KEYGEN]
    assert s.read(MAN) == s.corosyncs[MAN]
    assert not s.exists(KEYGEN_DIVERTED)
    s.assert_authkey_untouched()


@in_debian_root
def test_postrm_disappear_removes_only_our_diversions(scenario: Scenario) -> None:
    """postrm disappear, run as dpkg runs it when another package took over all our files.

    dpkg cannot get there in a test: while corokey's diversion stands, no other package can
    take our /usr/sbin/corosync-keygen (its copy goes to the diverted name, which is also why
    corosync cannot be installed in a real disappear: it would clash there).  So the script is
    called with dpkg's arguments, twice: the second finds nothing of ours and changes nothing.
    """
    s = scenario
    s.install_corokey()
    # Another package's diversion elsewhere must survive it.
    s.run("dpkg-divert", "--package", "other", "--add", "/usr/sbin/corosync-cfgtool")
    for _ in range(2):
        s.run("/var/lib/dpkg/info/corokey.postrm", "disappear", "successor", "1.0")
        assert s.diversions() == []
        # The file stays where it was: dpkg gave it to the package that took it over.
        assert s.read(KEYGEN) == s.ours[KEYGEN]
        assert not s.exists(KEYGEN_DIVERTED)
    assert "/usr/sbin/corosync-cfgtool" in s.run("dpkg-divert", "--list").stdout


@in_debian_root
def test_corosync_removed_and_purged_while_corokey_stays(scenario: Scenario) -> None:
    s = scenario
    s.write_authkey()
    s.install_corosync()
    s.install_corokey()
    s.assert_ours_in_place(corosync_installed=True)
    for step in ("remove", "purge"):
        s.run("apt-get", step, "--yes", "corosync")
        assert s.status("corosync") in ("deinstall ok config-files", "", "unknown ok not-installed")
        # dpkg removed corosync's files where they were, under the diverted names; ours stay.
        s.assert_ours_in_place(corosync_installed=False)
    s.install_corosync()
    s.assert_ours_in_place(corosync_installed=True)
    s.run("apt-get", "purge", "--yes", "corokey")
    s.assert_corosyncs_back()


def mark_keygen(tree: Path) -> None:
    """A corosync-keygen that differs from the cached one: a marker appended to the ELF."""
    keygen = tree / KEYGEN.lstrip("/")
    keygen.write_bytes(keygen.read_bytes() + b"\0corokey-test-upgrade\0")


def newer_corosync(tree: Path) -> None:
    bump_version(tree, "+upgrade1")
    mark_keygen(tree)


@in_debian_root
def test_a_corosync_upgrade_lands_under_the_diverted_name(scenario: Scenario) -> None:
    s = scenario
    s.write_authkey()
    s.install_corosync()
    s.install_corokey()
    pkgdir = s.root.host_path(DEB_IN_ROOT)
    (cached,) = s.root.host_path("/var/cache/apt/archives").glob("corosync_*.deb")
    newer = repacked(cached, pkgdir, "corosync", newer_corosync)
    new_keygen = deb_members(newer)[KEYGEN]
    assert new_keygen != s.corosyncs[KEYGEN]
    s.install_corokey(str(newer.relative_to(pkgdir)))  # any local .deb, here corosync's
    assert s.version("corosync") == version_of(newer)
    assert s.read(KEYGEN_DIVERTED) == new_keygen
    assert s.read(KEYGEN) == s.ours[KEYGEN]
    s.assert_keygen_is_ours()
    s.assert_authkey_untouched()
    # corosync's upgraded tool runs under its diverted name.
    s.run(KEYGEN_DIVERTED, "-k", "/tmp/theirs")
    s.run("apt-get", "remove", "--yes", "corokey")
    assert s.read(KEYGEN) == new_keygen
    assert s.diversions() == []


@in_debian_root
@in_both_roots
def test_autopkgtests(scenario: Scenario, deb: Path) -> None:
    """debian/tests, run by autopkgtest with the null virt-server in the copy of the root.

    The root is the testbed (nothing started in it outlives the test's namespaces), so the
    isolation-container tests run too; the chroot virt-server would skip them.
    """
    s = scenario
    pkgdir = s.root.host_path(DEB_IN_ROOT)
    (dsc,) = deb.parent.glob("corokey_*.dsc")
    for source in [dsc, *deb.parent.glob("corokey_*.tar.xz")]:
        shutil.copy(source, pkgdir / source.name)
    # Debian 13's autopkgtest (5.49) claims no isolation for the null server (12's claims
    # isolation-machine), and its --fake-capability trips an assertion there; this testbed is
    # a copy of the root in namespaces of its own, the isolation a container gives, so the
    # restriction is waived by name.  Tests without needs-root run as a normal user, as on
    # Debian's CI.
    result = s.root.run(
        [
            "autopkgtest",
            "--ignore-restrictions=isolation-container",
            "--user=nobody",
            f"{DEB_IN_ROOT}/{dsc.name}",
            f"{DEB_IN_ROOT}/{s.deb_name}",
            "--",
            "null",
        ],
        check=False,
        timeout=900,
    )
    output = result.stdout + result.stderr
    summary = output.split("@@@@@@@@@@@@@@@@@@@@ summary", 1)[-1]
    for test in ("one-node", "diversion", "unit-tests"):
        assert re.search(rf"^{test} +PASS", summary, re.M), output[-6000:]
    # 0: every test ran and passed (2 would be a test skipped).
    assert result.returncode == 0, output[-6000:]
