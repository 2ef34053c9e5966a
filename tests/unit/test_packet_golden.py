"""One table of packets drives both directions: build == bytes, parse(bytes) == fields.

The byte literals were produced by an independent dissector (scapy) and
are frozen here, so a regression in either direction shows up as a diff.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from leadline.core.packet.arp import ARPPacket, build_arp, parse_arp
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ethernet import EthernetFrame, build_ethernet, parse_ethernet
from leadline.core.packet.icmp import build_icmp, echo_request, parse_icmp
from leadline.core.packet.icmpv6 import build_icmpv6, neighbor_solicitation, parse_icmpv6
from leadline.core.packet.icmpv6 import echo_request as echo6
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, pack_ipv4, parse_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6, pack_ipv6, parse_ipv6
from leadline.core.packet.tcp import TCPFlag, TCPSegment, build_tcp, mss, nop, parse_tcp, sack_permitted, timestamps, window_scale
from leadline.core.packet.udp import UDPDatagram, build_udp, parse_udp

A4, B4 = pack_ipv4("198.18.1.2"), pack_ipv4("198.18.1.10")
A6, B6 = pack_ipv6("2001:db8::2"), pack_ipv6("2001:db8::10")
LL, NS_GROUP = pack_ipv6("fe80::1"), pack_ipv6("ff02::1:ff00:10")


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], bytes]
    parse: Callable[[bytes], object]
    check: Callable[[object], None]
    wire: str


def _syn_v4_parsed(p: object) -> None:
    assert isinstance(p, IPv4Header)
    assert (p.src, p.dst, p.protocol, p.ttl, p.ident, p.total_length, p.checksum) == ("198.18.1.2", "198.18.1.10", 6, 64, 0x1234, 44, 0xDA67)
    seg = parse_tcp(p.payload)
    assert (seg.sport, seg.dport, seg.seq, seg.flags, seg.window, seg.checksum) == (40000, 80, 0x01020304, TCPFlag.SYN, 1024, 0x655F)
    assert seg.options == (mss(1460),) and seg.options[0].value == 1460


def _udp_parsed(p: object) -> None:
    assert isinstance(p, IPv4Header) and p.protocol == 17
    d = parse_udp(p.payload)
    assert (d.sport, d.dport, d.length, d.checksum, d.payload) == (53000, 40125, 10, 0x9D79, b"hi")


def _echo_parsed(p: object) -> None:
    assert isinstance(p, IPv4Header) and p.checksum == 0xECAC
    m = parse_icmp(p.payload)
    assert (m.type, m.code, m.ident, m.sequence, m.checksum, m.body) == (8, 0, 0x4242, 1, 0xF159, b"abc")


def _syn_v6_parsed(p: object) -> None:
    assert isinstance(p, IPv6Header)
    assert (p.src, p.dst, p.next_header, p.hop_limit, p.payload_length) == ("2001:db8::2", "2001:db8::10", 6, 64, 24)
    seg = parse_tcp(p.payload)
    assert (seg.sport, seg.dport, seg.seq, seg.checksum) == (40000, 22, 5, 0x9C47)


def _echo6_parsed(p: object) -> None:
    assert isinstance(p, IPv6Header) and p.next_header == 58
    m = parse_icmpv6(p.payload)
    assert (m.type, m.ident, m.sequence, m.checksum) == (128, 1, 2, 0x2436)


def _arp_parsed(p: object) -> None:
    assert isinstance(p, EthernetFrame)
    assert (p.dst, p.src, p.ethertype) == ("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:01", 0x0806)
    assert parse_arp(p.payload) == ARPPacket(1, "02:00:00:00:00:01", "198.18.1.2", "00:00:00:00:00:00", "198.18.1.10")


def _ns_parsed(p: object) -> None:
    assert isinstance(p, IPv6Header) and p.hop_limit == 255
    m = parse_icmpv6(p.payload)
    assert (m.type, m.checksum, m.target, m.link_address) == (135, 0x4B43, "2001:db8::10", "02:00:00:00:00:01")


def _options_parsed(p: object) -> None:
    assert isinstance(p, TCPSegment)
    assert p.flags == TCPFlag.SYN | TCPFlag.ACK and p.data_offset == 10
    assert [o.kind for o in p.options] == [2, 4, 8, 1, 3]
    assert p.options[2].value == (1, 2) and p.options[4].value == 7


CASES = [
    Case(
        "ipv4-tcp-syn",
        lambda: build_ipv4(IPv4Header("198.18.1.2", "198.18.1.10", 6, build_tcp(TCPSegment(40000, 80, 0x01020304, options=(mss(1460),)), A4, B4), ident=0x1234)),
        parse_ipv4,
        _syn_v4_parsed,
        "4500002c123400004006da67c6120102c612010a9c400050010203040000000060020400655f0000020405b4",
    ),
    Case(
        "ipv4-udp",
        lambda: build_ipv4(IPv4Header("198.18.1.2", "198.18.1.10", 17, build_udp(UDPDatagram(53000, 40125, b"hi"), A4, B4), ident=7)),
        parse_ipv4,
        _udp_parsed,
        "4500001e000700004011ec97c6120102c612010acf089cbd000a9d796869",
    ),
    Case(
        "ipv4-icmp-echo",
        lambda: build_ipv4(IPv4Header("198.18.1.2", "198.18.1.10", 1, build_icmp(echo_request(0x4242, 1, b"abc")), ident=1)),
        parse_ipv4,
        _echo_parsed,
        "4500001f000100004001ecacc6120102c612010a0800f15942420001616263",
    ),
    Case(
        "ipv6-tcp-syn",
        lambda: build_ipv6(IPv6Header("2001:db8::2", "2001:db8::10", 6, build_tcp(TCPSegment(40000, 22, 5, options=(mss(1460),)), A6, B6))),
        parse_ipv6,
        _syn_v6_parsed,
        "600000000018064020010db800000000000000000000000220010db80000000000000000000000109c4000160000000500000000600204009c470000020405b4",
    ),
    Case(
        "ipv6-icmpv6-echo",
        lambda: build_ipv6(IPv6Header("2001:db8::2", "2001:db8::10", 58, build_icmpv6(echo6(1, 2), A6, B6))),
        parse_ipv6,
        _echo6_parsed,
        "6000000000083a4020010db800000000000000000000000220010db80000000000000000000000108000243600010002",
    ),
    Case(
        "ethernet-arp-request",
        lambda: build_ethernet(EthernetFrame("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:01", 0x0806, build_arp(ARPPacket(1, "02:00:00:00:00:01", "198.18.1.2", "00:00:00:00:00:00", "198.18.1.10")))),
        parse_ethernet,
        _arp_parsed,
        "ffffffffffff02000000000108060001080006040001020000000001c6120102000000000000c612010a",
    ),
    Case(
        "ipv6-neighbor-solicitation",
        lambda: build_ipv6(IPv6Header("fe80::1", "ff02::1:ff00:10", 58, build_icmpv6(neighbor_solicitation("2001:db8::10", "02:00:00:00:00:01"), LL, NS_GROUP), hop_limit=255)),
        parse_ipv6,
        _ns_parsed,
        "6000000000203afffe800000000000000000000000000001ff0200000000000000000001ff00001087004b430000000020010db80000000000000000000000100101020000000001",
    ),
    Case(
        "tcp-all-options",
        lambda: build_tcp(
            TCPSegment(1, 2, 0, 0, TCPFlag.SYN | TCPFlag.ACK, 8192, options=(mss(1460), sack_permitted(), timestamps(1, 2), nop(), window_scale(7)), checksum=0),
            A4,
            B4,
        ),
        parse_tcp,
        _options_parsed,
        "000100020000000000000000a012200000000000020405b40402080a000000010000000201030307",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_build_gives_the_golden_bytes(case: Case) -> None:
    assert case.build().hex() == case.wire


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_parse_of_the_golden_bytes_gives_the_fields(case: Case) -> None:
    case.check(case.parse(bytes.fromhex(case.wire)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_truncated_input_raises_packet_error(case: Case) -> None:
    """Every cut of the datagram is refused with ``PacketError`` before any field is believed.

    A parse that succeeds on a truncated datagram would hand garbage to the
    scan modules, so success (or an ``AssertionError`` from the field checks,
    which means a short datagram parsed into wrong fields) fails the test.
    """
    wire = bytes.fromhex(case.wire)
    accepted = []
    for cut in range(len(wire)):
        try:
            case.check(case.parse(wire[:cut]))
        except PacketError:
            continue
        except AssertionError:
            accepted.append(f"{cut} bytes: parsed into wrong fields")
            continue
        accepted.append(f"{cut} bytes: parsed")
    assert not accepted, f"{case.name}: truncated datagrams not refused: {accepted}"


NS_MESSAGE = bytes.fromhex(next(c.wire for c in CASES if c.name == "ipv6-neighbor-solicitation"))[40:]


def test_a_neighbor_discovery_option_cut_short_raises_packet_error() -> None:
    """ICMPv6 has no length of its own: a cut at the option boundary is a valid NS without the option,
    but a cut inside the option must not read as "no link-layer address"."""
    assert parse_icmpv6(NS_MESSAGE).link_address == "02:00:00:00:00:01"
    assert parse_icmpv6(NS_MESSAGE[:24]).link_address is None
    for cut in range(25, len(NS_MESSAGE)):
        with pytest.raises(PacketError, match="option truncated"):
            _ = parse_icmpv6(NS_MESSAGE[:cut]).link_address
    with pytest.raises(PacketError, match="length zero"):
        _ = parse_icmpv6(NS_MESSAGE[:25] + b"\x00" + NS_MESSAGE[26:]).link_address
