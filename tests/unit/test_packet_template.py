"""Patched templates must equal full builds, and be cheap."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, pack_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6, pack_ipv6
from leadline.core.packet.tcp import TCPFlag, TCPSegment, build_tcp, mss
from leadline.core.packet.template import TcpProbeTemplate

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
SRC4, SRC6 = "198.18.1.2", "2001:db8::2"
TEMPLATE4 = TcpProbeTemplate(SRC4, flags=TCPFlag.SYN, options=(mss(1460),), ttl=51)
TEMPLATE6 = TcpProbeTemplate(SRC6, flags=TCPFlag.FIN | TCPFlag.ACK, ttl=64)


@given(st.binary(min_size=4, max_size=4), u16, u16, u32, u32, u16)
def test_ipv4_render_equals_full_build(dst: bytes, sport: int, dport: int, seq: int, ack: int, ip_id: int) -> None:
    dst_text = "%d.%d.%d.%d" % tuple(dst)
    segment = build_tcp(TCPSegment(sport, dport, seq, ack, TCPFlag.SYN, 1024, options=(mss(1460),)), pack_ipv4(SRC4), dst)
    expected = build_ipv4(IPv4Header(SRC4, dst_text, 6, segment, ttl=51, ident=ip_id))
    assert TEMPLATE4.render(dst, sport, dport, seq, ack, ip_id) == expected


@given(st.binary(min_size=16, max_size=16), u16, u16, u32, u32)
def test_ipv6_render_equals_full_build(dst: bytes, sport: int, dport: int, seq: int, ack: int) -> None:
    import ipaddress

    dst_text = ipaddress.IPv6Address(dst).compressed
    segment = build_tcp(TCPSegment(sport, dport, seq, ack, TCPFlag.FIN | TCPFlag.ACK, 1024), pack_ipv6(SRC6), dst)
    assert TEMPLATE6.render(dst, sport, dport, seq, ack) == build_ipv6(IPv6Header(SRC6, dst_text, 6, segment))


def test_syn_patch_cost_is_a_few_microseconds() -> None:
    dst = pack_ipv4("198.18.1.10")
    rounds = 20000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for port in range(rounds):
            TEMPLATE4.render(dst, 40000, port, 0x01020304, 0, port)
        best = min(best, (time.perf_counter() - start) / rounds)
    # About 1.5 µs on a 2020s CPU; the bound leaves room for slow CI machines.
    assert best < 20e-6, f"{best * 1e6:.2f} µs per SYN patch"


from leadline.core.packet import icmp  # noqa: E402
from leadline.core.packet.template import IcmpQueryTemplate  # noqa: E402

QUERIES = {
    "echo": (lambda i, s, o: icmp.echo_request(i, s), False),
    "timestamp": (lambda i, s, o: icmp.timestamp_request(i, s, o), True),
    "mask": (lambda i, s, o: icmp.mask_request(i, s), False),
}


@given(st.sampled_from(sorted(QUERIES)), st.binary(min_size=4, max_size=4), u16, u16, u16, u32, st.integers(1, 255))
def test_icmp_query_render_equals_full_build(kind: str, dst: bytes, ip_id: int, ident: int, sequence: int,
                                              originate: int, ttl: int) -> None:
    make, carries = QUERIES[kind]
    template = IcmpQueryTemplate(SRC4, icmp.build_icmp(make(0, 0, 0)), ttl=ttl, originate=carries)
    dst_text = "%d.%d.%d.%d" % tuple(dst)
    message = icmp.build_icmp(make(ident, sequence, originate))
    expected = build_ipv4(IPv4Header(SRC4, dst_text, 1, message, ttl=ttl, ident=ip_id))
    assert template.render(dst, ip_id, ident, sequence, originate) == expected


def test_icmp_query_stamp_is_what_scapy_reads() -> None:
    """An independent dissector agrees on every field and finds both checksums right."""
    from scapy.layers.inet import ICMP, IP

    template = IcmpQueryTemplate(SRC4, icmp.build_icmp(icmp.timestamp_request(0, 0, 0)), ttl=64, originate=True)
    packet = template.render(pack_ipv4("198.19.3.4"), 0xBEEF, 0x1234, 0xFFFF, 0xDEADBEEF)
    parsed = IP(packet)
    assert (parsed.src, parsed.dst, parsed.id, parsed.ttl) == (SRC4, "198.19.3.4", 0xBEEF, 64)
    assert (parsed[ICMP].type, parsed[ICMP].id, parsed[ICMP].seq, parsed[ICMP].ts_ori) == (13, 0x1234, 0xFFFF, 0xDEADBEEF)
    rebuilt = IP(bytes(parsed))
    del rebuilt.chksum
    del rebuilt[ICMP].chksum
    assert bytes(IP(bytes(rebuilt))) == packet


@given(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16), u16, u16, u32, u32, u16)
def test_a_stamp_bound_to_a_host_renders_what_the_template_does(dst4: bytes, dst6: bytes, sport: int, dport: int,
                                                                 seq: int, ack: int, ip_id: int) -> None:
    assert TEMPLATE4.for_destination(dst4).render(sport, dport, seq, ack, ip_id) == TEMPLATE4.render(dst4, sport, dport, seq, ack, ip_id)
    assert TEMPLATE6.for_destination(dst6).render(sport, dport, seq, ack) == TEMPLATE6.render(dst6, sport, dport, seq, ack)
