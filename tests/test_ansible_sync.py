"""The Ansible collection's copy of the library matches src/corokey.

The collection ships corokey's modules in its module_utils (Ansible sends a node
only what a module imports from there); scripts/sync-ansible-module-utils.py
makes that copy.  After any change to src/corokey, run the script again.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path("scripts", "sync-ansible-module-utils.py")
COLLECTION = Path("ansible_collections/corokey/corosync")
COPY = COLLECTION / "plugins/module_utils/_corokey"


def check(root: Path) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, str(root / SCRIPT), "--check"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


def test_module_utils_copy_matches_src() -> None:
    result = check(ROOT)
    assert result.returncode == 0, result.stderr


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "src", root / "src")
    shutil.copytree(ROOT / "scripts", root / "scripts")
    shutil.copytree(ROOT / COPY, root / COPY)
    shutil.copy(ROOT / "LICENSE", root / "LICENSE")
    shutil.copy(ROOT / COLLECTION / "LICENSE", root / COLLECTION / "LICENSE")
    return root


def test_drift_is_reported_and_the_script_repairs_it(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    key_py = root / "src/corokey/key.py"
    key_py.write_text(key_py.read_text() + "\nEXTRA = 1\n")
    (root / COPY / "stray.py").write_text("")
    result = check(root)
    assert result.returncode == 1
    assert "differs from src/corokey" in result.stderr and "key.py" in result.stderr
    assert "not made by this script" in result.stderr and "stray.py" in result.stderr
    subprocess.run([sys.executable, str(root / SCRIPT)], cwd=root, check=True)
    assert check(root).returncode == 0
    assert "EXTRA = 1" in (root / COPY / "key.py").read_text()


def test_imports_are_rewritten_to_the_collection(tmp_path: Path) -> None:
    text = (ROOT / COPY / "secretfile.py").read_text()
    assert "from corokey." not in text and "import corokey" not in text
    assert "from ansible_collections.corokey.corosync.plugins.module_utils._corokey.record" in text


def test_the_copy_records_the_corokey_version_and_the_license_follows(tmp_path: Path) -> None:
    """The copy says which corokey it was made from, and the collection ships the
    repository's LICENSE: a new version or licence text is drift until re-synced."""
    root = _tree(tmp_path)
    assert 'COROKEY_VERSION = "0.1.0"' in (root / COPY / "version.py").read_text()
    assert (root / COPY / "__init__.py").read_text() == ""  # ansible-test 2.14's empty-init
    init = root / "src/corokey/__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "9.9.9"'))
    (root / "LICENSE").write_text((root / "LICENSE").read_text() + "changed\n")
    result = check(root)
    assert result.returncode == 1
    assert "version.py" in result.stderr and "LICENSE" in result.stderr
    subprocess.run([sys.executable, str(root / SCRIPT)], cwd=root, check=True)
    assert check(root).returncode == 0
    assert 'COROKEY_VERSION = "9.9.9"' in (root / COPY / "version.py").read_text()
    assert (root / COLLECTION / "LICENSE").read_text().endswith("changed\n")


def test_slices_lose_the_space_before_their_colon_and_nothing_else_changes() -> None:
    """ruff formats ``data[start : end]``; ansible-test 2.14's pycodestyle calls it E203."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync", ROOT / SCRIPT)
    assert spec is not None and spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    source = 'x = data[start : start + n]\ny = {"a": b[1 :]}\nz = f(a, key=lambda v: v)\n'
    assert sync.tight_slices(source) == (
        'x = data[start: start + n]\ny = {"a": b[1:]}\nz = f(a, key=lambda v: v)\n'
    )
