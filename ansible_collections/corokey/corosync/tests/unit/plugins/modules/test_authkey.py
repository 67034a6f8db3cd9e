# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""corokey.corosync.authkey on real files in a temp directory."""

import base64
import hashlib
import os
import stat

import pytest

# The results name the owner root:root, as the key profiles want it.
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: keys are written as root:root")

KEY = bytes(range(256))
OTHER = bytes(reversed(range(256)))


def b64(data):
    return base64.b64encode(data).decode("ascii")


def fp(data):
    return "SHA256:" + base64.b64encode(hashlib.sha256(data[:4096]).digest()).decode().rstrip("=")


@pytest.fixture
def keydir(tmp_path):
    directory = tmp_path / "corosync"
    directory.mkdir()
    return directory


def entries(directory):
    return sorted(os.listdir(str(directory)))


def mode_of(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def test_present_writes_the_key_once(module_runner, keydir):
    path = keydir / "authkey"
    result, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY)})
    assert result["changed"] is True and not result.get("failed")
    assert path.read_bytes() == KEY and mode_of(path) == 0o400
    assert result["fingerprint"] == fp(KEY) and result["previous_fingerprint"] is None
    assert (result["size"], result["mode"]) == (256, "0400")
    assert entries(keydir) == ["authkey"]
    again, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY)})
    assert again["changed"] is False and again["previous_fingerprint"] == fp(KEY)


def test_check_mode_changes_nothing_and_predicts(module_runner, keydir):
    path = keydir / "authkey"
    result, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY)}, check_mode=True)
    assert result["changed"] is True and result["fingerprint"] == fp(KEY)
    assert entries(keydir) == []
    path.write_bytes(OTHER)
    os.chmod(str(path), 0o644)
    result, _output = module_runner(
        "authkey", {"path": str(path), "content_b64": b64(KEY), "backup": True}, check_mode=True
    )
    assert result["changed"] is True and result["backup_file"] == str(path) + ".old"
    assert path.read_bytes() == OTHER and mode_of(path) == 0o644 and entries(keydir) == ["authkey"]


def test_diff_shows_facts_never_the_key(module_runner, keydir):
    path = keydir / "authkey"
    path.write_bytes(OTHER)
    result, raw = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY)}, diff=True)
    assert "fingerprint: %s\n" % fp(OTHER) in result["diff"]["before"]
    assert result["diff"]["after"] == "fingerprint: %s\nsize: 256\nowner: root:root\nmode: 0400\n" % fp(KEY)
    for data in (KEY, OTHER):
        assert b64(data) not in raw and data.hex() not in raw and data.hex().upper() not in raw
    assert b64(KEY[:48]) not in raw  # not even a part of the base64


def test_wrong_mode_is_fixed_and_backup_keeps_the_old_key_protected(module_runner, keydir):
    path = keydir / "authkey"
    path.write_bytes(OTHER)
    os.chmod(str(path), 0o644)
    result, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY), "backup": True})
    assert result["changed"] and result["backup_file"] == str(path) + ".old"
    assert path.read_bytes() == KEY and mode_of(path) == 0o400
    old = keydir / "authkey.old"
    assert old.read_bytes() == OTHER and mode_of(old) == 0o600  # 0644 less group and other bits
    assert entries(keydir) == ["authkey", "authkey.old"]


def test_same_bytes_wrong_mode_is_a_change(module_runner, keydir):
    path = keydir / "authkey"
    path.write_bytes(KEY)
    os.chmod(str(path), 0o440)
    result, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY)})
    assert result["changed"] and mode_of(path) == 0o400


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo"])
def test_non_regular_target_is_refused_and_left_alone(module_runner, keydir, tmp_path, kind):
    path = keydir / "authkey"
    target = tmp_path / "elsewhere"
    target.write_bytes(OTHER)
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(str(path))
    for state in ("present", "staged"):
        result, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY), "state": state})
        assert result["failed"] is True, result
        assert str(path) in result["msg"]
        assert result["reference"] == ("symlink" if kind == "symlink" else "not-regular")
    if kind == "symlink":
        assert "symbolic link" in result["msg"] and os.path.islink(str(path))
    assert target.read_bytes() == OTHER
    assert [e for e in entries(keydir) if e != "authkey"] == []


