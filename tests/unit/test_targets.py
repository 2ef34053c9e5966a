"""Target specs: nmap's syntax, lazy expansion, exclusions, name resolution, one-line errors.

nmap itself is the oracle for expansion: ``nmap -sL -n`` lists the
addresses a spec means without sending a packet (list scan, no DNS).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline.core.targets import (
    HostnameSpec,
    Ipv4Ranges,
    Ipv6Block,
    Target,
    iter_targets,
    parse_target_spec,
    read_target_file,
)
from leadline.errors import TargetSpecError

# One table drives both the expansion test and the nmap oracle test.
EXPANSIONS: list[tuple[str, list[str]]] = [
    ("198.18.0.5", ["198.18.0.5"]),
    ("198.18.0,3-5.1", ["198.18.0.1", "198.18.3.1", "198.18.4.1", "198.18.5.1"]),
    ("198.18.9.-3", ["198.18.9.0", "198.18.9.1", "198.18.9.2", "198.18.9.3"]),
    ("198.18.9.253-", ["198.18.9.253", "198.18.9.254", "198.18.9.255"]),
    ("198.18.9.9/30", ["198.18.9.8", "198.18.9.9", "198.18.9.10", "198.18.9.11"]),
    ("198.18.9.9/32", ["198.18.9.9"]),
    ("198.18.0-1.9/31", ["198.18.0.8", "198.18.0.9", "198.18.1.8", "198.18.1.9"]),
    ("198.18.1,5.7/31", ["198.18.1.6", "198.18.1.7", "198.18.5.6", "198.18.5.7"]),
    ("2001:db8::1/126", ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]),
    ("2001:db8::abcd", ["2001:db8::abcd"]),
]


def addresses_of(text: str) -> list[str]:
    spec = parse_target_spec(text)
    assert isinstance(spec, (Ipv4Ranges, Ipv6Block))
    return list(spec.addresses())


@pytest.mark.parametrize(("text", "expected"), EXPANSIONS)
def test_expansion(text: str, expected: list[str]) -> None:
    spec = parse_target_spec(text)
    assert addresses_of(text) == expected
    assert spec.count() == len(expected)


@pytest.mark.parametrize(
    ("text", "count"),
    [("198.18.0.0/24", 256), ("198.18.0.0/15", 2**17), ("0.0.0.0/0", 2**32), ("198.18.9.-", 256),
     ("198.18-19.0-255.-", 2 * 256**2), ("2001:db8::/64", 2**64), ("::/0", 2**128)],
)
def test_count_without_expanding(text: str, count: int) -> None:
    assert parse_target_spec(text).count() == count


def test_slash_24_includes_network_and_broadcast_addresses() -> None:
    addresses = addresses_of("198.18.7.0/24")
    assert addresses[0] == "198.18.7.0"
    assert addresses[-1] == "198.18.7.255"
    assert len(addresses) == 256


def test_whole_internet_starts_instantly() -> None:
    started = time.perf_counter()
    spec = parse_target_spec("0.0.0.0/0")
    assert isinstance(spec, Ipv4Ranges)
    iterator = spec.addresses()
    first = [next(iterator) for _ in range(10)]
    assert first[:3] == ["0.0.0.0", "0.0.0.1", "0.0.0.2"]
    assert spec.address_at(2**32 - 1) == "255.255.255.255"
    assert time.perf_counter() - started < 0.1


def test_address_at_reaches_every_address_of_a_block_by_index() -> None:
    spec = parse_target_spec("198.18.4-5.0/25")
    assert isinstance(spec, Ipv4Ranges)
    assert [spec.address_at(index) for index in range(spec.count())] == list(spec.addresses())
    assert spec.address_at(128) == "198.18.5.0"


octet_item = st.one_of(
    st.integers(0, 255).map(str),
    st.tuples(st.integers(0, 255), st.integers(0, 255)).map(lambda pair: f"{min(pair)}-{max(pair)}"),
    st.integers(0, 255).map(lambda low: f"{low}-"),
    st.integers(0, 255).map(lambda high: f"-{high}"),
)
small_octet = st.lists(st.integers(0, 255).map(str), min_size=1, max_size=3).map(",".join)
any_octet = st.lists(octet_item, min_size=1, max_size=3).map(",".join)


@given(first=small_octet, second=small_octet, third=small_octet, fourth=any_octet)
@settings(max_examples=80, deadline=None)
def test_lazy_expansion_agrees_with_count_index_and_membership(first: str, second: str, third: str, fourth: str) -> None:
    spec = parse_target_spec(f"{first}.{second}.{third}.{fourth}")
    assert isinstance(spec, Ipv4Ranges)
    expanded = list(spec.addresses())
    assert len(expanded) == spec.count()
    assert len(set(expanded)) == len(expanded)
    assert expanded == sorted(expanded, key=lambda address: int(ipaddress.IPv4Address(address)))
    for index in (0, len(expanded) // 2, len(expanded) - 1):
        assert spec.address_at(index) == expanded[index]
        assert spec.contains(expanded[index])


@given(address=st.integers(0, 2**32 - 1), prefix=st.integers(18, 32))
@settings(max_examples=80, deadline=None)
def test_cidr_matches_the_ipaddress_network(address: int, prefix: int) -> None:
    text = f"{ipaddress.IPv4Address(address)}/{prefix}"
    network = ipaddress.ip_network(text, strict=False)
    spec = parse_target_spec(text)
    assert isinstance(spec, Ipv4Ranges)
    assert spec.count() == network.num_addresses
    assert spec.address_at(0) == str(network.network_address)
    assert spec.address_at(spec.count() - 1) == str(network.broadcast_address)
    assert not spec.contains(str(network.broadcast_address + 1)) if int(network.broadcast_address) < 2**32 - 1 else True


def test_hostname_specs_carry_name_prefix_and_family() -> None:
    spec = parse_target_spec("scanme.example/30")
    assert isinstance(spec, HostnameSpec)
    assert (spec.name, spec.prefix, spec.family, spec.count()) == ("scanme.example", 30, 4, 4)
    spec6 = parse_target_spec("host_1.lab.", ipv6=True)
    assert isinstance(spec6, HostnameSpec)
    assert (spec6.name, spec6.prefix, spec6.family, spec6.count()) == ("host_1.lab.", None, 6, 1)
    assert parse_target_spec("h/120", ipv6=True).count() == 256


def test_ipv6_zone_is_kept_on_the_address() -> None:
    assert addresses_of("fe80::1%lo") == ["fe80::1%lo"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("198.18.9.256", "'198.18.9.256'"),
        ("198.18.9.1.1", "four"),
        ("198.18.9", "four"),
        ("198.18.5-1.1", "backwards"),
        ("198.18..1", "bad octet"),
        ("198.18.1,,2.1", "bad octet"),
        ("198.18.1.1234", "'198.18.1.1234'"),
        ("198.18.9.9/33", "0 to 32"),
        ("198.18.9.9/", "0 to 32"),
        ("198.18.9.9/x", "0 to 32"),
        ("/24", "nothing before"),
        ("2001:db8::/129", "0 to 128"),
        ("2001:db8:::1", "IPv6"),
        ("2001:db8::1-5", "IPv6"),
        ("fe80::1%", "zone"),
        ("bad!host", "'!'"),
        ("two words", "' '"),
        ("a..b", "empty label"),
        ("x" * 64 + ".example", "63"),
        ("name/33", "0 to 32"),
        ("", "empty"),
    ],
)
def test_malformed_specs_raise_one_line_naming_the_token(text: str, fragment: str) -> None:
    with pytest.raises(TargetSpecError) as caught:
        parse_target_spec(text)
    message = str(caught.value)
    assert message.startswith(f"invalid target specification '{text}': ")
    assert fragment in message
    assert "\n" not in message


def test_read_target_file_splits_on_whitespace_and_drops_comments() -> None:
    text = "198.18.0.1 198.18.0.2\n# a comment line\n\tname.example  # trailing comment 198.18.0.9\n\n198.18.1.0/30\n"
    assert list(read_target_file(text)) == ["198.18.0.1", "198.18.0.2", "name.example", "198.18.1.0/30"]


class Recorder:
    """Collects warnings the way the CLI would print them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


