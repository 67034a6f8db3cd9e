"""Throwaway Debian 12 and 13 roots to install the corokey package into.

The package is never installed on the machine that runs the tests: each test
extracts its own copy of a cached root and runs dpkg and apt in it through
``chroot``, in fresh mount, PID, IPC, UTS and network namespaces (so nothing
started in the root survives it, and nothing in it can reach the network).

Each root is built once per machine by mmdebstrap from the Debian mirror of
this machine's apt sources, and cached as a tarball in
``/var/cache/corokey-tests/debianNN-root-<hash>/`` where the hash covers
everything it is built from (suite, packages, mirror, recipe).  It holds:

* python3 installed (corokey's Depends), and autopkgtest with dpkg-dev (which
  it needs to unpack a source package), to run the package's autopkgtests
  with the null virt-server inside a copy of the root;
* corosync, openssh-client (corokey's Recommends, with its own Recommends,
  as apt's default install takes them) and the autopkgtests' python3-pytest
  and python3-hypothesis, with their dependencies, downloaded
  into apt's cache, not installed, with apt's package lists kept, so
  ``apt-get install corosync`` and ``apt-get install --reinstall corosync``
  work offline in every test, and so do autopkgtest's installs;
* ``/usr/sbin/policy-rc.d`` exiting 101, so corosync's postinst does not try
  (and fail) to start the daemon.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

CACHE_ROOT = Path("/var/cache/corokey-tests")
SUITE = "bookworm"
# The suites a root can be built of, and the name of each root's cache.
ROOT_NAMES = {"bookworm": "debian12", "trixie": "debian13"}
INCLUDE = ("python3", "autopkgtest", "dpkg-dev")
DOWNLOAD_ONLY = ("corosync", "python3-pytest", "python3-hypothesis")
# What apt's default install of corokey adds: its Recommends, with theirs.
DOWNLOAD_WITH_RECOMMENDS = ("openssh-client",)
# Bump when the way the root is built changes (hooks, options), so the cache
# key changes with it.
RECIPE = 4
MIRROR_ENV = "COROKEY_TEST_MIRROR"
ROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
BUILD_TIMEOUT = 900


class RootUnavailable(Exception):
    """The Debian root cannot be built here; the message says why."""


def debian_mirror(suite: str = SUITE) -> str:
    """The Debian mirror of this machine's apt sources (or $COROKEY_TEST_MIRROR).

    The one that serves ``suite`` if there is one, else the first that serves
    Debian's main archive (which serves every suite).
    """
    override = os.environ.get(MIRROR_ENV)
    if override:
        return override
    if shutil.which("apt-get") is None:
        raise RootUnavailable("no apt-get on this machine, so no Debian mirror to build from")
    listing = subprocess.run(
        [
            "apt-get",
            "indextargets",
            "--format",
            "$(SITE) $(RELEASE) $(ORIGIN) $(LABEL)",
            "Identifier: Packages",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    candidates: List[str] = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) != 4:
            continue
        site, release, origin, label = fields
        # The main archive (not debian-security, not -updates): its suites
        # have no dash, and Release files say Origin and Label "Debian".
        if origin == "Debian" and label == "Debian" and "-" not in release:
            if release == suite:
                candidates.insert(0, site)
            else:
                candidates.append(site)
    if not candidates:
        raise RootUnavailable(
            "no Debian mirror in this machine's apt sources (after apt-get update); "
            f"set {MIRROR_ENV}=URL to name one"
        )
    return candidates[0]


def root_name(suite: str) -> str:
    """The name of a suite's root and its cache (debian12-root, ...)."""
    return f"{ROOT_NAMES[suite]}-root"


def root_inputs(mirror: str, suite: str = SUITE) -> Dict[str, object]:
    """Everything the cached root is built from: its cache key."""
    return {
        "what": root_name(suite),
        "suite": suite,
        "mirror": mirror,
        "include": sorted(INCLUDE),
        "download_only": sorted(DOWNLOAD_ONLY),
        "download_with_recommends": sorted(DOWNLOAD_WITH_RECOMMENDS),
        "recipe": RECIPE,
    }


