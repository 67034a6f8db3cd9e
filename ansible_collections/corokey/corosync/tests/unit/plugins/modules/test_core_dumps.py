# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""No core dump of a module that holds key bytes: RLIMIT_CORE is 0 in the module's own
process whenever it opens a file in the key's directory (reading the live key, writing
the new one), as the CLI does (secretfile.forbid_core_dumps).

The module runs as a real process through a small launcher: it first allows core
dumps (this machine's default limit may already be 0, which would prove nothing), then
records the process's RLIMIT_CORE at each ``open`` audit event (os.open and open()) of
the watched directory, a path in it, or a relative name (the writer opens its temp file
through the directory's descriptor), and prints the list when the module exits.
"""

import base64
import json
import os

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: raises RLIMIT_CORE, writes root:root keys")

KEY = bytes(range(256))

PROBE = r"""
import atexit, json, os, resource, runpy, sys

resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
watched = sys.argv[1]
module = sys.argv[2]
seen = []


def hook(event, args):
    if event != "open" or not isinstance(args[0], (str, bytes)):
        return
    path = os.fsdecode(args[0])
    if path == watched or path.startswith(watched + os.sep) or not os.path.isabs(path):
        seen.append([path] + list(resource.getrlimit(resource.RLIMIT_CORE)))


atexit.register(lambda: sys.stderr.write("corokey-core-limits %s\n" % json.dumps(seen)))
sys.argv[1:] = []
sys.addaudithook(hook)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def core_limits(output):
    for line in output.splitlines():
        if line.startswith("corokey-core-limits "):
            return json.loads(line.split(" ", 1)[1])
    raise AssertionError("the launcher reported nothing: %s" % output)


def b64(data):
    return base64.b64encode(data).decode("ascii")


@pytest.mark.parametrize("module", ["authkey", "authkey_adopt"])
def test_the_module_holds_key_bytes_only_with_core_dumps_off(module_runner, tmp_path, module):
    keydir = tmp_path / "corosync"
    keydir.mkdir()
    path = keydir / "authkey"
    path.write_bytes(bytes(reversed(KEY)))
    os.chmod(str(path), 0o400)
    if module == "authkey":
        args = {"path": str(path), "content_b64": b64(KEY)}
    else:  # the pad its action plugin sends
        args = {"cluster": "c", "path": str(path), "expected_fingerprint": "x", "pad_b64": b64(os.urandom(4097))}
    result, output = module_runner(module, args, launcher=("-c", PROBE, str(keydir)))
    assert not result.get("failed"), result
    limits = core_limits(output)
    assert str(path) in [entry[0] for entry in limits]  # the live key was read
    if module == "authkey":
        assert path.read_bytes() == KEY  # and the new one written
        assert any(entry[0].startswith(".authkey") for entry in limits)  # through a temp file
    assert limits and all(entry[1:] == [0, 0] for entry in limits), limits
