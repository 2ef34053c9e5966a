"""The -sU probe module from byte literals: build, match, classify, and the pipeline over the fake network."""

from __future__ import annotations

import struct

import pytest

from leadline.config import ScanConfig
from leadline.core.packet.icmp import ICMPMessage, build_icmp
from leadline.core.packet.icmpv6 import ICMPv6Message, build_icmpv6
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4, parse_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6, parse_ipv6
from leadline.core.packet.parse import pack_address
from leadline.core.packet.udp import UDPDatagram, build_udp, parse_udp
from leadline.core.probes.base import ProbeContext, Reply, ReplyKind
from leadline.core.probes.udp import UdpScan, classify_udp
from leadline.core.udppayloads import PAYLOADS, PayloadTable, default_table, fixed_table
from leadline.engines.fake import CLOSED, DROP, OPEN, FakeHost, PortBehaviour, Answer
from leadline.model import PortState, Reason
from leadline.pipeline.udpsetup import udp_payload_table
from leadline.scantypes import ScanType
from tests.unit.fakeengines import FakeEngines, ScriptedHost
from tests.unit.test_pipeline import run, states

US, THEM, ROUTER = "198.18.0.1", "198.18.1.20", "198.18.1.1"
US6, THEM6 = "fd18:4c11:0:1::2", "fd18:4c11:0:1::20"
CTX = ProbeContext(US, b"k" * 16)
CTX6 = ProbeContext(US6, b"k" * 16, family=6)


def _probe_udp(module: UdpScan, port: int, ctx: ProbeContext = CTX, target: str = THEM, attempt: int = 0) -> tuple[bytes, UDPDatagram]:
    probe = module.build(target, port, attempt, ctx)
    ip = parse_ipv4(probe.packet) if ctx.family == 4 else parse_ipv6(probe.packet)
    return probe.packet, parse_udp(ip.payload)


def _udp_reply(sport: int, dport: int, body: bytes, src: str = THEM, dst: str = US) -> bytes:
    segment = build_udp(UDPDatagram(sport, dport, body), pack_address(src), pack_address(dst))
    if ":" in src:
        return build_ipv6(IPv6Header(src, dst, 17, segment))
    return build_ipv4(IPv4Header(src, dst, 17, segment, ttl=63))


def _icmp_error(probe: bytes, code: int, src: str = THEM, icmp_type: int = 3) -> bytes:
    message = build_icmp(ICMPMessage(icmp_type, code, 0, probe[:28]))
    return build_ipv4(IPv4Header(src, US, 1, message, ttl=64))


def _icmp6_error(probe: bytes, code: int, src: str = THEM6) -> bytes:
    message = build_icmpv6(ICMPv6Message(1, code, 0, probe[:48]), pack_address(src), pack_address(US6))
    return build_ipv6(IPv6Header(src, US6, 58, message))


def test_an_empty_datagram_goes_where_no_payload_is_known_and_payloads_where_one_is() -> None:
    module = UdpScan(payloads=default_table())
    _, datagram = _probe_udp(module, 40000)
    assert datagram.payload == b"" and datagram.dport == 40000
    probe = module.build(THEM, 53, 0, CTX)
    assert len(probe.extra) == 1  # version.bind and the root query, both in the first round
    assert b"\x07version\x04bind" in probe.packet


@pytest.mark.parametrize(("code", "state", "reason"), [
    (3, PortState.CLOSED, Reason.PORT_UNREACH),
    (0, PortState.FILTERED, Reason.NET_UNREACH),
    (1, PortState.FILTERED, Reason.HOST_UNREACH),
    (2, PortState.FILTERED, Reason.PROTO_UNREACH),
    (9, PortState.FILTERED, Reason.NET_PROHIBITED),
    (10, PortState.FILTERED, Reason.HOST_PROHIBITED),
    (13, PortState.FILTERED, Reason.ADMIN_PROHIBITED),
])
def test_icmp_unreachables_quoting_our_probe_classify_as_nmap(code: int, state: PortState, reason: Reason) -> None:
    module = UdpScan()
    packet, _ = _probe_udp(module, 1234)
    matched = module.match(_icmp_error(packet, code), CTX)
    assert matched is not None
    key, reply = matched
    assert (key.address, key.port, key.protocol) == (THEM, 1234, "udp")
    verdict = module.classify(reply)
    assert (verdict.state, verdict.reason) == (state, reason)


