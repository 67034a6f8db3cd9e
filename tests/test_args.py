"""corokey.cli.args, the argparse replacement: a table of expected results, and glibc's
getopt_long as the oracle where the parser claims GNU behaviour (prefixes, bundling,
attached values, options among operands, ``--``)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corokey.cli.args import ArgumentParser, HelpRequested
from corokey.errors import UsageError
from tests.cli_helpers import compile_getopt_oracle


def _parser() -> ArgumentParser:
    """Shaped like corokey's commands: flags, values, a choice, an int, append, operands."""
    parser = ArgumentParser(prog="corokey test", description="a parser under test")
    parser.add_argument("path", nargs="?", metavar="PATH", help="where")
    parser.add_argument("-s", "--size", type=int, help="bytes")
    parser.add_argument("-f", "--force", action="store_true", help="replace")
    parser.add_argument("--json", action="store_true", help="json")
    parser.add_argument("--profile", choices=["corosync", "fence-xvm"], default="corosync")
    parser.add_argument("--key", metavar="FILE")
    parser.add_argument("--key-path", metavar="PATH")
    parser.add_argument("-o", action="append", dest="ssh_options", metavar="OPT")
    return parser


DEFAULTS: Dict[str, Any] = {
    "path": None,
    "size": None,
    "force": False,
    "json": False,
    "profile": "corosync",
    "key": None,
    "key_path": None,
    "ssh_options": [],
}

# argv -> the values that differ from DEFAULTS, or the error message (after "corokey test: ").
Expected = Union[Dict[str, Any], str]
TABLE: List[Tuple[List[str], Expected]] = [
    ([], {}),
    (["p"], {"path": "p"}),
    (["-"], {"path": "-"}),
    ([""], {"path": ""}),
    (["p", "q"], "unexpected argument 'q'"),
    # long options: =value, separate value, unambiguous prefixes, exact match beats a prefix
    (["--size=300"], {"size": 300}),
    (["--size", "300"], {"size": 300}),
    (["--si=300"], {"size": 300}),
    (["--key", "K"], {"key": "K"}),
    (["--key-p", "P"], {"key_path": "P"}),
    (["--ke", "K"], "option --ke is ambiguous"),
    (["--k=K"], "option --k is ambiguous"),
    (["--js"], {"json": True}),
    (["--json=1"], "option --json takes no value"),
    (["--nope"], "unrecognized option '--nope'"),
    (["--size"], "option --size needs a value (SIZE)"),
    (["--key="], {"key": ""}),
    (["--size", "-5"], {"size": -5}),  # a required value is taken whatever it looks like
    # short options: attached values, bundling, a value ends the bundle
    (["-s300"], {"size": 300}),
    (["-s", "300"], {"size": 300}),
    (["-fs", "300"], {"force": True, "size": 300}),
    (["-fs300"], {"force": True, "size": 300}),
    (["-sf"], "invalid value 'f' for -s"),
    (["-fx"], "unrecognized option '-x'"),
    (["-s"], "option -s needs a value (SIZE)"),
    # options among operands; `--` ends options
    (["p", "-f"], {"path": "p", "force": True}),
    (["--", "-f"], {"path": "-f"}),
    (["-f", "--", "--json"], {"force": True, "path": "--json"}),
    (["--", "a", "b"], "unexpected argument 'b'"),
    # choices, type=int, append, last value wins
    (["--profile", "fence-xvm"], {"profile": "fence-xvm"}),
    (["--profile=fence"], "invalid value 'fence' for --profile"),
    (["-s", "12x"], "invalid value '12x' for -s"),
    (["-s", " 12"], {"size": 12}),  # int() strips blanks, as argparse's type=int does
    (["-o", "A=1", "-oB=2"], {"ssh_options": ["A=1", "B=2"]}),
    (["-s", "1", "-s", "2"], {"size": 2}),
]


@pytest.mark.parametrize(("argv", "expected"), TABLE, ids=[" ".join(a) or "-" for a, _ in TABLE])
def test_table(argv: List[str], expected: Expected) -> None:
    if isinstance(expected, str):
        with pytest.raises(UsageError) as caught:
            _parser().parse_args(argv)
        assert caught.value.message == f"corokey test: {expected}"
        assert caught.value.hint == "run 'corokey test --help'" or expected.startswith("invalid")
        return
    assert vars(_parser().parse_args(argv)) == {**DEFAULTS, **expected}


def test_defaults_are_fresh_lists_each_time() -> None:
    parser = _parser()
    parser.parse_args(["-o", "A=1"])
    assert parser.parse_args([]).ssh_options == []


def test_invalid_values_say_what_is_allowed() -> None:
    with pytest.raises(UsageError) as caught:
        _parser().parse_args(["--profile", "x"])
    assert caught.value.hint == "choose one of: corosync, fence-xvm"
    with pytest.raises(UsageError) as caught:
        _parser().parse_args(["--size", "big"])
    assert caught.value.hint == "give SIZE as a whole number"


@pytest.mark.parametrize("argv", [["-h"], ["--help"], ["p", "-h"], ["-f", "--help", "-x"]])
def test_help_wins_over_everything_after_it(argv: List[str]) -> None:
    with pytest.raises(HelpRequested) as caught:
        _parser().parse_args(argv)
    text = str(caught.value)
    assert text.startswith("usage: corokey test [OPTIONS] [PATH]\n")
    assert "--profile {corosync,fence-xvm}" in text and "-s, --size SIZE" in text


