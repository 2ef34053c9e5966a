"""scapy as an independent dissector: it must read our packets field for field (checksums
included), and our parsers must read packets scapy builds.  scapy is used only here."""

from __future__ import annotations

import logging
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline.config import ScanType
from leadline.core.packet.icmp import ICMPMessage, build_icmp, parse_icmp
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, parse_ipv4
from leadline.core.packet.ipv6 import parse_ipv6
from leadline.core.packet.parse import pack_address, parse_datagram, parse_quoted
from leadline.core.packet.tcp import TCPSegment, build_tcp, mss, nop, parse_tcp, sack_permitted, timestamps, window_scale
from leadline.core.packet.udp import UDPDatagram, build_udp, parse_udp
from leadline.core.probes.base import ProbeContext
from leadline.core.probes.discovery import ArpPing, IcmpEchoPing, IcmpTimestampPing, NeighborPing, UdpPing
from leadline.scantypes import probe_module

logging.getLogger("scapy").setLevel(logging.ERROR)  # scapy logs routing guesses at import
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # scapy's own import-time warnings are not ours to fix
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror
    from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
    from scapy.layers.l2 import ARP, Ether

US, TARGET = "198.18.1.2", "198.18.1.10"
CTX = ProbeContext(US, b"oracle secret", ttl=53, source_mac="02:00:00:00:00:01")
CTX6 = ProbeContext("2001:db8::2", b"oracle secret", family=6, source_mac="02:00:00:00:00:01")
u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
v4 = st.ip_addresses(v=4).map(str)


def recomputed(packet: IP | IPv6) -> bytes:
    """scapy's own bytes for the same fields with every checksum and length recomputed by scapy."""
    clone = packet.__class__(bytes(packet))
    layer = clone
    while layer:
        for name in ("chksum", "cksum", "len", "plen"):
            if name in layer.fields:
                delattr(layer, name)  # delattr (not fields.pop) also drops scapy's cached raw bytes
        layer = layer.payload if not isinstance(layer.payload, type(None)) else None
        if layer is not None and layer.__class__.__name__ in ("NoPayload", "Raw", "Padding"):
            break
    return bytes(clone)


@pytest.mark.parametrize("scan_type", [t for t in ScanType if t.kind.probe is not None and t is not ScanType.UDP])
@pytest.mark.parametrize("ctx,target", [(CTX, TARGET), (CTX6, "2001:db8::10")], ids=["v4", "v6"])
def test_scapy_reads_every_scan_probe(scan_type: ScanType, ctx: ProbeContext, target: str) -> None:
    probe = probe_module(scan_type, None).build(target, 8443, 2, ctx)
    theirs = (IP if ctx.family == 4 else IPv6)(probe.packet)
    ours = parse_datagram(probe.packet)
    seg = ours.transport
    assert isinstance(seg, TCPSegment)
    tcp = theirs[TCP]
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, int(tcp.flags), tcp.window, tcp.chksum) == (
        seg.sport, seg.dport, seg.seq, seg.ack, seg.flags, seg.window, seg.checksum,
    )
    assert tcp.options == ([("MSS", 1460)] if seg.flags & 0x02 else [])
    if ctx.family == 4:
        ip = theirs[IP]
        assert (ip.src, ip.dst, ip.ttl, ip.id, ip.len, ip.chksum, ip.proto) == (US, TARGET, 53, ours.ip.ident, len(probe.packet), ours.ip.checksum, 6)
    else:
        assert (theirs.src, theirs.dst, theirs.nh, theirs.plen, theirs.hlim) == ("2001:db8::2", "2001:db8::10", 6, len(probe.packet) - 40, 64)
    assert recomputed(theirs) == probe.packet, "scapy computes the same checksums"


def test_the_oracle_notices_a_wrong_checksum() -> None:
    probe = bytearray(probe_module(ScanType.SYN, None).build(TARGET, 80, 0, CTX).packet)
    probe[37] ^= 1  # TCP checksum, low byte
    assert recomputed(IP(bytes(probe))) != bytes(probe)
    probe[37] ^= 1
    probe[11] ^= 1  # IP header checksum
    assert recomputed(IP(bytes(probe))) != bytes(probe)


@settings(max_examples=60)
@given(v4, v4, u16, u16, u32, u32, st.integers(0, 255), u16, st.binary(max_size=20))
def test_scapy_agrees_on_random_tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, window: int, payload: bytes) -> None:
    options = (mss(1400), sack_permitted(), timestamps(seq, ack), nop(), window_scale(7))
    segment = build_tcp(TCPSegment(sport, dport, seq, ack, flags, window, options=options, payload=payload), pack_address(src), pack_address(dst))
    raw = build_ipv4(IPv4Header(src, dst, 6, segment, ident=sport))
    assert recomputed(IP(raw)) == raw
    theirs = IP(raw)[TCP]
    assert dict((k, v) for k, v in theirs.options if k != "NOP") == {"MSS": 1400, "SAckOK": b"", "Timestamp": (seq, ack), "WScale": 7}