ZONE = {
    ("multi.lab", 4): ["198.18.3.10", "198.18.3.11", "198.18.3.12"],
    ("multi.lab", 6): ["2001:db8::10"],
    ("single.lab", 4): ["198.18.1.10"],
    ("far.lab", 4): ["198.18.3.10"],
}


def zone_resolver(name: str, family: int) -> list[str]:
    """A resolver over a fixed zone; unknown names fail as getaddrinfo does."""
    if name == "broken.lab":
        raise OSError("temporary failure in name resolution")
    return list(ZONE.get((name, family), []))


def test_name_with_several_addresses_scans_the_first_and_lists_the_rest() -> None:
    warn = Recorder()
    targets = list(iter_targets(["multi.lab"], resolve=zone_resolver, warn=warn))
    assert targets == [Target("198.18.3.10", 4, "multi.lab", ("198.18.3.11", "198.18.3.12"))]
    assert warn.lines == []


def test_ipv6_name_resolution_uses_family_6() -> None:
    targets = list(iter_targets(["multi.lab"], resolve=zone_resolver, ipv6=True, warn=Recorder()))
    assert targets == [Target("2001:db8::10", 6, "multi.lab")]


def test_unresolvable_names_warn_as_nmap_does_and_scanning_continues() -> None:
    warn = Recorder()
    targets = list(iter_targets(["nowhere.lab", "broken.lab", "198.18.0.1"], resolve=zone_resolver, warn=warn))
    assert [target.address for target in targets] == ["198.18.0.1"]
    assert warn.lines == ['Failed to resolve "nowhere.lab".', 'Failed to resolve "broken.lab".']


