"""nmap's command-line grammar: glued values, one-dash long options, clear errors."""

from __future__ import annotations

import pytest

from leadline.options import parse_args, parse_scanflags, parse_time
from leadline.config import TIMING_TEMPLATES, DiscoveryProbe, ScanType
from leadline.errors import UsageError


def cfg(*argv: str):  # type: ignore[no-untyped-def]
    return parse_args(list(argv)).config


def test_scan_types_and_targets() -> None:
    c = cfg("-sT", "198.18.1.10", "198.18.1.20")
    assert c.scan_types == (ScanType.CONNECT,)
    assert c.targets == ("198.18.1.10", "198.18.1.20")


@pytest.mark.parametrize(
    "flag,expected",
    [("-sS", ScanType.SYN), ("-sF", ScanType.FIN), ("-sX", ScanType.XMAS), ("-sN", ScanType.NULL),
     ("-sA", ScanType.ACK), ("-sW", ScanType.WINDOW), ("-sM", ScanType.MAIMON)],
)
def test_raw_scan_letters(flag: str, expected: ScanType) -> None:
    assert cfg(flag, "x").scan_types == (expected,)


def test_ports_glued_and_separate() -> None:
    assert cfg("-p22,80", "x").ports == "22,80"
    assert cfg("-p", "U:53,T:21-25", "x").ports == "U:53,T:21-25"
    assert cfg("-p-", "x").ports == "-"


def test_timing_template_sets_values_and_flags_override() -> None:
    c = cfg("-T4", "--max-retries", "1", "x")
    assert c.template == 4
    assert c.timing.max_retries == 1
    assert c.timing.max_rtt_timeout == TIMING_TEMPLATES[4].max_rtt_timeout
    assert cfg("-T", "aggressive", "x").template == 4


def test_time_units() -> None:
    assert parse_time("500ms", "--x") == 0.5
    assert parse_time("2", "--x") == 2.0
    assert parse_time("5m", "--x") == 300.0
    assert cfg("--host-timeout", "1h", "x").timing.host_timeout == 3600.0
    with pytest.raises(UsageError, match="invalid time '5x'"):
        parse_time("5x", "--host-timeout")


def test_outputs_and_oA() -> None:
    c = cfg("-oA", "base", "-oJ", "r.json", "x")
    assert (c.output.normal, c.output.xml, c.output.grepable, c.output.json) == ("base.nmap", "base.xml", "base.gnmap", "r.json")
    assert cfg("-oX", "-", "x").output.xml == "-"
    with pytest.raises(UsageError, match="standard output"):
        cfg("-oX", "-", "-oG", "-", "x")


def test_discovery_probes() -> None:
    c = cfg("-PS22,80", "-PA", "-PE", "x")
    assert c.discovery_probes == (DiscoveryProbe("syn", (22, 80)), DiscoveryProbe("ack", (80,)), DiscoveryProbe("echo", ()))
    assert cfg("-Pn", "x").skip_discovery


def test_verbosity_and_debug() -> None:
    assert cfg("-vv", "-v", "x").verbosity == 3
    assert cfg("-v3", "x").verbosity == 3
    assert cfg("-dd", "x").debugging == 2


def test_one_dash_long_options_and_equals() -> None:
    assert cfg("-top-ports", "10", "x").top_ports == 10
    assert cfg("--top-ports=20", "x").top_ports == 20
    assert cfg("-reason", "x").reason


def test_scanflags() -> None:
    assert parse_scanflags("SYNFIN") == 0x03
    assert parse_scanflags("URGACKPSHRSTSYNFIN") == 0x3F
    assert parse_scanflags("0x12") == 0x12
    with pytest.raises(UsageError, match="--scanflags 'BOGUS'"):
        parse_scanflags("BOGUS")
    assert cfg("--scanflags", "SYNFIN", "x").scan_types == (ScanType.SYN,)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["-sQ", "x"], "unsupported scan type '-sQ'"),
        (["-sZ", "x"], "the SCTP COOKIE ECHO scan (-sZ) is not implemented yet"),
        (["-O", "--max-os-tries", "0", "x"], "value 0 for --max-os-tries is out of range (1..50)"),
        (["-sV", "--version-intensity", "10", "x"], "value 10 for --version-intensity is out of range (0..9)"),
        (["--script-args", 'a="open', "x"], "unterminated"),
        (["--frobnicate", "x"], "unrecognized option '--frobnicate'"),
        (["-T7", "x"], "invalid timing template '-T7'"),
        (["--max-retries", "many", "x"], "invalid number 'many' for --max-retries"),
        (["--min-rate", "0", "x"], "must be greater than 0"),
        (["-p"], "option '-p' needs a value"),
        (["-sn", "-p", "80", "x"], "You cannot use -F (fast scan) or -p (explicit port selection) when not doing a port scan"),
        (["-sT", "-sS", "x"], "only one TCP scan type"),
        (["--min-rtt-timeout", "2s", "--max-rtt-timeout", "1s", "x"], "--min-rtt-timeout is greater"),
        (["-PZ", "x"], "unsupported host discovery option '-PZ'"),
    ],
)
def test_errors_name_the_bad_token(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_args(argv)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_randomize_hosts_is_a_flag() -> None:
    assert cfg("--randomize-hosts", "x").randomize_hosts is True
    assert cfg("x").randomize_hosts is False
