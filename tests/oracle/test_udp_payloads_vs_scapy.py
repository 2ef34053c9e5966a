"""Each UDP payload read by scapy's dissector (an independent reading of the protocols), and each
reply check fed a reply scapy builds.  scapy is used only here, as a test oracle."""

from __future__ import annotations

import logging
import warnings

import pytest

from leadline.core.probes.base import ProbeContext
from leadline.core.probes.udp import UdpScan
from leadline.core.udppayloads import PAYLOADS, PayloadTable

logging.getLogger("scapy").setLevel(logging.ERROR)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.contrib.coap import CoAP
    from scapy.contrib.oncrpc import RPC, RPC_Call
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.dns import DNS
    from scapy.layers.inet import IP, UDP
    from scapy.layers.isakmp import ISAKMP, ISAKMP_payload_SA
    from scapy.layers.netbios import NBNSHeader, NBNSNodeStatusRequest
    from scapy.layers.ntp import NTPHeader
    from scapy.layers.quic import QUIC_Version
    from scapy.layers.rip import RIP, RIPEntry
    from scapy.layers.snmp import SNMP, SNMPget
    from scapy.layers.tftp import TFTP, TFTP_RRQ

TOKEN = 0x5EC0FFEE
BY_NAME = {p.name: p for p in PAYLOADS}


def body(name: str) -> bytes:
    return BY_NAME[name].build(TOKEN)


def test_every_payload_is_checked_here() -> None:
    checked = {"dns-version-bind", "dns-root", "mdns-services", "netbios-nbstat", "ntp-client", "snmp-v1-public",
               "snmp-v2c-public", "dhcp-inform", "ike-main-mode", "tftp-rrq", "memcached-version", "portmap-null",
               "sip-options", "coap-well-known-core", "quic-version-negotiation", "echo", "daytime", "chargen",
               "rip-request", "ssdp-msearch"}
    assert set(BY_NAME) == checked


def test_dns_queries() -> None:
    version = DNS(body("dns-version-bind"))
    assert version.id == TOKEN & 0xFFFF and version.qr == 0 and version.qdcount == 1
    assert version.qd[0].qname == b"version.bind." and version.qd[0].qtype == 16 and version.qd[0].qclass == 3
    root = DNS(body("dns-root"))
    assert root.rd == 1 and root.qd[0].qname == b"." and root.qd[0].qtype == 2 and root.qd[0].qclass == 1
    mdns = DNS(body("mdns-services"))
    assert mdns.qd[0].qname == b"_services._dns-sd._udp.local." and mdns.qd[0].qtype == 12
    assert mdns.qd[0].unicastresponse == 1 and mdns.qd[0].qclass == 1  # QU bit (RFC 6762 s5.4), class IN


def test_dns_reply_check_reads_a_reply_scapy_builds() -> None:
    payload = BY_NAME["dns-version-bind"]
    assert payload.echoed is not None
    assert payload.echoed(bytes(DNS(id=TOKEN & 0xFFFF, qr=1, qd=DNS(body("dns-version-bind")).qd))) == TOKEN & 0xFFFF
    assert payload.echoed(bytes(DNS(id=7, qr=0))) is None  # a query is no answer


def test_netbios_node_status_request() -> None:
    header = NBNSHeader(body("netbios-nbstat"))
    assert header.NAME_TRN_ID == TOKEN & 0xFFFF and header.QDCOUNT == 1
    request = header[NBNSNodeStatusRequest]
    assert request.QUESTION_NAME.strip(b"\x00 ") == b"*" and request.QUESTION_TYPE == 0x21


def test_ntp_client_request_carries_the_token_in_its_transmit_timestamp() -> None:
    ntp = NTPHeader(body("ntp-client"))
    assert (ntp.version, ntp.mode) == (4, 3)
    raw = body("ntp-client")
    assert int.from_bytes(raw[40:44], "big") == TOKEN and len(raw) == 48
    answer = bytearray(bytes(NTPHeader(version=4, mode=4, stratum=2)))
    answer[24:32] = raw[40:48]  # a server copies our transmit time into its origin time
    assert BY_NAME["ntp-client"].echoed is not None and BY_NAME["ntp-client"].echoed(bytes(answer)) == TOKEN


@pytest.mark.parametrize(("name", "version"), [("snmp-v1-public", 0), ("snmp-v2c-public", 1)])
def test_snmp_get_requests(name: str, version: int) -> None:
    snmp = SNMP(body(name))
    assert snmp.version.val == version and snmp.community.val == b"public"
    pdu = snmp.PDU
    assert isinstance(pdu, SNMPget) and pdu.id.val == TOKEN & 0x7FFFFFFF
    assert pdu.varbindlist[0].oid.val == "1.3.6.1.2.1.1.1.0"
    reply = bytes(SNMP(version=version, community=b"public", PDU=SNMPget(id=TOKEN & 0x7FFFFFFF)))
    echoed = BY_NAME[name].echoed
    assert echoed is not None and echoed(reply) == TOKEN & 0x7FFFFFFF