def test_a_name_with_only_the_other_family_says_which_flag_to_change() -> None:
    warn = Recorder()
    assert list(iter_targets(["single.lab"], resolve=zone_resolver, ipv6=True, warn=warn)) == []
    assert warn.lines == [
        "Warning: Hostname single.lab resolves, but not to any IPv6 address. Try scanning without -6",
        'Failed to resolve "single.lab".',
    ]


def test_name_with_prefix_scans_the_block_and_names_only_the_resolved_address() -> None:
    targets = list(iter_targets(["single.lab/30"], resolve=zone_resolver, warn=Recorder()))
    assert [target.address for target in targets] == ["198.18.1.8", "198.18.1.9", "198.18.1.10", "198.18.1.11"]
    assert [target.hostname for target in targets] == [None, None, "single.lab", None]


def test_family_mismatch_is_a_warning_line_not_a_crash() -> None:
    warn = Recorder()
    targets = list(iter_targets(["::1", "198.18.0.7"], resolve=zone_resolver, warn=warn))
    assert [target.address for target in targets] == ["198.18.0.7"]
    assert warn.lines == ["::1 looks like an IPv6 target specification -- you have to use the -6 option."]
    warn6 = Recorder()
    targets6 = list(iter_targets(["198.18.0.7", "2001:db8::7"], resolve=zone_resolver, ipv6=True, warn=warn6))
    assert [target.address for target in targets6] == ["2001:db8::7"]
    assert warn6.lines[-1] == 'Failed to resolve "198.18.0.7".'


def test_exclusions_by_range_cidr_and_name() -> None:
    targets = iter_targets(
        ["198.18.3.0/28", "far.lab"],
        exclude=["198.18.3.0-4", "198.18.3.8/30", "far.lab"],
        resolve=zone_resolver,
        warn=Recorder(),
    )
    assert [target.address for target in targets] == ["198.18.3.5", "198.18.3.6", "198.18.3.7", "198.18.3.12",
                                                       "198.18.3.13", "198.18.3.14", "198.18.3.15"]


def test_excluding_most_of_a_slash_16_is_cheap() -> None:
    started = time.perf_counter()
    targets = iter_targets(["198.18.0.0/16"], exclude=["198.18.0.0/17", "198.18.128-255.1-255"],
                           resolve=zone_resolver, warn=Recorder())
    assert [target.address for target in targets] == [f"198.18.{third}.0" for third in range(128, 256)]
    assert time.perf_counter() - started < 2


def test_bad_exclusion_fails_at_call_time() -> None:
    with pytest.raises(TargetSpecError, match="'198.18.0.300'"):
        iter_targets(["198.18.0.1"], exclude=["198.18.0.300"], resolve=zone_resolver, warn=Recorder())


def test_expansion_is_lazy_over_the_spec_list() -> None:
    def specs():
        yield "198.18.0.1"
        raise AssertionError("the second spec must not be read before the first target is used")

    targets = iter_targets(specs(), resolve=zone_resolver, warn=Recorder())
    assert next(targets) == Target("198.18.0.1", 4)


def nmap_list_scan(spec: str, ipv6: bool) -> list[str]:
    """Addresses nmap lists for ``spec``: -sL -n sends no packet and does no DNS."""
    command = ["nmap", "-sL", "-n", *(["-6"] if ipv6 else []), spec]
    output = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
    return re.findall(r"Nmap scan report for (\S+)", output)


@pytest.mark.parametrize(("text", "expected"), EXPANSIONS + [("198.18.0-3,7.1-2/23", []), ("198.18.1.200/25", [])])
def test_expansion_matches_nmap_list_scan(text: str, expected: list[str]) -> None:
    assert addresses_of(text) == nmap_list_scan(text, ipv6=":" in text)


@given(st.text(alphabet=st.sampled_from("0123456789.,-/:%abcxyz_[]! "), max_size=40) | st.text(max_size=20))
@settings(max_examples=400, deadline=None)
def test_any_input_parses_or_raises_target_spec_error(text: str) -> None:
    try:
        spec = parse_target_spec(text)
    except TargetSpecError as error:
        assert "\n" not in str(error)
    else:
        assert spec.count() >= 1


def test_absurdly_long_numbers_are_spec_errors() -> None:
    with pytest.raises(TargetSpecError, match="above 255"):
        parse_target_spec("1.2.3." + "9" * 5000)


def test_randomize_hosts_shuffles_block_by_block_without_reading_ahead_further() -> None:
    import random

    from leadline.core.targets import shuffled_in_blocks

    pulled: list[int] = []

    def stream():  # type: ignore[no-untyped-def]
        for index in range(10):
            pulled.append(index)
            yield Target(f"198.18.0.{index}", 4)

    shuffled = shuffled_in_blocks(stream(), random.Random(3), block=4)
    first = [next(shuffled) for _ in range(4)]
    assert len(pulled) == 4  # one block read, no more
    assert sorted(t.address for t in first) == [f"198.18.0.{i}" for i in range(4)]
    rest = list(shuffled)
    assert sorted(t.address for t in rest) == sorted(f"198.18.0.{i}" for i in range(4, 10))
    assert [t.address for t in first + rest] != [f"198.18.0.{i}" for i in range(10)]