def test_stage_then_commit_with_the_expected_fingerprint(module_runner, keydir):
    path = keydir / "authkey"
    path.write_bytes(OTHER)
    os.chmod(str(path), 0o400)
    staged_path = keydir / ".authkey.corokey-staged"
    result, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY), "state": "staged"})
    assert result["changed"] and result["staged"] is True
    assert result["staged_fingerprint"] == fp(KEY) and result["fingerprint"] == fp(OTHER)
    assert result["staged_path"] == str(staged_path)
    assert staged_path.read_bytes() == KEY and mode_of(staged_path) == 0o400
    assert path.read_bytes() == OTHER
    again, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY), "state": "staged"})
    assert again["changed"] is False and again["staged"] is True

    wrong, _output = module_runner("authkey", {"path": str(path), "state": "committed", "expected_fingerprint": fp(OTHER)})
    assert wrong["failed"] and wrong["reference"] == "staged-differs"
    assert fp(KEY) in wrong["msg"] and fp(OTHER) in wrong["msg"]
    assert path.read_bytes() == OTHER and staged_path.exists()

    done, _output = module_runner(
        "authkey",
        {"path": str(path), "state": "committed", "expected_fingerprint": hashlib.sha256(KEY).hexdigest(), "backup": True},
        diff=True,
    )
    assert done["changed"] and done["fingerprint"] == fp(KEY) and done["previous_fingerprint"] == fp(OTHER)
    assert done["diff"]["after"].startswith("fingerprint: %s\n" % fp(KEY))
    assert path.read_bytes() == KEY and (keydir / "authkey.old").read_bytes() == OTHER
    assert entries(keydir) == ["authkey", "authkey.old"]

    twice, _output = module_runner("authkey", {"path": str(path), "state": "committed", "expected_fingerprint": fp(KEY)})
    assert twice["changed"] is False and not twice.get("failed")


def test_commit_without_a_staged_copy(module_runner, keydir):
    path = keydir / "authkey"
    path.write_bytes(OTHER)
    result, _output = module_runner("authkey", {"path": str(path), "state": "committed", "expected_fingerprint": fp(KEY)})
    assert result["failed"] and result["reference"] == "nothing-staged" and "state=staged" in result["msg"]
    assert path.read_bytes() == OTHER


def test_staging_the_key_already_in_place_stages_nothing(module_runner, keydir):
    path = keydir / "authkey"
    path.write_bytes(KEY)
    os.chmod(str(path), 0o400)
    leftover = keydir / ".authkey.corokey-staged"
    leftover.write_bytes(OTHER)
    result, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY), "state": "staged"})
    assert result["staged"] is False and result["staged_fingerprint"] == fp(KEY)
    assert not leftover.exists()  # a stale copy of another key would mislead a commit
    commit, _output = module_runner("authkey", {"path": str(path), "state": "committed", "expected_fingerprint": fp(KEY)})
    assert commit["changed"] is False and not commit.get("failed")


def test_abort_removes_the_staged_copy_only(module_runner, keydir):
    path = keydir / "authkey"
    path.write_bytes(OTHER)
    module_runner("authkey", {"path": str(path), "content_b64": b64(KEY), "state": "staged"})
    check, _output = module_runner("authkey", {"path": str(path), "state": "aborted"}, check_mode=True)
    assert check["changed"] and (keydir / ".authkey.corokey-staged").exists()
    result, _output = module_runner("authkey", {"path": str(path), "state": "aborted"})
    assert result["changed"] and entries(keydir) == ["authkey"] and path.read_bytes() == OTHER
    again, _output = module_runner("authkey", {"path": str(path), "state": "aborted"})
    assert again["changed"] is False


@pytest.mark.parametrize(
    "content, reference",
    [(b64(b"x" * 100), "too-short"), ("not base64!", "bad-base64")],
)
def test_bad_content_is_refused_before_anything_is_written(module_runner, keydir, content, reference):
    path = keydir / "authkey"
    path.write_bytes(OTHER)
    result, raw = module_runner("authkey", {"path": str(path), "content_b64": content})
    assert result["failed"] and result["reference"] == reference, result
    assert path.read_bytes() == OTHER and entries(keydir) == ["authkey"]


