# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""Run the collection's modules as Ansible runs them on a node: a real process.

Each module is started with this Python, its arguments as JSON on standard input
(as with pipelining), and the directory holding ``ansible_collections`` on
PYTHONPATH; the answer is the JSON it prints.
"""

import json
import os
import subprocess
import sys

import pytest

COLLECTIONS_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".."))


def run_module(name, args, check_mode=False, diff=False, launcher=("-m",)):
    """Run corokey.corosync.NAME with ``args``; return (result dict, raw stdout text).

    ``launcher``: the Python arguments before the module's name (``-c SCRIPT ...`` runs
    the module through a script that watches it, with the name its last argument)."""
    params = dict(args)
    params["_ansible_check_mode"] = check_mode
    params["_ansible_diff"] = diff
    env = dict(os.environ)
    env["PYTHONPATH"] = COLLECTIONS_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable] + list(launcher) + ["ansible_collections.corokey.corosync.plugins.modules." + name],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": params}),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON: %s %s" % (name, proc.stdout, proc.stderr))
    return result, proc.stdout + proc.stderr


@pytest.fixture
def module_runner():
    return run_module


def run_playbook(directory, playbook, *options):
    """ansible-playbook on this machine (connection local) with the collection on its path."""
    path = os.path.join(str(directory), "playbook.yml")
    with open(path, "w") as handle:
        handle.write(playbook)
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_PIPELINING="true",
        ANSIBLE_LOCAL_TEMP=os.path.join(str(directory), "ansible-local"),
        ANSIBLE_REMOTE_TEMP=os.path.join(str(directory), "ansible-remote"),
    )
    playbook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return subprocess.run(
        [playbook_bin, "-i", "localhost,", "-c", "local", path] + list(options),
        capture_output=True,
        text=True,
        env=env,
        cwd=str(directory),
        check=False,
    )


@pytest.fixture
def playbook_runner():
    return run_playbook
