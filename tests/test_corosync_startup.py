"""Which corosync.conf and (2.x) default key the startup files name (corosync_startup)."""

from __future__ import annotations

import pytest

from corokey.corosync_startup import StartupUnknown, startup

DEFAULT = "/etc/default/corosync"
SYSCONFIG = "/etc/sysconfig/corosync"


def test_no_files_mean_the_defaults() -> None:
    for corosync2 in (False, True):
        found = startup({}, corosync2)
        assert (found.conf_path, found.default_key) == ("/etc/corosync/corosync.conf", None)
    debian = '# Command line options\n#OPTIONS=""\n'
    assert startup({DEFAULT: debian}, False).conf_path == "/etc/corosync/corosync.conf"


@pytest.mark.parametrize(
    ("options", "conf"),
    [
        ('COROSYNC_OPTIONS="-c /etc/corosync/other.conf"', "/etc/corosync/other.conf"),
        ("COROSYNC_OPTIONS='-c/etc/c.conf'", "/etc/c.conf"),
        ('export COROSYNC_OPTIONS="-f -c /a.conf -t"', "/a.conf"),
        ('COROSYNC_OPTIONS="-fc /b.conf"', "/b.conf"),
        ('COROSYNC_OPTIONS=""', "/etc/corosync/corosync.conf"),
    ],
)
def test_corosync_3_takes_dash_c_from_corosync_options(options: str, conf: str) -> None:
    assert startup({DEFAULT: options + "\n"}, False).conf_path == conf
    assert startup({SYSCONFIG: options + "\n"}, False).conf_path == conf


def test_corosync_2_takes_exported_variables_only() -> None:
    text = (
        "export COROSYNC_MAIN_CONFIG_FILE=/etc/c2.conf\n"
        "COROSYNC_TOTEM_AUTHKEY_FILE=/etc/k2\nexport COROSYNC_TOTEM_AUTHKEY_FILE\n"
    )
    found = startup({SYSCONFIG: text}, True)
    assert (found.conf_path, found.default_key) == ("/etc/c2.conf", "/etc/k2")
    # 3.x reads neither variable
    assert startup({SYSCONFIG: text}, False).conf_path == "/etc/corosync/corosync.conf"
    with pytest.raises(StartupUnknown, match="without export"):
        startup({DEFAULT: "COROSYNC_TOTEM_AUTHKEY_FILE=/etc/k2\n"}, True)


@pytest.mark.parametrize(
    "text",
    [
        'COROSYNC_OPTIONS="-c $CONF"\n',
        "COROSYNC_OPTIONS=`cat /x`\n",
        ". /etc/corosync/more\n",
        'if true; then COROSYNC_OPTIONS="-c /x"; fi\n',
    ],
)
def test_what_corokey_cannot_evaluate_is_said_plainly(text: str) -> None:
    with pytest.raises(StartupUnknown) as caught:
        startup({DEFAULT: text}, False)
    assert caught.value.reference == "startup-unknown"


def test_two_files_that_disagree_or_one_unreadable_cannot_be_told() -> None:
    with pytest.raises(StartupUnknown, match="differently"):
        startup(
            {DEFAULT: 'COROSYNC_OPTIONS="-c /a"\n', SYSCONFIG: 'COROSYNC_OPTIONS="-c /b"\n'}, False
        )
    with pytest.raises(StartupUnknown, match="cannot read"):
        startup({DEFAULT: None}, False)


def test_a_value_with_unquoted_blanks_cannot_be_told() -> None:
    with pytest.raises(StartupUnknown):
        startup({DEFAULT: "COROSYNC_OPTIONS=-c /etc/x.conf\n"}, False)
    with pytest.raises(StartupUnknown):
        startup({DEFAULT: 'COROSYNC_OPTIONS="-c /a" -t\n'}, False)
    assert startup({DEFAULT: 'COROSYNC_OPTIONS="-c /a" # why\n'}, False).conf_path == "/a"
