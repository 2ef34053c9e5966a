"""Property tests: whatever we build, we parse back to the same fields, with valid checksums."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from leadline.core.packet.checksum import internet_checksum, transport_checksum
from leadline.core.packet.icmp import ICMPMessage, build_icmp, parse_icmp
from leadline.core.packet.icmpv6 import ICMPv6Message, build_icmpv6, parse_icmpv6
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, parse_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6, parse_ipv6
from leadline.core.packet.parse import pack_address, parse_datagram
from leadline.core.packet.tcp import TCPOption, TCPSegment, build_tcp, parse_tcp
from leadline.core.packet.udp import UDPDatagram, build_udp, parse_udp

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(lambda a: ipaddress.IPv6Address(a).compressed)
option = st.one_of(
    st.builds(TCPOption, st.just(1)),
    st.builds(TCPOption, st.integers(2, 254), st.binary(max_size=6)),
)


@given(v4, v4, u8, st.binary(max_size=64), u8, u16, u8, st.integers(0, 7), st.integers(0, 0x1FFF), st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4)))
def test_ipv4_round_trip(src: str, dst: str, proto: int, payload: bytes, ttl: int, ident: int, tos: int, flags: int, frag: int, options: bytes) -> None:
    header = IPv4Header(src, dst, proto, payload, ttl, ident, tos, flags, frag, options)
    raw = build_ipv4(header)
    back = parse_ipv4(raw)
    assert internet_checksum(raw[: back.header_length]) == 0
    assert (back.src, back.dst, back.protocol, back.payload, back.ttl, back.ident, back.tos, back.flags, back.frag_offset, back.options) == (
        src, dst, proto, payload, ttl, ident, tos, flags, frag, options,
    )
    assert build_ipv4(back) == raw


@given(v6, v6, u8, st.binary(max_size=64), u8, u8, st.integers(0, 0xFFFFF))
def test_ipv6_round_trip(src: str, dst: str, nxt: int, payload: bytes, hlim: int, tclass: int, flow: int) -> None:
    header = IPv6Header(src, dst, nxt, payload, hlim, tclass, flow)
    back = parse_ipv6(build_ipv6(header))
    assert back == IPv6Header(src, dst, nxt, payload, hlim, tclass, flow, len(payload))


@given(st.one_of(v4, v6), st.one_of(v4, v6), u16, u16, u32, u32, u8, u16, st.lists(option, max_size=4), st.binary(max_size=32))
def test_tcp_round_trip_with_valid_checksum(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, window: int, options: list[TCPOption], payload: bytes) -> None:
    s, d = pack_address(src), pack_address(dst)
    segment = TCPSegment(sport, dport, seq, ack, flags, window, options=tuple(options), payload=payload)
    raw = build_tcp(segment, s, d)
    if len(raw) - len(payload) > 60:
        return  # options too long to fit a data offset; a builder misuse, not a wire case
    assert transport_checksum(s, d, 6, raw) == 0
    back = parse_tcp(raw)
    assert (back.sport, back.dport, back.seq, back.ack, back.flags, back.window, back.payload) == (sport, dport, seq, ack, flags, window, payload)
    assert back.options[: len(options)] == tuple(options)


@given(st.one_of(v4, v6), st.one_of(v4, v6), u16, u16, st.binary(max_size=64))
def test_udp_round_trip_with_valid_checksum(src: str, dst: str, sport: int, dport: int, payload: bytes) -> None:
    s, d = pack_address(src), pack_address(dst)
    raw = build_udp(UDPDatagram(sport, dport, payload), s, d)
    assert transport_checksum(s, d, 17, raw) in (0, 0xFFFF) or raw[6:8] == b"\xff\xff"
    back = parse_udp(raw)
    assert (back.sport, back.dport, back.payload, back.length) == (sport, dport, payload, 8 + len(payload))


@given(st.sampled_from([0, 8, 13, 14, 17, 18]), u8, u32, st.binary(max_size=40))
def test_icmp_query_round_trip(icmp_type: int, code: int, rest: int, body: bytes) -> None:
    raw = build_icmp(ICMPMessage(icmp_type, code, rest, body))
    assert internet_checksum(raw) == 0
    assert parse_icmp(raw) == ICMPMessage(icmp_type, code, rest, body, parse_icmp(raw).checksum)


@given(v6, v6, st.sampled_from([128, 129, 135, 136]), u32, st.binary(max_size=40))
def test_icmpv6_round_trip(src: str, dst: str, icmp_type: int, rest: int, body: bytes) -> None:
    s, d = pack_address(src), pack_address(dst)
    raw = build_icmpv6(ICMPv6Message(icmp_type, 0, rest, body), s, d)
    assert transport_checksum(s, d, 58, raw) == 0
    back = parse_icmpv6(raw)
    assert (back.type, back.rest, back.body) == (icmp_type, rest, body)


@given(v4, v4, u16, u16, u32)
def test_icmp_error_quote_is_parsed(us: str, target: str, sport: int, dport: int, seq: int) -> None:
    probe = build_ipv4(IPv4Header(us, target, 6, build_tcp(TCPSegment(sport, dport, seq), pack_address(us), pack_address(target))))
    for quoted_bytes in (probe, probe[:28]):  # whole datagram (Linux) or header + 8 bytes (RFC 792)
        error = build_ipv4(IPv4Header("198.18.1.1", us, 1, build_icmp(ICMPMessage(3, 13, 0, quoted_bytes))))
        message = parse_datagram(error).transport
        assert isinstance(message, ICMPMessage) and message.quoted is not None
        assert (message.quoted.src, message.quoted.dst, message.quoted.protocol) == (us, target, 6)
        from leadline.core.packet.parse import parse_quoted

        q = parse_quoted(message.quoted)
        assert (q.sport, q.dport, q.seq) == (sport, dport, seq)


def test_ipv6_extension_headers_are_skipped() -> None:
    s, d = pack_address("2001:db8::2"), pack_address("2001:db8::10")
    tcp = build_tcp(TCPSegment(1, 2, 3), s, d)
    hop_by_hop = bytes([60, 0, 1, 4, 0, 0, 0, 0])  # next: destination options; PadN
    dest_opts = bytes([6, 0, 1, 4, 0, 0, 0, 0])  # next: TCP
    raw = build_ipv6(IPv6Header("2001:db8::2", "2001:db8::10", 0, hop_by_hop + dest_opts + tcp))
    parsed = parse_datagram(raw)
    assert parsed.protocol == 6 and isinstance(parsed.transport, TCPSegment) and parsed.transport.seq == 3


def test_non_first_ipv4_fragment_has_no_transport() -> None:
    raw = build_ipv4(IPv4Header("198.18.1.2", "198.18.1.10", 6, bytes(24), frag_offset=3))
    assert parse_datagram(raw).transport is None
