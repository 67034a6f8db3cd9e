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
COPY = Path("ansible_collections/corokey/corosync/plugins/module_utils/corokey")


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
    assert "from ansible_collections.corokey.corosync.plugins.module_utils.corokey.record" in text
