"""Port specs: nmap's -p syntax, the default list, exclusions, compact rendering.

nmap is the oracle: run with no target it parses the port options and
prints the chosen ports in XML ``<scaninfo services=...>`` without
sending a packet.
"""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline.core.ports import PortList, compact, parse_port_spec, select_ports
from leadline.errors import PortSpecError
from leadline.services import ServiceTable

SAMPLE_TABLE = ServiceTable.parse(
    """
ftp-data   20/tcp  0.001
ftp        21/tcp  0.19
ssh        22/tcp  0.18
telnet     23/tcp  0.22
domain     53/tcp  0.04
domain     53/udp  0.21
http       80/tcp  0.48
snmp      161/udp  0.43
https     443/tcp  0.20
http-alt 8080/tcp  0.04
http-proxy 3128/tcp 0.006
"""
)
NMAP_TABLE = ServiceTable.load()


def parse(text: str, protocols: set[str] | None = None) -> PortList:
    return parse_port_spec(text, SAMPLE_TABLE, protocols or {"tcp"})


@pytest.mark.parametrize(
    ("text", "protocols", "tcp", "udp"),
    [
        ("22", {"tcp"}, (22,), ()),
        ("1-5", {"tcp"}, (1, 2, 3, 4, 5), ()),
        ("-3", {"tcp"}, (1, 2, 3), ()),
        ("65533-", {"tcp"}, (65533, 65534, 65535), ()),
        ("0", {"tcp"}, (0,), ()),
        ("0-2", {"tcp"}, (0, 1, 2), ()),
        ("22,80,22", {"tcp"}, (22, 80), ()),
        (" 22 , 80 ", {"tcp"}, (22, 80), ()),
        ("22-22", {"tcp"}, (22,), ()),
        ("53", {"tcp", "udp"}, (53,), (53,)),
        ("U:53,161,T:80", {"tcp", "udp"}, (80,), (53, 161)),
        ("1-2,U:53,T:80-81", {"tcp", "udp"}, (1, 2, 80, 81), (1, 2, 53)),
        ("U:53", {"tcp"}, (), ()),
        ("80,S:9", {"tcp"}, (80,), ()),
        ("1-3,U:", {"tcp"}, (1, 2, 3), ()),
        ("http", {"tcp"}, (80,), ()),
        ("http*", {"tcp"}, (80, 443, 3128, 8080), ()),
        ("http-*", {"tcp"}, (3128, 8080), ()),
        ("ft?", {"tcp"}, (21,), ()),
        ("ftp*,ssh", {"tcp"}, (20, 21, 22), ()),
        ("domain", {"tcp", "udp"}, (53,), (53,)),
        ("U:snmp,T:ssh", {"tcp"}, (22,), ()),
        ("[1-100]", {"tcp"}, (20, 21, 22, 23, 53, 80), ()),
        ("[-25],443", {"tcp"}, (20, 21, 22, 23, 443), ()),
        ("[20,23-60]", {"tcp"}, (20, 23, 53), ()),
    ],
)
def test_port_spec_table(text: str, protocols: set[str], tcp: tuple[int, ...], udp: tuple[int, ...]) -> None:
    assert parse(text, protocols) == PortList(tcp=tcp, udp=udp)


def test_dash_alone_is_every_port_but_zero() -> None:
    ports = parse("-")
    assert ports.tcp == tuple(range(1, 65536))
    assert parse("0-").tcp == tuple(range(0, 65536))


@pytest.mark.parametrize(
    ("text", "token", "why"),
    [
        ("70000", "70000", "between 0 and 65535"),
        ("80,65536-", "65536-", "between 0 and 65535"),
        ("5-1", "5-1", "backwards"),
        ("1,,2", "1,,2", "empty port"),
        ("22,", "22,", "empty port"),
        ("t:80", "t:80", "unknown protocol prefix"),
        ("P:6", "P:6", "unknown protocol prefix"),
        ("nosuchservice", "nosuchservice", "no service"),
        ("HTTP", "HTTP", "no service"),
        ("U:ssh", "ssh", "no service"),
        ("22;23", "22;23", "not a port"),
        ("1-2-3", "1-2-3", "not a port"),
        ("T:", "T:", "no ports specified"),
        ("", "", "empty"),
        ("[1-10", "[1-10", "without ']'"),
        ("1-10]", "1-10]", "without '['"),
    ],
)
def test_bad_port_specs_raise_one_line_naming_the_token(text: str, token: str, why: str) -> None:
    with pytest.raises(PortSpecError) as caught:
        parse(text)
    message = str(caught.value)
    assert message.startswith(f"invalid port specification '{token}'")
    assert why in message
    assert "\n" not in message


