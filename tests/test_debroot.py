"""The cache of the Debian root (tests/debroot.py): built once, atomically, under a lock."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.debroot import (
    SCRATCH_PREFIX,
    DebianRoot,
    RootUnavailable,
    cached_build,
    cached_root_tarball,
    debian_mirror,
)

REPO = Path(__file__).resolve().parent.parent

# Builds that count themselves in cache_root/builds and take a while, so that
# two of them started together overlap unless the lock keeps them apart.
SLOW_BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tests.debroot import cached_build
    cache = Path(sys.argv[1])
    def build(tmp):
        with open(cache / "builds", "a") as log:
            log.write(f"{tmp}\\n")
        time.sleep(1)
        (tmp / "made").write_text("yes")
    print(cached_build(cache, "thing", {"n": 1}, build))
""")


def test_concurrent_runs_build_once(tmp_path: Path) -> None:
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", SLOW_BUILDER, str(tmp_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60)[0].strip() for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs[0] == outputs[1]
    built = Path(outputs[0])
    assert built.parent == tmp_path and built.name.startswith("thing-")
    assert (built / "made").read_text() == "yes"
    assert len((tmp_path / "builds").read_text().splitlines()) == 1
    # Built in a temp dir beside it and renamed into place: none is left.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["builds", built.name, built.name + ".lock"]
    )


def test_other_inputs_other_directory(tmp_path: Path) -> None:
    def build(tmp: Path) -> None:
        (tmp / "made").touch()

    first = cached_build(tmp_path, "thing", {"mirror": "a"}, build)
    assert cached_build(tmp_path, "thing", {"mirror": "a"}, build) == first
    assert cached_build(tmp_path, "thing", {"mirror": "b"}, build) != first


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def build(tmp: Path) -> None:
        (tmp / "half").write_text("made")
        raise RootUnavailable("no mirror")

    with pytest.raises(RootUnavailable):
        cached_build(tmp_path, "thing", {}, build)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_mirror_is_one_of_apt_sources() -> None:
    if shutil.which("apt-get") is None:
        pytest.skip("not a Debian machine")
    try:
        mirror = debian_mirror()
    except RootUnavailable as why:
        pytest.skip(str(why))
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    text = "".join(p.read_text() for p in sources if p.is_file())
    assert mirror.rstrip("/") in text


@pytest.mark.slow
def test_unreachable_mirror_is_a_reason_to_skip(tmp_path: Path) -> None:
    """With no mirror to build from, the root is unavailable with the reason, and nothing cached."""
    if shutil.which("mmdebstrap") is None or os.geteuid() != 0:
        pytest.skip("needs mmdebstrap and root")
    # A closed port on loopback: nothing leaves the machine.
    mirror = "http://127.0.0.1:9/debian"
    with pytest.raises(RootUnavailable, match=r"could not build .* from http://127\.0\.0\.1:9"):
        cached_root_tarball(mirror=mirror, cache_root=tmp_path)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_copies_left_by_killed_runs_are_removed() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    tmp = Path(tempfile.gettempdir())
    stale = tmp / f"{SCRATCH_PREFIX}{gone.pid}-test"
    live = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        (stale / "root/etc").mkdir(parents=True)
        (live / "root").mkdir()
        DebianRoot.remove_stale()
        assert not stale.exists()
        assert (live / "root").is_dir()
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(live)