def test_help_after_double_dash_is_an_operand() -> None:
    assert _parser().parse_args(["--", "-h"]).path == "-h"


@pytest.mark.parametrize(
    ("nargs", "argv", "expected"),
    [
        ("*", [], {"files": [], "last": "L"}),
        ("*", ["a", "L"], {"files": ["a"], "last": "L"}),
        ("*", ["a", "b", "L"], {"files": ["a", "b"], "last": "L"}),
        ("+", ["a", "L"], {"files": ["a"], "last": "L"}),
        ("+", ["L"], "missing FILES"),
        ("?", ["a", "L"], {"files": "a", "last": "L"}),
        ("?", ["L"], {"files": None, "last": "L"}),
    ],
)
def test_nargs_leave_what_later_operands_need(
    nargs: str, argv: List[str], expected: Expected
) -> None:
    parser = ArgumentParser(prog="corokey test")
    parser.add_argument("files", nargs=nargs, metavar="FILES")
    parser.add_argument("last", metavar="LAST")
    if not argv:
        argv, expected = ["L"], {"files": [], "last": "L"}
    if isinstance(expected, str):
        with pytest.raises(UsageError, match=expected):
            parser.parse_args(argv)
        return
    assert vars(parser.parse_args(argv)) == expected


def test_a_missing_required_operand_is_named() -> None:
    parser = ArgumentParser(prog="corokey test")
    parser.add_argument("src", metavar="SRC")
    with pytest.raises(UsageError) as caught:
        parser.parse_args([])
    assert caught.value.message == "corokey test: missing SRC"


# ----------------------------------------------------------------------------- glibc

ORACLE_SOURCE = r"""
#include <getopt.h>
#include <stdio.h>
int main(int argc, char **argv) {
    static struct option longopts[] = {
        {"size", required_argument, 0, 's'},
        {"force", no_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},
        {"profile", required_argument, 0, 'p'},
        {"key", required_argument, 0, 'k'},
        {"key-path", required_argument, 0, 'P'},
        {0, 0, 0, 0}};
    int c;
    /* short: -s VALUE, -f, -o VALUE; the long-only options have no short letter */
    while ((c = getopt_long(argc, argv, "s:fo:", longopts, NULL)) != -1) {
        if (c == '?') { printf("ERROR\n"); return 0; }
        if (optarg) printf("%c=%s\n", c, optarg); else printf("%c\n", c);
    }
    for (; optind < argc; optind++) printf("operand=%s\n", argv[optind]);
    return 0;
}
"""
# glibc's letters -> our destinations (store the value, or True for a flag; 'o' appends)
DESTS = {"s": "size", "f": "force", "j": "json", "p": "profile", "k": "key", "P": "key_path"}


def _string_parser() -> ArgumentParser:
    """The same options with no type or choices: only the GNU syntax is compared."""
    parser = ArgumentParser(prog="p")
    parser.add_argument("operands", nargs="*")
    parser.add_argument("-s", "--size")
    parser.add_argument("-f", "--force", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile")
    parser.add_argument("--key")
    parser.add_argument("--key-path")
    parser.add_argument("-o", action="append", dest="o")
    return parser


@pytest.fixture(scope="module")
def glibc_getopt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_getopt_oracle(ORACLE_SOURCE, tmp_path_factory.mktemp("args-oracle"))


def _glibc(binary: Path, argv: List[str]) -> Optional[Dict[str, Any]]:
    """What glibc parses, folded into final values as our parser keeps them; None on error."""
    result = subprocess.run(
        ["p", *argv], executable=str(binary), capture_output=True, text=True, check=True, env={}
    )
    values: Dict[str, Any] = {
        "operands": [],
        "size": None,
        "force": False,
        "json": False,
        "profile": None,
        "key": None,
        "key_path": None,
        "o": [],
    }
    for line in result.stdout.splitlines():
        if line == "ERROR":
            return None
        name, has_value, value = line.partition("=")
        if name == "operand":
            values["operands"].append(value)
        elif name == "o":
            values["o"].append(value)
        else:
            values[DESTS[name]] = value if has_value else True
    return values


def _ours(argv: List[str]) -> Optional[Dict[str, Any]]:
    try:
        return vars(_string_parser().parse_args(argv))
    except UsageError:
        return None


TOKENS = st.sampled_from(
    [
        "-f",
        "-s",
        "-o",
        "-fs",
        "-fo",
        "-sX",
        "-oY",
        "-ff",
        "-x",
        "-fx",
        "-f-",
        "--force",
        "--forc",
        "--f",
        "--force=1",
        "--json",
        "--js",
        "--key",
        "--key=V",
        "--key-path",
        "--key-p=W",
        "--ke",
        "--ke=V",
        "--k",
        "--size=9",
        "--si",
        "--s",
        "--profile",
        "--pro=P",
        "--nope",
        "--nope=1",
        "---x",
        "--=x",
        "--",
        "-",
        "",
        "a",
        "b",
        "V",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=7))
def test_same_values_and_operands_as_glibc(glibc_getopt: Path, argv: List[str]) -> None:
    assert _ours(argv) == _glibc(glibc_getopt, argv)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="-fsojk=V ", max_size=6), max_size=5))
def test_same_as_glibc_on_arbitrary_words(glibc_getopt: Path, argv: List[str]) -> None:
    argv = [a for a in argv if a not in ("-h", "--help")]
    assert _ours(argv) == _glibc(glibc_getopt, argv)
