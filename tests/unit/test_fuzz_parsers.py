"""Hostile bytes: parsers raise only PacketError, matchers and classifiers never raise,
and replies carrying a wrong cookie are never accepted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadline.config import ScanType
from leadline.core.cookie import ReplyCookie
from leadline.core.packet.arp import parse_arp
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ethernet import parse_ethernet
from leadline.core.packet.icmp import parse_icmp
from leadline.core.packet.icmpv6 import parse_icmpv6
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, parse_ipv4
from leadline.core.packet.ipv6 import parse_ipv6
from leadline.core.packet.parse import pack_address, parse_datagram, parse_quoted
from leadline.core.packet.tcp import TCPFlag, TCPSegment, build_tcp, parse_tcp
from leadline.core.packet.udp import parse_udp
from leadline.core.probes.base import ProbeContext
from leadline.core.probes.discovery import ArpPing, IcmpEchoPing, IcmpMaskPing, IcmpTimestampPing, NeighborPing, TcpAckPing, TcpSynPing, UdpPing
from leadline.scantypes import probe_module
from tests.unit.test_probes_tcp import CTX, TARGET, icmp_answer, tcp_answer

PARSERS: list[Callable[[bytes], object]] = [
    parse_datagram, parse_ipv4, parse_ipv6, parse_tcp, parse_udp, parse_icmp, parse_icmpv6, parse_ethernet, parse_arp,
    lambda b: parse_ipv4(b, quoted=True), lambda b: parse_quoted(parse_ipv4(b, quoted=True)),
]
RAW_SCANS = [probe_module(t, None) for t in ScanType if t.kind.probe is not None]
DISCOVERY = [IcmpEchoPing(), IcmpTimestampPing(), IcmpMaskPing(), TcpSynPing(), TcpAckPing(), UdpPing(), ArpPing(), NeighborPing()]
CTX_MAC = ProbeContext(CTX.source_address, CTX.secret, source_mac="02:00:00:00:00:01")
CTX6_MAC = ProbeContext("2001:db8::2", CTX.secret, family=6, source_mac="02:00:00:00:00:01")


def _valid_packets() -> list[bytes]:
    syn = probe_module(ScanType.SYN, None)
    ack = probe_module(ScanType.ACK, None)
    out = []
    for module in (syn, ack):
        probe = module.build(TARGET, 80, 1, CTX)
        out += [probe.packet, tcp_answer(probe, "rst"), icmp_answer(probe, 3, 13), icmp_answer(probe, 3, 3, quote=28)]
    out.append(tcp_answer(syn.build(TARGET, 80, 0, CTX), "syn-ack"))
    probe6 = syn.build("2001:db8::10", 22, 0, CTX6_MAC)
    out += [probe6.packet, tcp_answer(probe6, "syn-ack"), icmp_answer(probe6, 1, 4)]
    for module in DISCOVERY:
        if isinstance(module, NeighborPing):
            out.append(module.build("2001:db8::10", 0, 0, CTX6_MAC).packet)
        else:
            out.append(module.build(TARGET, 53, 0, CTX_MAC).packet)
    return out


VALID = _valid_packets()


def _never_raises(data: bytes) -> None:
    for parse in PARSERS:
        try:
            parse(data)
        except PacketError:
            pass
    for module in [*RAW_SCANS, *DISCOVERY]:
        for ctx in (CTX_MAC, CTX6_MAC):
            matched = module.match(data, ctx)
            if matched is not None:
                module.classify(matched[1])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120))
def test_random_bytes(data: bytes) -> None:
    _never_raises(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_packets(packet: bytes, draw: st.DataObject) -> None:
    mutated = bytearray(packet)
    for _ in range(draw.draw(st.integers(1, 6))):
        index = draw.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = draw.draw(st.integers(0, 255))
    cut = draw.draw(st.integers(0, len(mutated)))
    _never_raises(bytes(mutated))
    _never_raises(bytes(mutated[:cut]))


@given(st.integers(0, 0xFFFFFFFF), st.sampled_from(["SA", "R", "RA"]))
def test_tcp_replies_with_an_arbitrary_echo_pass_only_if_it_is_ours(echo: int, flags: str) -> None:
    module = probe_module(ScanType.SYN, None)
    probe = module.build(TARGET, 80, 0, CTX)
    sent = parse_datagram(probe.packet).transport
    assert isinstance(sent, TCPSegment)
    bits = {"SA": TCPFlag.SYN | TCPFlag.ACK, "R": TCPFlag.RST, "RA": TCPFlag.RST | TCPFlag.ACK}[flags]
    reply = build_tcp(TCPSegment(80, sent.sport, echo, echo, bits), pack_address(TARGET), pack_address(CTX.source_address))
    matched = module.match(build_ipv4(IPv4Header(TARGET, CTX.source_address, 6, reply)), CTX)
    if matched is None:
        return
    cookie = ReplyCookie.for_scan(CTX.secret)
    values = cookie.values(pack_address(CTX.source_address), pack_address(TARGET), 6, 80)
    assert bits & TCPFlag.ACK and matched[1].attempt is not None
    assert echo - 1 == cookie.sequence(values, matched[1].attempt)


@pytest.mark.parametrize("packet", VALID, ids=range(len(VALID)))
def test_every_prefix_of_every_valid_packet(packet: bytes) -> None:
    for cut in range(len(packet) + 1):
        _never_raises(packet[:cut])
