"""The lab's legacy responder, frame in, frame out: its answers and its one global IP ID counter."""

from __future__ import annotations

from leadline.core.packet import icmp, tcp
from leadline.core.packet.arp import ARPPacket, build_arp, parse_arp
from leadline.core.packet.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetFrame, build_ethernet, parse_ethernet
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, pack_ipv4, parse_ipv4
from leadline.lab.legacy import LegacyStack

ME, MY_MAC = "198.18.1.75", "02:4c:11:00:00:75"
PEER, PEER_MAC = "198.18.1.2", "02:4c:11:00:00:02"


def _tcp_frame(dport: int, flags: int, src: str = PEER) -> bytes:
    segment = tcp.build_tcp(tcp.TCPSegment(40000, dport, seq=1000, ack=5000, flags=flags), pack_ipv4(src), pack_ipv4(ME))
    packet = build_ipv4(IPv4Header(src, ME, tcp.PROTOCOL, segment))
    return build_ethernet(EthernetFrame(MY_MAC, PEER_MAC, ETHERTYPE_IPV4, packet))


def _reply(stack: LegacyStack, frame: bytes) -> tuple[IPv4Header, tcp.TCPSegment]:
    answer = stack.answer(frame)
    assert answer is not None
    packet = parse_ipv4(parse_ethernet(answer).payload)
    return packet, tcp.parse_tcp(packet.payload)


def test_answers_and_one_counter_for_every_destination() -> None:
    stack = LegacyStack(ME, MY_MAC, {80}, start=100)
    synack, segment = _reply(stack, _tcp_frame(80, tcp.TCPFlag.SYN))
    assert segment.flags == tcp.TCPFlag.SYN | tcp.TCPFlag.ACK and segment.ack == 1001
    assert (synack.ttl, segment.window, synack.ident) == (128, 8192, 101)
    rst, segment = _reply(stack, _tcp_frame(81, tcp.TCPFlag.SYN, src="198.18.1.10"))
    assert segment.flags == tcp.TCPFlag.RST | tcp.TCPFlag.ACK and rst.ident == 102 and rst.dst == "198.18.1.10"
    rst, segment = _reply(stack, _tcp_frame(80, tcp.TCPFlag.SYN | tcp.TCPFlag.ACK))
    assert segment.flags == tcp.TCPFlag.RST and segment.seq == 5000 and rst.ident == 103
    assert stack.answer(_tcp_frame(80, tcp.TCPFlag.ACK)) is None  # the end of our own handshake
    assert stack.answer(_tcp_frame(81, tcp.TCPFlag.RST)) is None


def test_arp_echo_and_garbage() -> None:
    stack = LegacyStack(ME, MY_MAC, set(), start=7)
    request = ARPPacket(1, PEER_MAC, PEER, "00:00:00:00:00:00", ME)
    answer = stack.answer(build_ethernet(EthernetFrame("ff:ff:ff:ff:ff:ff", PEER_MAC, ETHERTYPE_ARP, build_arp(request))))
    assert answer is not None and parse_arp(parse_ethernet(answer).payload).sender_mac == MY_MAC
    echo = build_ipv4(IPv4Header(PEER, ME, icmp.PROTOCOL, icmp.build_icmp(icmp.echo_request(9, 3, b"hi"))))
    reply = stack.answer(build_ethernet(EthernetFrame(MY_MAC, PEER_MAC, ETHERTYPE_IPV4, echo)))
    assert reply is not None
    packet = parse_ipv4(parse_ethernet(reply).payload)
    message = icmp.parse_icmp(packet.payload)
    assert (message.type, message.ident, message.sequence, message.body, packet.ident) == (0, 9, 3, b"hi", 8)
    for junk in (b"", b"\x00" * 13, _tcp_frame(80, tcp.TCPFlag.SYN)[:30], b"\xff" * 60):
        assert stack.answer(junk) is None


def test_other_stacks_counters() -> None:
    assert [LegacyStack(ME, MY_MAC, set(), "by-two", start=0).next_ipid() for _ in range(1)] == [2]
    little = LegacyStack(ME, MY_MAC, set(), "little-endian", start=0)
    assert [little.next_ipid(), little.next_ipid()] == [0x0100, 0x0200]
    assert LegacyStack(ME, MY_MAC, set(), "zero").next_ipid() == 0


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 119))
def test_any_frame_gets_an_answer_or_none_never_a_crash(noise: bytes, cut: int) -> None:
    stack = LegacyStack(ME, MY_MAC, {80}, start=1)
    frame = _tcp_frame(80, tcp.TCPFlag.SYN)
    stack.answer(noise)
    stack.answer(frame[:cut] + noise)
    stack.answer(frame[:14] + noise)


def test_per_destination_counters() -> None:
    stack = LegacyStack(ME, MY_MAC, set(), "per-destination", start=0)
    a1 = stack.next_ipid("198.18.1.2")
    others = [stack.next_ipid("198.18.1.10") for _ in range(5)]
    assert stack.next_ipid("198.18.1.2") == (a1 + 1) % 65536  # packets to others did not move our counter
    assert others == [(others[0] + i) % 65536 for i in range(5)]
