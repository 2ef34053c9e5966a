"""Host discovery probes: each one's answers and errors, nmap's reasons, and forgeries ignored."""

from __future__ import annotations

import dataclasses

import pytest

from leadline.core.packet.arp import ARPPacket, build_arp
from leadline.core.packet.ethernet import EthernetFrame, build_ethernet, parse_ethernet
from leadline.core.packet.icmp import ICMPMessage, build_icmp
from leadline.core.packet.icmpv6 import ICMPv6Message, build_icmpv6, neighbor_advertisement, parse_icmpv6
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6
from leadline.core.packet.parse import pack_address, parse_datagram
from leadline.core.packet.udp import UDPDatagram, build_udp
from leadline.core.probes.base import Probe, ProbeContext, ProbeKey, ReplyKind
from leadline.core.probes.discovery import (
    ArpPing,
    HostVerdict,
    IcmpEchoPing,
    IcmpMaskPing,
    IcmpTimestampPing,
    NeighborPing,
    TcpAckPing,
    TcpSynPing,
    UdpPing,
    nd_multicast_mac,
)
from leadline.model import Reason
from tests.unit.test_probes_tcp import icmp_answer, tcp_answer

US, TARGET, ROUTER = "198.18.1.2", "198.18.1.10", "198.18.1.1"
US6, TARGET6 = "2001:db8::2", "2001:db8::10"
OUR_MAC, THEIR_MAC = "02:00:00:00:00:01", "b8:27:eb:00:00:14"
CTX = ProbeContext(US, b"discovery secret", source_mac=OUR_MAC)
CTX6 = ProbeContext(US6, b"discovery secret", family=6, source_mac=OUR_MAC)


def icmp_query_answer(probe: Probe, reply_type: int, *, ttl: int = 64, ident_shift: int = 0) -> bytes:
    """The target's answer to an ICMP query: same id/sequence, and its data echoed."""
    sent = parse_datagram(probe.packet)
    query = sent.transport
    if sent.family == 6:
        assert isinstance(query, ICMPv6Message)
        body6 = build_icmpv6(ICMPv6Message(reply_type, 0, query.rest + (ident_shift << 16), query.body), pack_address(sent.dst), pack_address(sent.src))
        return build_ipv6(IPv6Header(sent.dst, sent.src, 58, body6, hop_limit=ttl))
    assert isinstance(query, ICMPMessage)
    body = query.body
    if reply_type == 14:  # timestamp reply: originate echoed, receive/transmit filled in
        body = body[:4] + bytes.fromhex("0000aaaa0000bbbb")
    elif reply_type == 18:
        body = bytes([255, 255, 255, 0])
    message = ICMPMessage(reply_type, 0, query.rest + (ident_shift << 16), body)
    return build_ipv4(IPv4Header(sent.dst, sent.src, 1, build_icmp(message), ttl=ttl))


ICMP_PINGS = [
    (IcmpEchoPing(), 0, ReplyKind.ICMP_ECHO_REPLY, Reason.ECHO_REPLY),
    (IcmpTimestampPing(), 14, ReplyKind.ICMP_TIMESTAMP_REPLY, Reason.TIMESTAMP_REPLY),
    (IcmpMaskPing(), 18, ReplyKind.ICMP_MASK_REPLY, Reason.MASK_REPLY),
]


@pytest.mark.parametrize(("module", "reply_type", "kind", "reason"), ICMP_PINGS, ids=lambda v: getattr(v, "name", str(v)))
def test_icmp_query_answer_means_up(module: IcmpEchoPing, reply_type: int, kind: ReplyKind, reason: Reason) -> None:
    probe = module.build(TARGET, 0, 2, CTX)
    matched = module.match(icmp_query_answer(probe, reply_type, ttl=55), CTX)
    assert matched is not None
    key, reply = matched
    assert key == ProbeKey(TARGET, 0, "icmp") and reply.kind is kind and reply.attempt == 2
    assert module.classify(reply) == HostVerdict(True, reason, 55)
    assert module.classify(None) == HostVerdict(False, Reason.NO_RESPONSE)


@pytest.mark.parametrize(("module", "reply_type", "kind", "reason"), ICMP_PINGS, ids=lambda v: getattr(v, "name", str(v)))
def test_icmp_query_forgeries_are_ignored(module: IcmpEchoPing, reply_type: int, kind: ReplyKind, reason: Reason) -> None:
    probe = module.build(TARGET, 0, 0, CTX)
    assert module.match(icmp_query_answer(probe, reply_type, ident_shift=1), CTX) is None
    assert module.match(icmp_query_answer(probe, reply_type), dataclasses.replace(CTX, secret=b"x")) is None
    assert module.match(probe.packet, CTX) is None  # our own request is not an answer


def test_timestamp_reply_must_echo_our_originate_timestamp() -> None:
    module = IcmpTimestampPing()
    raw = bytearray(icmp_query_answer(module.build(TARGET, 0, 0, CTX), 14))
    raw[28] ^= 0xFF  # corrupt the echoed originate timestamp (checksum is not what matters here)
    assert module.match(bytes(raw), CTX) is None


def test_icmp_unreachable_about_our_echo_means_down() -> None:
    module = IcmpEchoPing()
    matched = module.match(icmp_answer(module.build(TARGET, 0, 0, CTX), 3, 1), CTX)
    assert matched is not None and matched[0] == ProbeKey(TARGET, 0, "icmp")
    assert module.classify(matched[1]) == HostVerdict(False, Reason.HOST_UNREACH, 63)


