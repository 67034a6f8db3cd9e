"""corosync 2.x for the tests: built once per machine from the upstream release tarballs.

The tarballs are ``../shared/upstream/corosync-VERSION.tar.gz`` beside the checkout (or in
``$COROKEY_UPSTREAM_DIR``); ../shared/upstream/README.md says how they build and why each
flag.  A build lives in ``/var/cache/corokey-tests/corosync-VERSION-HASH/`` (a prefix: sbin,
lib, ...), HASH being the first 16 hex digits of the SHA-256 of the tarball and of the recipe
below, so a changed tarball or recipe builds anew.  It is built in a temp directory beside
it and renamed into place, under a lock file, so two concurrent test runs build it once and
an interrupted build leaves nothing that looks finished.

Without the tarball, a build already in the cache is used; without either, the tests that
need it skip with :func:`unavailable_reason`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

REPO = Path(__file__).resolve().parent.parent
UPSTREAM = Path(os.environ.get("COROKEY_UPSTREAM_DIR", str(REPO.parent / "shared" / "upstream")))
CACHE_ROOT = Path(os.environ.get("COROKEY_TEST_CACHE", "/var/cache/corokey-tests"))
VERSIONS = ("2.3.5", "2.4.6")
#: What each build must install into sbin; the test hosts bind-mount these over /usr/sbin.
PROGRAMS = (
    "corosync",
    "corosync-cfgtool",
    "corosync-cmapctl",
    "corosync-cpgtool",
    "corosync-keygen",
    "corosync-quorumtool",
)
BUILD_DEPS = "libqb-dev libnss3-dev autoconf automake libtool pkg-config make gcc"
# Part of the cache key: changing how we build must not reuse an old build.
RECIPE = (
    "autogen; configure --prefix=PREFIX --sysconfdir=/etc --localstatedir=/var "
    "--disable-dbus --disable-systemd CPPFLAGS=-include poll.h "
    "LDFLAGS=-Wl,-rpath,PREFIX/lib; make -k -j2; make -k install DESTDIR; v1"
)
BUILD_TIMEOUT = 900.0


class Corosync2Unavailable(RuntimeError):
    """No tarball and no cached build of this version, or the build failed."""


class Build:
    """A finished build of one corosync 2.x version, installed under ``prefix``."""

    def __init__(self, version: str, prefix: Path) -> None:
        self.version = version
        self.prefix = prefix
        self.sbin = prefix / "sbin"
        self.lib = prefix / "lib"

    def program(self, name: str) -> Path:
        return self.sbin / name

    @property
    def keygen(self) -> Path:
        return self.program("corosync-keygen")

    @property
    def corosync(self) -> Path:
        return self.program("corosync")

    def __repr__(self) -> str:
        return f"Build({self.version}, {self.prefix})"


def tarball(version: str) -> Path:
    return UPSTREAM / f"corosync-{version}.tar.gz"


def cache_key(tarball_path: Path) -> str:
    digest = hashlib.sha256(tarball_path.read_bytes())
    digest.update(RECIPE.encode())
    return digest.hexdigest()[:16]


def _finished(prefix: Path) -> bool:
    return (
        all((prefix / "sbin" / name).exists() for name in PROGRAMS)
        and (prefix / "BUILD-INFO").exists()
    )


def _cached_builds(version: str) -> List[Path]:
    if not CACHE_ROOT.is_dir():
        return []
    found = [
        p
        for p in CACHE_ROOT.glob(f"corosync-{version}-*")
        if p.is_dir() and not p.name.endswith(".tmp") and _finished(p)
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def unavailable_reason(version: str) -> Optional[str]:
    """Why corosync ``version`` cannot be had here (cheap: builds nothing), or None."""
    if version not in VERSIONS:
        return f"corosync {version} is not one of the test versions {VERSIONS}"
    if tarball(version).is_file() or _cached_builds(version):
        return None
    return (
        f"corosync {version}: neither {tarball(version)} nor a build in {CACHE_ROOT} "
        f"(put the release tarball of tag v{version} of the corosync repository there)"
    )


_builds: Dict[str, Build] = {}
#: Prefixes this process built (not found in the cache): for the concurrency test.
built_here: List[Path] = []


def get_build(version: str) -> Build:
    """The build of ``version``: from the cache, else built now (about a minute)."""
    if version in _builds:
        return _builds[version]
    reason = unavailable_reason(version)
    if reason:
        raise Corosync2Unavailable(reason)
    source = tarball(version)
    if source.is_file():
        prefix = CACHE_ROOT / f"corosync-{version}-{cache_key(source)}"
        if not _finished(prefix):
            with _lock(prefix.with_name(prefix.name + ".lock")):
                if not _finished(prefix):  # another run may have built it meanwhile
                    _build(version, source, prefix)
    else:
        prefix = _cached_builds(version)[0]
    _builds[version] = build = Build(version, prefix)
    return build


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(version: str, source: Path, prefix: Path) -> None:
    missing = [
        tool
        for tool in ("autoreconf", "libtoolize", "make", "gcc", "pkg-config")
        if shutil.which(tool) is None
    ]
    if missing:
        raise Corosync2Unavailable(
            f"cannot build corosync {version}: {', '.join(missing)} missing "
            f"(sh scripts/test.sh installs {BUILD_DEPS})"
        )
    temp = prefix.with_name(f".{prefix.name}.{os.getpid()}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    log = temp / "build.log"
    started = time.monotonic()
    try:
        src = temp / "src"
        with tarfile.open(source) as archive:
            archive.extractall(src, filter="data")
        tops = [p for p in src.iterdir() if p.is_dir()]
        tree = tops[0] if len(tops) == 1 else src
        # An archive has no git metadata: git-version-gen reads this file instead.
        (tree / ".tarball-version").write_text(version + "\n")
        stage = temp / "stage"
        flags = [
            f"--prefix={prefix}",
            "--sysconfdir=/etc",
            "--localstatedir=/var",
            "--disable-dbus",
            "--disable-systemd",
            "CPPFLAGS=-include poll.h",
            f"LDFLAGS=-Wl,-rpath,{prefix}/lib",
        ]
        steps = [
            ["./autogen.sh"],
            ["./configure", *flags],
            ["make", "-k", "-j2"],
            ["make", "-k", "install", f"DESTDIR={stage}"],
        ]
        with open(log, "ab") as output:
            for step in steps:
                # make -k: the HTML man pages fail without groff's html device (not needed).
                subprocess.run(
                    step,
                    cwd=tree,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                )
        installed = Path(f"{stage}{prefix}")
        if not _finished_programs(installed):
            raise Corosync2Unavailable(
                f"building corosync {version} installed no {PROGRAMS} in {installed}; "
                f"log tail:\n{_tail(log)}"
            )
        _check_version(installed, version, log)
        seconds = time.monotonic() - started
        (installed / "BUILD-INFO").write_text(
            f"corosync {version} from {source.name} (sha256 "
            f"{hashlib.sha256(source.read_bytes()).hexdigest()})\nrecipe: {RECIPE}\n"
            f"built in {seconds:.0f} s\n"
        )
        shutil.copy(log, installed / "build.log")
        os.rename(installed, prefix)
        built_here.append(prefix)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _finished_programs(directory: Path) -> bool:
    return (
        all((directory / "sbin" / name).exists() for name in PROGRAMS)
        and (directory / "lib" / "libcmap.so").exists()
    )


def _check_version(installed: Path, version: str, log: Path) -> None:
    # The RUNPATH names the final prefix, not yet in place: point the loader at the stage.
    result = subprocess.run(
        [str(installed / "sbin" / "corosync"), "-v"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "LD_LIBRARY_PATH": str(installed / "lib")},
    )
    if f"version '{version}'" not in result.stdout:
        raise Corosync2Unavailable(
            f"the corosync {version} build says {result.stdout.strip()!r} "
            f"{result.stderr.strip()!r}; log tail:\n{_tail(log)}"
        )


def _tail(log: Path, size: int = 3000) -> str:
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace")[-size:]
    return ""


def build_seconds(build: Build) -> Optional[float]:
    """How long the cached build took, from its BUILD-INFO."""
    for line in (build.prefix / "BUILD-INFO").read_text().splitlines():
        if line.startswith("built in "):
            return float(line.split()[2])
    return None


def build_or_skip(version: str) -> Build:
    """For tests: the build, or pytest.skip when neither tarball nor cached build exists.

    A build that fails (a missing build dependency included: scripts/test.sh installs
    them) fails the test instead: it must not pass unnoticed as a skip."""
    import pytest

    reason = unavailable_reason(version)
    if reason:
        pytest.skip(reason)
    return get_build(version)


def run_as_on_2x_node(
    build: Build, argv: List[str], env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a private mount namespace whose /usr/sbin/corosync* are ``build``'s,
    as on a node where corosync 2.x is installed (needs root).  COROKEY_COROSYNC is unset
    unless ``env`` sets it, so the command detects the generation itself."""
    binds = " && ".join(
        f'mount --bind "{program}" /usr/sbin/{program.name}'
        for program in sorted(build.sbin.iterdir())
        if Path("/usr/sbin", program.name).is_file()
    )
    environment = {k: v for k, v in os.environ.items() if k != "COROKEY_COROSYNC"}
    environment.update(env or {})
    script = f'{binds} && exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def namespaces_unavailable() -> Optional[str]:
    if os.geteuid() != 0:
        return "needs root (a private mount namespace)"
    if shutil.which("unshare") is None:
        return "unshare is not installed (util-linux)"
    if not Path("/usr/sbin/corosync").is_file():
        return "needs an installed corosync to bind the 2.x build over (apt-get install corosync)"
    return None
