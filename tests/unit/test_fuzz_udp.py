"""Hostile bytes against the UDP scan: the classifiers never raise, truncated or random datagrams
decide nothing, and a reply that fails the cookie changes no port's state."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leadline.config import TIMING_TEMPLATES
from leadline.core.inflight import PortDecided
from leadline.core.packet.icmp import ICMPMessage, build_icmp
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.packet.parse import pack_address
from leadline.core.packet.udp import UDPDatagram, build_udp
from leadline.core.probes.base import ProbeContext
from leadline.core.probes.udp import UdpScan
from leadline.core.ratecontrol import RateController
from leadline.core.udppayloads import PAYLOADS, PayloadTable, parse_nmap_payloads
from leadline.core.udpsession import UdpSession

US, THEM = "198.18.0.1", "198.18.1.20"
CTX = ProbeContext(US, b"f" * 16)
MODULE = UdpScan(payloads=PayloadTable(PAYLOADS))
PORTS = (53, 69, 123, 161, 5000)


def _udp(sport: int, dport: int, body: bytes) -> bytes:
    return build_ipv4(IPv4Header(THEM, US, 17, build_udp(UDPDatagram(sport, dport, body), pack_address(THEM), pack_address(US))))


def _icmp(quoted: bytes, code: int = 3, icmp_type: int = 3) -> bytes:
    return build_ipv4(IPv4Header(THEM, US, 1, build_icmp(ICMPMessage(icmp_type, code, 0, quoted))))


def _valid_replies() -> list[bytes]:
    out = []
    for port in PORTS:
        probe = MODULE.build(THEM, port, 0, CTX)
        sport = int.from_bytes(probe.packet[20:22], "big")
        out.append(_udp(port, sport, probe.packet[28:]))
        out.append(_icmp(probe.packet[:28]))
    return out


VALID = _valid_replies()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_and_match_nothing(data: bytes) -> None:
    assert MODULE.match(data, CTX) is None


@settings(max_examples=300)
@given(st.sampled_from(VALID), st.integers(0, 80))
def test_truncated_replies_never_raise(reply: bytes, cut: int) -> None:
    MODULE.match(reply[:cut], CTX)  # may match (a short UDP body still answers) but never raises


@settings(max_examples=300)
@given(st.sampled_from(VALID), st.integers(0, 400), st.integers(1, 255))
def test_flipped_bytes_never_raise(reply: bytes, at: int, mask: int) -> None:
    mutated = bytearray(reply)
    mutated[at % len(mutated)] ^= mask
    matched = MODULE.match(bytes(mutated), CTX)
    if matched is not None:
        MODULE.classify(matched[1])


@settings(max_examples=200)
@given(st.integers(32768, 61000), st.sampled_from(PORTS), st.binary(max_size=64))
def test_a_reply_to_a_port_of_ours_with_a_wrong_cookie_is_dropped(sport: int, port: int, body: bytes) -> None:
    # A 16-bit source port is the whole cookie of a UDP probe: a reply that lands on the source port of a
    # probe to this port, or to a port whose service answers from a fresh port (TFTP), is a real match.
    vouching = (port, *MODULE.payloads.other_port_services)
    values = {int.from_bytes(MODULE.build(THEM, p, a, CTX).packet[20:22], "big") for p in vouching for a in range(51)}
    assume(sport not in values)
    assert MODULE.match(_udp(port, sport, body), CTX) is None
    forged = bytearray(MODULE.build(THEM, port, 0, CTX).packet[:28])
    forged[20:22] = sport.to_bytes(2, "big")
    assert MODULE.match(_icmp(bytes(forged)), CTX) is None


def test_junk_changes_no_state_in_the_session() -> None:
    session = UdpSession(MODULE, [CTX], [THEM], PORTS, TIMING_TEMPLATES[3], RateController(adaptive=False, initial_rate=1000))
    sent = session.due(0.0)
    # Each port's first payload, then DNS's and SNMP's second ones (after the first datagrams: see UdpSession).
    assert [p.key.port for p in sent] == [*PORTS, 53, 161] and not any(p.extra for p in sent)
    rng = random.Random(7)
    junk = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(60))) for _ in range(2000)]
    for reply in VALID:  # right shape, but addressed to another of our addresses
        other = bytearray(reply)
        other[19] ^= 0x01
        junk.append(bytes(other))
    # Probes of another scan.  The source port is a UDP probe's whole cookie, and the hash is keyed per
    # process, so now and then another scan's port is one of ours (51 attempts in 28,233 ports): that
    # reply is a real match, so only other-scan ports that are not ours are junk.
    other_ctx = ProbeContext(US, b"x" * 16)
    vouching = (*PORTS, *MODULE.payloads.other_port_services)
    ours = {int.from_bytes(MODULE.build(THEM, p, a, CTX).packet[20:22], "big") for p in vouching for a in range(51)}
    for port in PORTS:
        probe = MODULE.build(THEM, port, 0, other_ctx)
        sport = int.from_bytes(probe.packet[20:22], "big")
        if sport in ours:
            continue
        junk.append(_icmp(probe.packet[:28]))
        junk.append(_udp(port, sport, b"\x81\x80" * 8))
    for datagram in junk:
        assert [e for e in session.receive(datagram, 0.001) if isinstance(e, PortDecided)] == []
    assert session.answered_ports == 0


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_nmap_payload_text_never_raises(text: str) -> None:
    parse_nmap_payloads(text)


def test_nmap_payload_entries_are_read() -> None:
    text = 'udp 7,9 "\\x0D\\x0A" # comment\nudp 53 "\\x00\\x01" "ab"\n  "cd" source 53\nudp bogus "x"\n'
    payloads = parse_nmap_payloads(text)
    assert [(p.ports, p.build(0)) for p in payloads] == [((7, 9), b"\r\n"), ((53,), b"\x00\x01abcd")]