def test_src_needs_the_action_plugin(module_runner, keydir):
    result, _output = module_runner("authkey", {"path": str(keydir / "authkey"), "src": "/etc/hostname"})
    assert result["failed"] and result["reference"] == "src-without-action"


def test_profile_gives_mode(module_runner, keydir):
    path = keydir / "fence_xvm.key"
    result, _output = module_runner("authkey", {"path": str(path), "profile": "fence-xvm", "content_b64": b64(KEY * 2)})
    assert result["changed"] and mode_of(path) == 0o600 and path.read_bytes() == KEY * 2


def test_restored_puts_the_backup_back(module_runner, keydir):
    path = keydir / "authkey"
    missing, _output = module_runner("authkey", {"path": str(path), "state": "restored"})
    assert missing["failed"] and missing["reference"] == "nothing-to-restore"
    path.write_bytes(OTHER)
    module_runner("authkey", {"path": str(path), "content_b64": b64(KEY), "backup": True})
    assert path.read_bytes() == KEY
    result, _output = module_runner("authkey", {"path": str(path), "state": "restored"})
    assert result["changed"] and result["fingerprint"] == fp(OTHER) and path.read_bytes() == OTHER
    assert mode_of(path) == 0o400 and (keydir / "authkey.old").read_bytes() == OTHER
    again, _output = module_runner("authkey", {"path": str(path), "state": "restored"})
    assert again["changed"] is False


def test_check_mode_commit_follows_a_check_mode_stage(module_runner, keydir):
    path = keydir / "authkey"
    path.write_bytes(OTHER)
    args = {"path": str(path), "content_b64": b64(KEY), "state": "staged"}
    staged, _output = module_runner("authkey", args, check_mode=True)
    assert staged["changed"] and entries(keydir) == ["authkey"]
    commit_args = {"path": str(path), "state": "committed", "expected_fingerprint": fp(KEY)}
    commit, _output = module_runner("authkey", commit_args, check_mode=True, diff=True)
    assert commit["changed"] and not commit.get("failed")
    assert commit["diff"]["after"].startswith("fingerprint: %s\n" % fp(KEY))
    assert path.read_bytes() == OTHER and entries(keydir) == ["authkey"]


CONF_TAIL = """totem {
    version: 2
    cluster_name: alpha
%s
}
"""


def write_conf(directory, totem_lines):
    conf = directory / "corosync.conf"
    conf.write_text(CONF_TAIL % totem_lines)
    return conf


def test_without_path_the_key_goes_where_corosync_reads_it(module_runner, keydir):
    """Issue 17, 3: with totem.keyfile naming another file, the module wrote
    /etc/corosync/authkey (corosync's default) and left the file corosync reads alone."""
    key = keydir / "cluster.key"
    conf = write_conf(keydir, "    crypto_cipher: aes256\n    crypto_hash: sha256\n    keyfile: %s" % key)
    result, _output = module_runner("authkey", {"conf_path": str(conf), "content_b64": b64(KEY)})
    assert result.get("changed") is True, result
    assert result["path"] == str(key) and key.read_bytes() == KEY


@pytest.mark.parametrize(
    "totem, reference",
    [
        ("    crypto_cipher: aes256\n    crypto_hash: sha256\n    key: inlinekeyinlinekey", "key-inline"),
        ("    crypto_cipher: none\n    crypto_hash: none", "crypto-off"),
    ],
)
def test_inline_key_and_crypto_off_are_refused_unless_a_path_is_named(module_runner, keydir, totem, reference):
    conf = write_conf(keydir, totem)
    result, _output = module_runner("authkey", {"conf_path": str(conf), "content_b64": b64(KEY)})
    assert result.get("failed") and result["reference"] == reference, result
    assert entries(keydir) == ["corosync.conf"]
    if reference == "crypto-off":  # a key placed before crypto is turned on, as --key-path does
        path = keydir / "authkey"
        named, _output = module_runner("authkey", {"conf_path": str(conf), "path": str(path), "content_b64": b64(KEY)})
        assert named.get("changed") is True and path.read_bytes() == KEY, named


def test_a_directory_writable_by_others_is_refused(module_runner, keydir):
    os.chmod(str(keydir), 0o1777)  # sticky too: others could still create our names
    path = keydir / "authkey"
    result, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY)})
    assert result.get("failed") and result["reference"] == "unsafe-directory", result
    assert "chmod go-w %s" % keydir in result["msg"]
    assert not path.exists()