def test_default_is_top_1000_per_protocol() -> None:
    ports = select_ports(spec=None, top_ports=None, exclude=None, protocols={"tcp", "udp"}, services=NMAP_TABLE)
    assert ports.tcp == tuple(sorted(NMAP_TABLE.top(1000, "tcp")))
    assert ports.udp == tuple(sorted(NMAP_TABLE.top(1000, "udp")))
    assert len(ports.tcp) == len(ports.udp) == 1000


def test_top_ports_within_a_spec_and_after_exclusion() -> None:
    within = select_ports(spec="20-25,80", top_ports=3, exclude=None, protocols={"tcp"}, services=SAMPLE_TABLE)
    assert within.tcp == (21, 23, 80)
    excluded = select_ports(spec=None, top_ports=3, exclude="80", protocols={"tcp"}, services=SAMPLE_TABLE)
    assert excluded.tcp == (21, 23, 443)
    assert excluded.udp == ()


def test_exclude_removes_from_an_explicit_spec() -> None:
    ports = select_ports(spec="1-10", top_ports=None, exclude="3-8,U:1", protocols={"tcp", "udp"}, services=SAMPLE_TABLE)
    assert ports == PortList(tcp=(1, 2, 9, 10), udp=(2, 9, 10))


def test_negative_top_ports_is_rejected() -> None:
    with pytest.raises(PortSpecError, match="'-1'"):
        select_ports(spec=None, top_ports=-1, exclude=None, protocols={"tcp"}, services=SAMPLE_TABLE)


@pytest.mark.parametrize(
    ("ports", "expected"),
    [([], ""), ([80], "80"), ([1, 2], "1-2"), ([3, 1, 2, 2, 8080, 5], "1-3,5,8080"), (list(range(1, 1025)), "1-1024")],
)
def test_compact(ports: list[int], expected: str) -> None:
    assert compact(ports) == expected


@given(st.sets(st.integers(0, 65535), min_size=1, max_size=300))
@settings(max_examples=150, deadline=None)
def test_compact_round_trips_through_the_parser(ports: set[int]) -> None:
    assert parse_port_spec(compact(sorted(ports)), SAMPLE_TABLE, {"tcp", "udp"}) == PortList(
        tcp=tuple(sorted(ports)), udp=tuple(sorted(ports))
    )


def nmap_scaninfo(arguments: str) -> dict[str, str] | None:
    """nmap's chosen ports per protocol, or None when nmap rejects the options.

    No target is given, so nmap parses the options, writes the XML header
    and stops: nothing is sent.
    """
    command = ["nmap", "-oX", "-", *shlex.split(arguments)]
    output = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    found = re.findall(r'<scaninfo [^>]*protocol="(\w+)"[^>]*services="([^"]*)"', output)
    return dict(found) if found else None


@pytest.mark.parametrize(
    "arguments",
    [
        "-sT",
        "-sT -F",
        "-sT --top-ports 37",
        "-sT -p 1-100 --top-ports 5",
        "-sT --top-ports 5 --exclude-ports 80",
        "-sT -p 1-100 --exclude-ports 20-30",
        "-sT -p http*",
        "-sT -p ftp*,ss?,snmp",
        "-sT -p [1-100]",
        "-sT -p [-100],8080",
        "-sT -p 0-5,U:53,T:6",
        "-sT -p -",
        "-sT -p 1,3-4,7",
        "-sT -p 70000",
        "-sT -p 5-1",
        "-sT -p 1,,2",
        "-sT -p t:80",
        "-sT -p nosuchservice",
    ],
)
def test_port_selection_matches_nmap(arguments: str) -> None:
    words = shlex.split(arguments)
    options = dict(zip(words, words[1:]))
    top = 100 if "-F" in words else int(options["--top-ports"]) if "--top-ports" in options else None
    try:
        chosen = select_ports(
            spec=options.get("-p"), top_ports=top, exclude=options.get("--exclude-ports"),
            protocols={"tcp"}, services=NMAP_TABLE,
        )
        ours: dict[str, str] | None = {"tcp": compact(chosen.tcp)}
    except PortSpecError:
        ours = None
    assert ours == nmap_scaninfo(arguments)


@given(st.text(alphabet=st.sampled_from("0123456789,-:TUSPtu[]*?htpsf "), max_size=30) | st.text(max_size=15))
@settings(max_examples=400, deadline=None)
def test_any_input_parses_or_raises_port_spec_error(text: str) -> None:
    try:
        ports = parse_port_spec(text, SAMPLE_TABLE, {"tcp", "udp"})
    except PortSpecError as error:
        assert "\n" not in str(error)
    else:
        assert all(0 <= port <= 65535 for port in ports.tcp + ports.udp)


def test_absurdly_long_numbers_are_spec_errors() -> None:
    with pytest.raises(PortSpecError, match="between 0 and 65535"):
        parse("9" * 5000)