def test_port_unreachable_from_a_router_is_filtered_not_closed() -> None:
    module = UdpScan()
    packet, _ = _probe_udp(module, 1234)
    matched = module.match(_icmp_error(packet, 3, src=ROUTER), CTX)
    assert matched is not None
    assert module.classify(matched[1])[:2] == (PortState.FILTERED, Reason.PORT_UNREACH)


@pytest.mark.parametrize(("code", "state", "reason"), [
    (4, PortState.CLOSED, Reason.PORT_UNREACH),
    (1, PortState.FILTERED, Reason.ADMIN_PROHIBITED),
    (0, PortState.FILTERED, Reason.NO_ROUTE),
    (3, PortState.FILTERED, Reason.HOST_UNREACH),
])
def test_icmpv6_unreachables(code: int, state: PortState, reason: Reason) -> None:
    module = UdpScan()
    packet, _ = _probe_udp(module, 1234, CTX6, THEM6)
    matched = module.match(_icmp6_error(packet, code), CTX6)
    assert matched is not None and matched[0].address == THEM6
    assert module.classify(matched[1])[:2] == (state, reason)


def test_a_udp_reply_to_our_source_port_is_open_and_says_which_attempt() -> None:
    module = UdpScan()
    _, sent = _probe_udp(module, 5000, attempt=2)
    matched = module.match(_udp_reply(5000, sent.sport, b"hi"), CTX)
    assert matched is not None
    key, reply = matched
    assert key.port == 5000 and reply.attempt == 2
    assert module.classify(reply)[:2] == (PortState.OPEN, Reason.UDP_RESPONSE)


def test_replies_that_fail_the_cookie_are_ignored() -> None:
    module = UdpScan()
    packet, sent = _probe_udp(module, 5000)
    assert module.match(_udp_reply(5000, sent.sport ^ 0x0C00, b"hi"), CTX) is None
    assert module.match(_udp_reply(5001, sent.sport, b"hi"), CTX) is None
    assert module.match(_udp_reply(5000, sent.sport, b"hi", dst="198.18.0.9"), CTX) is None
    forged = bytearray(packet)
    struct.pack_into("!H", forged, 20, sent.sport ^ 0x0C00)
    assert module.match(_icmp_error(bytes(forged), 3), CTX) is None
    assert UdpScan().match(_icmp_error(packet, 3), ProbeContext(US, b"x" * 16)) is None


def test_a_dns_reply_must_carry_our_transaction_id() -> None:
    module = UdpScan(payloads=PayloadTable(PAYLOADS))
    probe = module.build(THEM, 53, 0, CTX)
    sent = parse_udp(parse_ipv4(probe.packet).payload)
    ours = sent.payload[:2] + b"\x81\x80" + sent.payload[4:]
    assert module.match(_udp_reply(53, sent.sport, ours), CTX) is not None
    theirs = bytes([sent.payload[0] ^ 0xFF, sent.payload[1]]) + b"\x81\x80" + sent.payload[4:]
    assert module.match(_udp_reply(53, sent.sport, theirs), CTX) is None


def test_a_dhcp_inform_names_the_scanner_in_ciaddr_and_its_ack_must_carry_our_xid() -> None:
    # A DHCPINFORM's answer goes to ciaddr (RFC 2131 s4.4.3): with 0 there, a server sends none.
    module = UdpScan(payloads=PayloadTable(PAYLOADS))
    _, sent = _probe_udp(module, 67)
    assert sent.payload[12:16] == pack_address(US)
    ack = b"\x02" + sent.payload[1:]
    assert module.match(_udp_reply(67, sent.sport, ack), CTX) is not None
    other = ack[:4] + bytes([ack[4] ^ 0xFF]) + ack[5:]
    assert module.match(_udp_reply(67, sent.sport, other), CTX) is None
    _, sent6 = _probe_udp(module, 67, CTX6, THEM6)
    assert sent6.payload[12:16] == bytes(4)  # DHCP is IPv4's; over IPv6 the body stays as built