def test_icmpv6_echo() -> None:
    module = IcmpEchoPing()
    probe = module.build(TARGET6, 0, 1, CTX6)
    assert parse_icmpv6(parse_datagram(probe.packet).ip.payload).type == 128
    matched = module.match(icmp_query_answer(probe, 129), CTX6)
    assert matched is not None and matched[0] == ProbeKey(TARGET6, 0, "icmp") and matched[1].attempt == 1


@pytest.mark.parametrize(("module", "answer", "reason"), [
    (TcpSynPing(), "syn-ack", Reason.SYN_ACK),
    (TcpSynPing(), "rst", Reason.RESET),
    (TcpAckPing(), "rst", Reason.RESET),
], ids=["PS-synack", "PS-rst", "PA-rst"])
def test_tcp_ping_any_tcp_answer_means_up(module: TcpSynPing, answer: str, reason: Reason) -> None:
    probe = module.build(TARGET, 443, 0, CTX)
    matched = module.match(tcp_answer(probe, answer, ttl=60), CTX)
    assert matched is not None and matched[0] == ProbeKey(TARGET, 443, "tcp")
    assert module.classify(matched[1]) == HostVerdict(True, reason, 60)
    assert module.match(tcp_answer(probe, answer, seq_shift=3), CTX) is None


def test_tcp_ping_icmp_error_means_down() -> None:
    module = TcpAckPing()
    matched = module.match(icmp_answer(module.build(TARGET, 80, 0, CTX), 3, 13), CTX)
    assert matched is not None and module.classify(matched[1]) == HostVerdict(False, Reason.ADMIN_PROHIBITED, 63)


def _udp_answer(probe: Probe) -> bytes:
    sent = parse_datagram(probe.packet)
    seg = sent.transport
    assert isinstance(seg, UDPDatagram)
    raw = build_udp(UDPDatagram(seg.dport, seg.sport, b"pong"), pack_address(sent.dst), pack_address(sent.src))
    return build_ipv4(IPv4Header(sent.dst, sent.src, 17, raw, ttl=64))


def test_udp_ping_answers() -> None:
    module = UdpPing()
    probe = module.build(TARGET, 40125, 1, CTX)
    matched = module.match(_udp_answer(probe), CTX)
    assert matched is not None and matched[0] == ProbeKey(TARGET, 40125, "udp") and matched[1].attempt == 1
    assert module.classify(matched[1]) == HostVerdict(True, Reason.UDP_RESPONSE, 64)
    unreach = module.match(icmp_answer(probe, 3, 3), CTX)
    assert unreach is not None and module.classify(unreach[1]) == HostVerdict(True, Reason.PORT_UNREACH, 63)
    host = module.match(icmp_answer(probe, 3, 1), CTX)
    assert host is not None and module.classify(host[1]) == HostVerdict(False, Reason.HOST_UNREACH, 63)


def test_udp_ping_ignores_answers_to_ports_we_never_used() -> None:
    module = UdpPing()
    raw = build_udp(UDPDatagram(40125, 1000, b""), pack_address(TARGET), pack_address(US))
    assert module.match(build_ipv4(IPv4Header(TARGET, US, 17, raw)), CTX) is None


def test_arp_ping_builds_a_broadcast_request_and_reads_the_reply() -> None:
    module = ArpPing()
    probe = module.build(TARGET, 0, 0, CTX)
    frame = parse_ethernet(probe.packet)
    assert (frame.dst, frame.src, frame.ethertype) == ("ff:ff:ff:ff:ff:ff", OUR_MAC, 0x0806)
    answer = ARPPacket(2, THEIR_MAC, TARGET, OUR_MAC, US)
    raw = build_ethernet(EthernetFrame(OUR_MAC, THEIR_MAC, 0x0806, build_arp(answer) + bytes(18)))
    matched = module.match(raw, CTX)
    assert matched is not None and matched[0] == ProbeKey(TARGET, 0, "arp") and matched[1].mac == THEIR_MAC
    assert module.classify(matched[1]) == HostVerdict(True, Reason.ARP_RESPONSE)
    assert module.match(probe.packet, CTX) is None, "a request is not a reply"
    stray = build_ethernet(EthernetFrame(OUR_MAC, THEIR_MAC, 0x0806, build_arp(dataclasses.replace(answer, target_ip="198.18.1.3"))))
    assert module.match(stray, CTX) is None


def test_arp_needs_our_mac() -> None:
    from leadline.core.packet.checksum import PacketError

    with pytest.raises(PacketError, match="source_mac"):
        ArpPing().build(TARGET, 0, 0, dataclasses.replace(CTX, source_mac=None))


def test_neighbor_solicitation_and_advertisement() -> None:
    module = NeighborPing()
    probe = module.build(TARGET6, 0, 0, CTX6)
    sent = parse_datagram(probe.packet)
    assert sent.dst == "ff02::1:ff00:10" and sent.ttl == 255 and nd_multicast_mac(TARGET6) == "33:33:ff:00:00:10"
    message = sent.transport
    assert isinstance(message, ICMPv6Message) and message.type == 135 and message.target == TARGET6 and message.link_address == OUR_MAC
    body = build_icmpv6(neighbor_advertisement(TARGET6, THEIR_MAC), pack_address(TARGET6), pack_address(US6))
    matched = module.match(build_ipv6(IPv6Header(TARGET6, US6, 58, body, hop_limit=255)), CTX6)
    assert matched is not None and matched[0] == ProbeKey(TARGET6, 0, "nd") and matched[1].mac == THEIR_MAC
    assert module.classify(matched[1]) == HostVerdict(True, Reason.ND_RESPONSE)
    # RFC 4861 §7.1.2: an advertisement that crossed a router (hop limit < 255) is invalid.
    assert module.match(build_ipv6(IPv6Header(TARGET6, US6, 58, body, hop_limit=254)), CTX6) is None