def test_commit_requires_the_expected_fingerprint(module_runner, keydir):
    path = keydir / "authkey"
    module_runner("authkey", {"path": str(path), "content_b64": b64(KEY), "state": "staged"})
    result, _output = module_runner("authkey", {"path": str(path), "state": "committed"})
    assert result.get("failed") and "expected_fingerprint" in result["msg"], result
    assert not path.exists()


def test_restore_checks_that_old_is_the_key_expected(module_runner, keydir):
    path = keydir / "authkey"
    path.write_bytes(KEY)
    os.chmod(str(path), 0o400)
    (keydir / "authkey.old").write_bytes(OTHER)
    third = fp(bytes(range(1, 256)) + b"x")
    wrong, _output = module_runner("authkey", {"path": str(path), "state": "restored", "expected_fingerprint": third})
    assert wrong.get("failed") and wrong["reference"] == "old-differs", wrong
    assert path.read_bytes() == KEY
    # A node that never committed already holds the old key: nothing to restore there.
    same, _output = module_runner("authkey", {"path": str(path), "state": "restored", "expected_fingerprint": fp(KEY)})
    assert same.get("changed") is False and not same.get("failed"), same
    right, _output = module_runner("authkey", {"path": str(path), "state": "restored", "expected_fingerprint": fp(OTHER)})
    assert right.get("changed") is True and path.read_bytes() == OTHER, right


def test_the_result_is_read_back_from_the_disk(module_runner, keydir):
    path = keydir / "authkey"
    result, _output = module_runner("authkey", {"path": str(path), "content_b64": b64(KEY)})
    assert result["fingerprint"] == fp(KEY) and result["mode"] == "0400" and result["size"] == 256


def test_an_old_python_fails_clearly_before_the_library_is_imported():
    """The floor is the library's (3.9); python_floor.py itself parses on older ones."""
    import ast
    import sys

    from ansible_collections.corokey.corosync.plugins.module_utils import python_floor

    source = open(python_floor.__file__).read()
    ast.parse(source, feature_version=(3, 5))
    real = sys.version_info
    try:
        sys.version_info = (3, 8, 10, "final", 0)
        message = python_floor.python_too_old()
    finally:
        sys.version_info = real
    assert message and "needs Python 3.9 or later on the node" in message and "3.8" in message
    assert python_floor.python_too_old() is None


def test_a_top_level_dotted_keyfile_is_where_the_key_goes(module_runner, keydir):
    """Issue 17, 3 with issue 16's reader: ``totem.keyfile:`` at the top level is totem's
    keyfile to corosync (coroparse joins names with dots)."""
    key = keydir / "cluster.key"
    conf = write_conf(keydir, "    crypto_cipher: aes256\n    crypto_hash: sha256")
    conf.write_text(conf.read_text() + "totem.keyfile: %s\n" % key)
    result, _output = module_runner("authkey", {"conf_path": str(conf), "content_b64": b64(KEY)})
    assert result.get("changed") is True and result["path"] == str(key), result
    assert key.read_bytes() == KEY and not (keydir / "authkey").exists()


def test_a_pacemaker_key_debian_wrote_is_left_as_it_is(module_runner, keydir):
    """Debian's pacemaker-common writes root:haclient 0640, which the pacemaker profile's one
    rule accepts: the same bytes there are no change; others-readable bytes are rewritten."""
    import grp

    try:
        haclient = grp.getgrnam("haclient").gr_gid
    except KeyError:
        pytest.skip("no group haclient (Debian's pacemaker makes it)")
    path = keydir / "authkey"
    path.write_bytes(KEY)
    os.chown(str(path), 0, haclient)
    os.chmod(str(path), 0o640)
    args = {"path": str(path), "profile": "pacemaker", "content_b64": b64(KEY)}
    for state in ("present", "staged"):
        result, _output = module_runner("authkey", dict(args, state=state))
        assert result["changed"] is False and not result.get("failed"), result
        assert mode_of(path) == 0o640 and entries(keydir) == ["authkey"]
    os.chmod(str(path), 0o644)
    result, _output = module_runner("authkey", args)
    assert result["changed"] is True and mode_of(path) == 0o400
    assert (result["owner"], result["group"]) == ("hacluster", "haclient")