def test_tftp_answering_from_another_port_is_open() -> None:
    module = UdpScan(payloads=PayloadTable(PAYLOADS))
    _, sent = _probe_udp(module, 69)
    matched = module.match(_udp_reply(47001, sent.sport, b"\x00\x05\x00\x01File not found\x00"), CTX)
    assert matched is not None and matched[0].port == 69
    assert module.classify(matched[1]).state is PortState.OPEN
    # From another host, it answers nothing of ours.
    assert module.match(_udp_reply(47001, sent.sport, b"\x00\x05", src="198.18.1.21"), CTX) is None


def test_silence_is_open_filtered_or_closed_filtered_when_defeating_the_limit() -> None:
    assert classify_udp(None)[:2] == (PortState.OPEN_FILTERED, Reason.NO_RESPONSE)
    assert UdpScan(silent=PortState.CLOSED_FILTERED).classify(None).state is PortState.CLOSED_FILTERED
    time_exceeded = Reply(ReplyKind.ICMP_TIME_EXCEEDED, ROUTER, 60, icmp_type=11, icmp_code=0)
    assert classify_udp(time_exceeded)[:2] == (PortState.FILTERED, Reason.TIME_EXCEEDED)


def test_data_options_replace_every_payload() -> None:
    module = UdpScan(payloads=fixed_table(b"\xca\xfe"))
    for port in (53, 161, 40000):
        probe = module.build(THEM, port, 0, CTX)
        assert parse_udp(parse_ipv4(probe.packet).payload).payload == b"\xca\xfe" and probe.extra == ()
    assert udp_payload_table(ScanConfig(udp_data=b"x")).for_port(53)[0].build(1) == b"x"


UDP_HOST = FakeHost(ports={53: OPEN, 161: OPEN, 514: DROP, 1900: PortBehaviour(Answer.ICMP, 13)}, default=CLOSED)


def test_udp_scan_through_the_pipeline_and_with_tcp_in_one_run() -> None:
    engines = FakeEngines({"198.18.5.1": ScriptedHost(UDP_HOST)})
    sink, _ = run(engines, targets=("198.18.5.1",), scan_types=(ScanType.SYN, ScanType.UDP),
                  ports="T:53,U:53,161,514,1900,2000")
    host = sink.hosts[0]
    udp = {p.port: (p.state, p.reason) for p in host.ports if p.protocol == "udp"}
    assert udp == {53: (PortState.OPEN, Reason.UDP_RESPONSE), 161: (PortState.OPEN, Reason.UDP_RESPONSE),
                   514: (PortState.OPEN_FILTERED, Reason.NO_RESPONSE), 1900: (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
                   2000: (PortState.CLOSED, Reason.PORT_UNREACH)}
    assert [p.port for p in host.ports if p.protocol == "tcp"] == [53]
    assert "UDP Scan" in sink.tasks and "SYN Stealth Scan" in sink.tasks
    assert sink.run is not None and {i.scan_type for i in sink.run.scaninfo} == {"syn", "udp"}
    assert states(host)  # both protocols' rows are in one host record


def test_not_shown_lists_equal_tcp_and_udp_groups_as_nmap_does() -> None:
    from leadline.model import PortResult
    from leadline.output.formatting import fold_ports, not_shown_line

    ports = [PortResult(p, "tcp", PortState.CLOSED, Reason.RESET) for p in range(1, 31)]
    ports += [PortResult(p, "udp", PortState.CLOSED, Reason.PORT_UNREACH) for p in range(1, 31)]
    ports += [PortResult(p, "udp", PortState.OPEN_FILTERED, Reason.NO_RESPONSE) for p in range(100, 140)]
    line = not_shown_line(fold_ports(tuple(ports)))
    # As nmap 7.93 writes it: states by their count over both protocols, then within a state
    # equal counts with the later protocol first (seen in the lab with -sS -sU).
    assert line == ("Not shown: 30 closed udp ports (port-unreach), 30 closed tcp ports (reset), "
                    "40 open|filtered udp ports (no-response)")