def cached_build(
    cache_root: Path, what: str, inputs: Dict[str, object], build: Callable[[Path], None]
) -> Path:
    """The directory cache_root/WHAT-HASH built by build(tmpdir), once per machine.

    HASH covers inputs.  build() fills a temp directory next to the final one,
    which is renamed into place only when build() returned; a lock file makes
    concurrent callers wait for one build instead of both building.  A build
    that raises leaves nothing behind.
    """
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    final = cache_root / f"{what}-{digest}"
    if final.is_dir():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"{what}-{digest}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():  # built by another run while we waited
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{what}-{digest}.", dir=cache_root))
        try:
            build(tmp)
            (tmp / "inputs.json").write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n")
            tmp.chmod(0o755)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def mmdebstrap_argv(mirror: str, tarball: Path, suite: str = SUITE) -> List[str]:
    policy = 'printf "#!/bin/sh\\nexit 101\\n" >"$1/usr/sbin/policy-rc.d"'
    return [
        "mmdebstrap",
        # unshare mode: mmdebstrap's mounts live in a namespace of its own, and
        # cannot be left behind on the machine (root mode's /proc umount can
        # fail as "busy" while other runs hold mount namespaces).
        "--mode=unshare",
        "--variant=apt",
        "--include=" + ",".join(INCLUDE),
        # Keep the package lists and the downloaded .debs: tests install
        # corosync from them without the network.
        "--skip=cleanup/apt/lists",
        "--skip=cleanup/apt/cache",
        # mmdebstrap would remove its own policy-rc.d at the end; ours stays.
        "--skip=chroot/policy-rc.d",
        "--customize-hook=" + policy + ' && chmod 0755 "$1/usr/sbin/policy-rc.d"',
        '--customize-hook=chroot "$1" apt-get clean',
        '--customize-hook=chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install'
        " --download-only --yes --no-install-recommends " + " ".join(DOWNLOAD_ONLY),
        # (mmdebstrap's apt configuration, which the hooks inherit, turns Recommends off.)
        '--customize-hook=chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install'
        " --download-only --yes -o APT::Install-Recommends=true "
        + " ".join(DOWNLOAD_WITH_RECOMMENDS),
        suite,
        str(tarball),
        mirror,
    ]


def build_root_tarball(mirror: str, directory: Path, suite: str = SUITE) -> None:
    """Build root.tar in directory with mmdebstrap; RootUnavailable when it fails."""
    if shutil.which("mmdebstrap") is None:
        raise RootUnavailable("mmdebstrap is not installed (scripts/test.sh installs it)")
    log = directory / "mmdebstrap.log"
    with open(log, "w") as out:
        result = subprocess.run(
            mmdebstrap_argv(mirror, directory / "root.tar", suite),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise RootUnavailable(
            f"mmdebstrap could not build a Debian {suite} root from {mirror} "
            f"(exit {result.returncode}): {tail}"
        )


def cached_root_tarball(
    mirror: Optional[str] = None, cache_root: Path = CACHE_ROOT, suite: str = SUITE
) -> Path:
    """The cached root tarball of suite, built first if this machine has none yet."""
    site = mirror if mirror is not None else debian_mirror(suite)
    directory = cached_build(
        cache_root,
        root_name(suite),
        root_inputs(site, suite),
        lambda tmp: build_root_tarball(site, tmp, suite),
    )
    return directory / "root.tar"


SCRATCH_PREFIX = "corokey-debroot-"


class DebianRoot:
    """One extracted copy of the root; commands run in it through chroot."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.path = scratch / "root"

    @classmethod
    def extract(cls, tarball: Path) -> "DebianRoot":
        """A fresh copy in a temp dir named after this process.

        Not pytest's tmp_path, which keeps the last runs' directories (300 MB
        each); copies left by a killed run (its process gone) are removed here.
        """
        cls.remove_stale()
        scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
        root = cls(scratch)
        try:
            root.path.mkdir()
            subprocess.run(
                [
                    "tar",
                    "--extract",
                    "--numeric-owner",
                    "--file",
                    str(tarball),
                    "-C",
                    str(root.path),
                ],
                check=True,
            )
        except BaseException:
            root.remove()
            raise
        return root

    @classmethod
    def remove_stale(cls) -> None:
        for scratch in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
            pid = scratch.name[len(SCRATCH_PREFIX) :].split("-")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                cls(scratch).remove()

    def host_path(self, path: str) -> Path:
        """A path inside the root, as seen from the machine."""
        return self.path / path.lstrip("/")

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float = 300
    ) -> "subprocess.CompletedProcess[str]":
        """Run argv as root inside the root, with a clean environment."""
        command = [
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--net",
            "--ipc",
            "--uts",
            f"--mount-proc={self.path}/proc",
            # Pseudo-terminals of the root's own (tests open them; so do apt and
            # autopkgtest): a new devpts instance, mounted in this mount namespace only.
            "sh",
            "-c",
            'mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$0/dev/pts"'
            ' && mount --bind "$0/dev/pts/ptmx" "$0/dev/ptmx" && exec chroot "$0" "$@"',
            str(self.path),
            "/usr/bin/env",
            "-i",
            f"PATH={ROOT_PATH}",
            "HOME=/root",
            "LANG=C.UTF-8",
            "DEBIAN_FRONTEND=noninteractive",
            *argv,
        ]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"in the Debian root, {' '.join(argv)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def remove(self) -> None:
        """Delete the copy; refuses while anything is mounted inside it."""
        prefix = str(self.scratch) + "/"
        with open("/proc/self/mounts") as mounts:
            inside = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
        if inside:
            raise AssertionError(f"still mounted in the Debian root, not deleting it: {inside}")
        shutil.rmtree(self.scratch)
