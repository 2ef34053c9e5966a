"""The option parser where a user who knows nmap is surprised: levels, dashes, refusals, wording."""

from __future__ import annotations

import subprocess
import sys

import pytest

from leadline.errors import UsageError
from leadline.options import NOT_WITH_SCAN_TYPES, NO_PORTS_WITHOUT_SCAN, parse_args, port_warnings


def test_verbosity_and_debugging_take_any_level() -> None:
    assert parse_args(["-v10", "x"]).config.verbosity == 10
    assert parse_args(["-d5", "x"]).config.debugging == 5


@pytest.mark.parametrize("dash", ["\u2014", "\u2013", "\u2212"])
def test_a_pasted_dash_is_named(dash: str) -> None:
    with pytest.raises(UsageError, match=r"Unparseable option \(dash, not '-'\) in argument 2"):
        parse_args(["-sL", f"{dash}sT", "x"])
    assert parse_args(["--", f"{dash}odd-name"]).config.targets == (f"{dash}odd-name",)  # after --, a target


@pytest.mark.parametrize("argv, words", [
    (["-sL", "-sS", "x"], NOT_WITH_SCAN_TYPES),
    (["-sn", "-sA", "x"], NOT_WITH_SCAN_TYPES),
    (["-sL", "-p", "80", "x"], NO_PORTS_WITHOUT_SCAN),
    (["-sn", "-F", "x"], NO_PORTS_WITHOUT_SCAN),
    (["--min-hostgroup", "5", "--max-hostgroup", "1", "x"], "may not be set to less than the minimum size (currently 5)"),
    (["-p", "198.18.1.20"], "Your port specifications are illegal."),
    (["-p198.18.1.0/24", "x"], "Your port specifications are illegal."),
    (["-p", "fe80::1", "x"], "Your port specifications are illegal."),
])
def test_nmaps_refusals(argv: list[str], words: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_args(argv)
    assert words in str(caught.value)


@pytest.mark.parametrize("argv", [["-sL", "--top-ports", "5", "x"], ["-sL", "--scanflags", "SYN", "x"],
                                  ["-p", "80,443,T:22", "x"], ["-p", "http*", "x"], ["-p", "1-1024", "x"]])
def test_what_nmap_accepts_is_accepted(argv: list[str]) -> None:
    parse_args(argv)


def test_scanflags_with_connect_scan_warns_in_nmaps_words() -> None:
    parsed = parse_args(["-sT", "--scanflags", "SYN", "x"])
    assert parsed.warnings == ["You have specified some options that require raw socket access.\n"
                               "These options will not be honored for TCP Connect scan."]
    assert parse_args(["-sS", "--scanflags", "SYN", "x"]).warnings == []


def test_port_warnings() -> None:
    udp_only = parse_args(["-sT", "-p", "U:53", "x"]).config
    assert port_warnings(udp_only, 0, udp_scan=False) == [
        'WARNING: Your ports include "U:" but you haven\'t specified UDP scan with -sU.',
        "WARNING: a TCP scan type was requested, but no tcp ports were specified.  Skipping this scan type.",
    ]
    assert port_warnings(parse_args(["-p", "80", "x"]).config, 1, udp_scan=False) == []
    assert port_warnings(parse_args(["-sn", "x"]).config, 0, udp_scan=False) == []


@pytest.mark.parametrize("flag", ["-sO", "-sY"])
def test_not_implemented_lines_share_one_wording(flag: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_args([flag, "x"])
    message = str(caught.value)
    assert " is not implemented yet; leadline runs TCP port scans (" in message and "UDP scans (-sU)" in message
    assert f"({flag.split('=')[0]}" in message or f"({flag.split('=')[0]}:" in message


def test_a_huge_bad_target_is_cut_in_the_error_line() -> None:
    bad = "a" * 5000 + "!"
    done = subprocess.run([sys.executable, "-m", "leadline", "-sL", "-n", bad], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert len(done.stderr) < 250 and "(5001 characters)" in done.stderr
