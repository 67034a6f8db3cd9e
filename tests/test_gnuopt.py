"""Property tests: our getopt_long against glibc's own, compiled into a tiny test helper."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
from pathlib import Path
from typing import List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corokey.cli.gnuopt import GetoptError, getopt_long, strtoll_base10
from corokey.cli.keygen import LONG_OPTIONS, SHORT_OPTIONS
from tests.cli_helpers import compile_getopt_oracle

HELPER_SOURCE = r"""
#include <getopt.h>
#include <stdio.h>
int main(int argc, char **argv) {
    static struct option longopts[] = {
        {"key-file", required_argument, 0, 'k'},
        {"less-secure", no_argument, 0, 'l'},
        {"random-file", required_argument, 0, 'r'},
        {"size", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "%s", longopts, NULL)) != -1) {
        if (c == '?') { printf("ERROR\n"); return 0; }
        if (optarg) printf("%%c=%%s\n", c, optarg); else printf("%%c\n", c);
    }
    return 0;
}
"""

Result = Tuple[List[Tuple[str, Optional[str]]], Optional[str]]


@pytest.fixture(scope="module")
def glibc_getopt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_getopt_oracle(HELPER_SOURCE % SHORT_OPTIONS, tmp_path_factory.mktemp("oracle"))


def _glibc(binary: Path, args: List[str]) -> Result:
    result = subprocess.run(
        ["prog", *args],
        executable=str(binary),
        capture_output=True,
        text=True,
        check=True,
        env={},
    )
    options: List[Tuple[str, Optional[str]]] = []
    error = None
    for line in result.stdout.splitlines():
        if line == "ERROR":
            error = result.stderr.splitlines()[0]
        else:
            letter, _, value = line.partition("=")
            options.append((letter, value if "=" in line else None))
    return options, error


def _ours(args: List[str]) -> Result:
    options: List[Tuple[str, Optional[str]]] = []
    try:
        for letter, value in getopt_long(["prog", *args], SHORT_OPTIONS, LONG_OPTIONS, environ={}):
            options.append((letter, value))
    except GetoptError as exc:
        return options, f"prog: {exc}"
    return options, None


TOKENS = st.sampled_from(
    [
        "-k",
        "-kF",
        "-l",
        "-lk",
        "-lkF",
        "-s",
        "-s1",
        "-r",
        "-m",
        "-mX",
        "-h",
        "-x",
        "-lx",
        "--key-file",
        "--key-file=F",
        "--key",
        "--key=F",
        "--k",
        "--k=",
        "--size=9",
        "--size",
        "--s",
        "--less-secure",
        "--less",
        "--l",
        "--less=1",
        "--help",
        "--he",
        "--help=x",
        "--random-file",
        "--r=F",
        "--foo",
        "--foo=1",
        "--",
        "-",
        "op",
        "--=x",
        "-:",
        "-k:",
        "---x",
        "-ls",
        "-hk",
        "F",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=7))
def test_same_options_and_errors_as_glibc(glibc_getopt: Path, args: List[str]) -> None:
    # Values are compared only when glibc parses without errors; messages always.
    assert _ours(args) == _glibc(glibc_getopt, args)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="-klsrmhx=F:o ", max_size=6), max_size=5))
def test_same_as_glibc_on_arbitrary_words(glibc_getopt: Path, args: List[str]) -> None:
    assert _ours(args) == _glibc(glibc_getopt, args)


def test_posixly_correct_stops_at_the_first_operand() -> None:
    parsed = list(
        getopt_long(["p", "op", "-l"], SHORT_OPTIONS, LONG_OPTIONS, {"POSIXLY_CORRECT": "1"})
    )
    assert parsed == []
    assert list(getopt_long(["p", "op", "-l"], SHORT_OPTIONS, LONG_OPTIONS, {})) == [("l", None)]


# ----------------------------------------------------------------------------- strtoll

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.strtoll.restype = ctypes.c_longlong
_libc.strtoll.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]


def _c_strtoll_whole(text: str) -> Optional[int]:
    """What corosync-keygen accepts: errno 0 and the whole string consumed."""
    raw = text.encode()
    buffer = ctypes.create_string_buffer(raw)
    end = ctypes.c_char_p()
    ctypes.set_errno(0)
    value = _libc.strtoll(buffer, ctypes.byref(end), 10)
    if ctypes.get_errno() != 0:
        return None
    consumed = ctypes.cast(end, ctypes.c_void_p).value - ctypes.addressof(buffer)  # type: ignore[operator]
    if consumed != len(raw):
        return None
    if consumed == 0 or not raw.strip(b" \t\n\v\f\r+-"):
        return None  # nothing converted: end == start, which corosync-keygen lets through as 0
    return int(value)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=" \t+-0123456789x_.e\n", max_size=25))
def test_strtoll_matches_libc(text: str) -> None:
    assert strtoll_base10(text) == _c_strtoll_whole(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (" 256", 256),
        ("+256", 256),
        ("256x", None),
        ("0x100", None),
        ("", None),
        ("-5", -5),
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", None),
        ("1_000", None),
    ],
)
def test_strtoll_examples(text: str, value: Optional[int]) -> None:
    assert strtoll_base10(text) == value