@settings(max_examples=60)
@given(v4, v4, u16, u16, st.binary(max_size=40))
def test_scapy_agrees_on_random_udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> None:
    raw = build_ipv4(IPv4Header(src, dst, 17, build_udp(UDPDatagram(sport, dport, payload), pack_address(src), pack_address(dst))))
    theirs = IP(raw)
    assert (theirs[UDP].sport, theirs[UDP].dport, theirs[UDP].len, bytes(theirs[UDP].payload)) == (sport, dport, 8 + len(payload), payload)
    assert recomputed(theirs) == raw


def test_scapy_reads_discovery_probes() -> None:
    echo_raw = IcmpEchoPing().build(TARGET, 0, 0, CTX).packet
    assert IP(echo_raw)[ICMP].type == 8 and recomputed(IP(echo_raw)) == echo_raw
    stamp = IcmpTimestampPing().build(TARGET, 0, 0, CTX).packet
    assert IP(stamp)[ICMP].type == 13 and recomputed(IP(stamp)) == stamp
    udp = UdpPing().build(TARGET, 40125, 0, CTX).packet
    assert IP(udp)[UDP].dport == 40125 and recomputed(IP(udp)) == udp
    arp = Ether(ArpPing().build(TARGET, 0, 0, CTX).packet)
    assert (arp.dst, arp[ARP].op, arp[ARP].psrc, arp[ARP].pdst, arp[ARP].hwsrc) == ("ff:ff:ff:ff:ff:ff", 1, US, TARGET, "02:00:00:00:00:01")
    ns_raw = NeighborPing().build("2001:db8::10", 0, 0, CTX6).packet
    ns = IPv6(ns_raw)
    assert (ns.dst, ns.hlim, ns[ICMPv6ND_NS].tgt, ns[ICMPv6NDOptSrcLLAddr].lladdr) == ("ff02::1:ff00:10", 255, "2001:db8::10", "02:00:00:00:00:01")
    assert recomputed(ns) == ns_raw


@settings(max_examples=60)
@given(v4, v4, u16, u16, u32, u32, st.integers(0, 255), u16)
def test_we_read_scapy_built_tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, window: int) -> None:
    raw = bytes(IP(src=src, dst=dst, ttl=99, id=7) / TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=window, options=[("MSS", 536), ("WScale", 2)]))
    ip = parse_ipv4(raw)
    seg = parse_tcp(ip.payload)
    assert (ip.src, ip.dst, ip.ttl, ip.ident, ip.checksum) == (src, dst, 99, 7, IP(raw).chksum)
    assert (seg.sport, seg.dport, seg.seq, seg.ack, seg.flags, seg.window, seg.checksum) == (sport, dport, seq, ack, flags, window, IP(raw)[TCP].chksum)
    assert [o.value for o in seg.options if o.kind > 1] == [536, 2]  # NOP/EOL padding aside


def test_we_read_scapy_built_icmp_error_with_its_quote() -> None:
    original = IP(src=US, dst=TARGET) / TCP(sport=40000, dport=995, seq=123456789, flags="S")
    raw = bytes(IP(src="198.18.1.1", dst=US) / ICMP(type=3, code=10) / IPerror(bytes(original)[:28]))
    message = parse_datagram(raw).transport
    assert isinstance(message, ICMPMessage) and (message.type, message.code) == (3, 10)
    assert message.checksum == IP(raw)[ICMP].chksum
    assert message.quoted is not None
    quoted = parse_quoted(message.quoted)
    assert (quoted.src, quoted.dst, quoted.sport, quoted.dport, quoted.seq) == (US, TARGET, 40000, 995, 123456789)
    assert IP(raw).haslayer(TCPerror)


def test_we_read_scapy_built_udp_icmp_and_ipv6() -> None:
    udp = bytes(IP(src=TARGET, dst=US) / UDP(sport=53, dport=33000) / b"answer")
    parsed = parse_udp(parse_ipv4(udp).payload)
    assert (parsed.sport, parsed.dport, parsed.payload, parsed.checksum) == (53, 33000, b"answer", IP(udp)[UDP].chksum)
    echo = bytes(IP(src=TARGET, dst=US) / ICMP(type=0, id=0xBEEF, seq=9) / b"x")
    message = parse_icmp(parse_ipv4(echo).payload)
    assert (message.type, message.ident, message.sequence, message.body) == (0, 0xBEEF, 9, b"x")
    v6 = bytes(IPv6(src="2001:db8::10", dst="2001:db8::2", hlim=33) / ICMPv6EchoRequest(id=4, seq=5))
    header = parse_ipv6(v6)
    assert (header.src, header.dst, header.hop_limit, header.next_header) == ("2001:db8::10", "2001:db8::2", 33, 58)


def test_icmp_message_builds_match_scapy() -> None:
    assert build_icmp(ICMPMessage(17, 0, (0x1234 << 16) | 1, bytes(4))) == bytes(ICMP(type=17, id=0x1234, seq=1))
    stamp = build_icmp(ICMPMessage(13, 0, (7 << 16) | 8, bytes.fromhex("000000010000000200000003")))
    assert stamp == bytes(ICMP(type=13, id=7, seq=8, ts_ori=1, ts_rx=2, ts_tx=3))