def test_dhcp_inform() -> None:
    bootp = BOOTP(body("dhcp-inform"))
    assert bootp.op == 1 and bootp.xid == TOKEN
    options = dict(o for o in bootp[DHCP].options if isinstance(o, tuple))
    assert options["message-type"] == 8  # DHCPINFORM
    # The probe module names its own address in ciaddr, where the server sends the DHCPACK.
    sent = BOOTP(BY_NAME["dhcp-inform"].body(TOKEN, bytes([198, 18, 1, 2])))
    assert sent.ciaddr == "198.18.1.2" and sent.xid == TOKEN and bytes(sent) == bytes(bootp)[:12] + bytes(
        [198, 18, 1, 2]) + bytes(bootp)[16:]
    echoed = BY_NAME["dhcp-inform"].echoed
    assert echoed is not None and echoed(bytes(BOOTP(op=2, xid=TOKEN) / DHCP(options=[("message-type", 5), "end"]))) == TOKEN
    assert echoed(bytes(bootp)) is None  # a request is no answer


def test_ike_main_mode_proposal() -> None:
    isakmp = ISAKMP(body("ike-main-mode"))
    assert int.from_bytes(isakmp.init_cookie[:4], "big") == TOKEN and isakmp.exch_type == 2
    assert isakmp.length == len(body("ike-main-mode")) and isakmp.haslayer(ISAKMP_payload_SA)
    echoed = BY_NAME["ike-main-mode"].echoed
    assert echoed is not None and echoed(bytes(ISAKMP(init_cookie=isakmp.init_cookie, resp_cookie=b"r" * 8))) == TOKEN


def test_tftp_read_request() -> None:
    tftp = TFTP(body("tftp-rrq"))
    assert tftp.op == 1 and tftp[TFTP_RRQ].mode == b"octet"


def test_portmapper_null_call() -> None:
    rpc = RPC(body("portmap-null"))
    assert rpc.xid == TOKEN and rpc.mtype == 0
    call = rpc[RPC_Call]
    assert (call.version, call.program, call.pversion, call.procedure) == (2, 100000, 2, 0)


def test_coap_get_well_known_core() -> None:
    coap = CoAP(body("coap-well-known-core"))
    assert coap.ver == 1 and coap.type == 0 and coap.code == 1 and coap.msg_id == TOKEN & 0xFFFF
    assert coap.token == TOKEN.to_bytes(4, "big")
    assert [value for _, value in coap.options] == [b".well-known", b"core"]
    ack = bytes(CoAP(type=2, code=69, msg_id=coap.msg_id, token=coap.token, tkl=4))
    echoed = BY_NAME["coap-well-known-core"].echoed
    assert echoed is not None and echoed(ack) == TOKEN


def test_quic_long_header_with_a_reserved_version() -> None:
    raw = body("quic-version-negotiation")
    assert len(raw) >= 1200 and raw[0] & 0xC0 == 0xC0
    assert int.from_bytes(raw[1:5], "big") & 0x0F0F0F0F == 0x0A0A0A0A  # RFC 9000 s15: forces negotiation
    scid = raw[15:23]
    vn = bytes(QUIC_Version(DstConnID=scid, SrcConnID=raw[6:14], SupportedVersions=[1]))
    echoed = BY_NAME["quic-version-negotiation"].echoed
    assert echoed is not None and echoed(vn) == TOKEN


def test_rip_whole_table_request() -> None:
    rip = RIP(body("rip-request"))
    assert (rip.cmd, rip.version) == (1, 2)
    entry = rip[RIPEntry]
    assert entry.AF == 0 and entry.metric == 16


@pytest.mark.parametrize("name", ["sip-options", "ssdp-msearch", "echo", "daytime", "chargen", "memcached-version"])
def test_text_protocols(name: str) -> None:
    raw = body(name)
    if name == "sip-options":
        lines = raw.decode().split("\r\n")
        assert lines[0] == "OPTIONS sip:probe@leadline.invalid SIP/2.0" and raw.endswith(b"\r\n\r\n")
        assert any(line.startswith("Via: SIP/2.0/UDP ") and "branch=z9hG4bK" in line for line in lines)
        echoed = BY_NAME[name].echoed
        assert echoed is not None and echoed(b"SIP/2.0 200 OK\r\nCall-ID: %08x@x\r\n\r\n" % TOKEN) == TOKEN
    elif name == "ssdp-msearch":
        assert raw.startswith(b"M-SEARCH * HTTP/1.1\r\n") and b'MAN: "ssdp:discover"' in raw
    elif name == "memcached-version":
        assert int.from_bytes(raw[:2], "big") == TOKEN & 0xFFFF and raw[4:6] == b"\x00\x01" and raw[8:] == b"version\r\n"
    else:
        assert raw.endswith(b"\r\n")


def test_probes_carrying_payloads_are_valid_udp_for_scapy() -> None:
    module = UdpScan(payloads=PayloadTable(PAYLOADS))
    ctx = ProbeContext("198.18.1.2", b"oracle secret")
    for port in sorted({p for payload in PAYLOADS for p in payload.ports}):
        probe = module.build("198.18.1.65", port, 0, ctx)
        for packet in (probe.packet, *probe.extra):
            parsed = IP(packet)
            clone = IP(bytes(parsed))
            del clone.chksum, clone[UDP].chksum, clone.len, clone[UDP].len
            assert bytes(clone.__class__(bytes(clone))) == packet, port
            assert parsed[UDP].dport == port and parsed[UDP].len == len(packet) - 20
