"""What a UDP probe carries: a request a live service answers, or nothing.

An empty datagram draws an ICMP port unreachable from a closed port but,
usually, silence from an open one: a service only answers a request it
understands.  So for well-known ports the probe carries a request written
from the protocol's specification, and an open service shows ``open``
instead of ``open|filtered``.  Every payload for a port goes out in the
first round.

Each payload is built from a 32-bit token (the scan's keyed cookie for
that probe) which it puts in the protocol's ID field when it has one;
``echoed`` reads the field back from a reply, and a reply carrying
another ID is dropped (``PayloadTable.echo_matches``).

nmap's own payloads (``/usr/share/nmap/nmap-payloads``, nmap <= 7.93)
are read at run time when nmap is installed (the pipeline reads the
file, ``parse_nmap_payloads`` reads its text), never copied here; they
carry fixed IDs, so on a port where one of them is sent the ID check is
left to the source-port cookie alone.

Services that never answer an unauthenticated datagram (syslog,
WireGuard) get nothing: nothing would make them answer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "PAYLOADS",
    "Payload",
    "PayloadTable",
    "default_table",
    "fixed_table",
    "parse_nmap_payloads",
    "NMAP_PAYLOADS",
]

NMAP_PAYLOADS = "/usr/share/nmap/nmap-payloads"


@dataclass(frozen=True, slots=True)
class Payload:
    """One request for one or more ports."""

    name: str
    ports: tuple[int, ...]
    build: Callable[[int], bytes]  # token -> datagram body
    echoed: Callable[[bytes], int | None] | None = None  # the token a reply carries back, if it parses
    mask: int = 0xFFFFFFFF  # the token's bits the ID field holds
    other_port: bool = False  # the service answers from a port of its own (TFTP)
    ranges: tuple[tuple[int, int], ...] = ()  # wide port ranges (nmap's RPC guesses), kept unexpanded
    source_at: int | None = None  # where the body names the sender's IPv4 address (DHCPINFORM's ciaddr)
    answer_delay: float = 0.0  # how long the protocol lets a live service wait before answering (SSDP: MX s)

    def body(self, token: int, source: bytes = b"") -> bytes:
        """The datagram body for one probe; ``source`` (the packed source address) fills ``source_at``."""
        data = self.build(token)
        at = self.source_at
        if at is None or len(source) != 4:
            return data
        return data[:at] + source + data[at + 4:]


# --- DNS (RFC 1035 s4.1), mDNS (RFC 6762), NetBIOS NS (RFC 1002 s4.2) -----------------------


def _dns_name(*labels: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in labels) + b"\0"


def _dns_query(ident: int, flags: int, name: bytes, qtype: int, qclass: int) -> bytes:
    # ID, flags, QDCOUNT=1, ANCOUNT, NSCOUNT, ARCOUNT; then the question.
    return struct.pack("!HHHHHH", ident & 0xFFFF, flags, 1, 0, 0, 0) + name + struct.pack("!HH", qtype, qclass)


def _dns_echo(reply: bytes) -> int | None:
    """The ID of a DNS-shaped response (QR bit set), None for anything else."""
    if len(reply) < 12 or not reply[2] & 0x80:
        return None
    return int(struct.unpack_from("!H", reply)[0])


def _version_bind(token: int) -> bytes:
    # version.bind TXT in class CHAOS: servers that answer it name their software.
    return _dns_query(token, 0x0000, _dns_name("version", "bind"), 16, 3)


def _dns_root(token: int) -> bytes:
    # The root zone's NS records, recursion desired: any resolver or server answers (maybe REFUSED).
    return _dns_query(token, 0x0100, b"\0", 2, 1)


def _mdns(token: int) -> bytes:
    # DNS-SD service enumeration, unicast-response bit set in QCLASS (RFC 6762 s5.4).
    return _dns_query(token, 0x0000, _dns_name("_services", "_dns-sd", "_udp", "local"), 12, 0x8001)


def _nbstat(token: int) -> bytes:
    # Node status request for the wildcard name "*" (first-level encoded: 'C','K' then 'A' * 30).
    name = b"\x20" + b"CK" + b"A" * 30 + b"\0"
    return struct.pack("!HHHHHH", token & 0xFFFF, 0x0000, 1, 0, 0, 0) + name + struct.pack("!HH", 0x21, 1)


def _nbns_echo(reply: bytes) -> int | None:
    if len(reply) < 12 or not reply[2] & 0x80:
        return None
    return int(struct.unpack_from("!H", reply)[0])


# --- NTP (RFC 5905 s7.3) ------------------------------------------------------------------


def _ntp(token: int) -> bytes:
    # LI 0, version 4, mode 3 (client); the transmit timestamp carries the token and the
    # server copies it into the reply's origin timestamp.
    return bytes([0x23, 0, 6, 0xEC]) + bytes(36) + struct.pack("!II", token & 0xFFFFFFFF, 0x4C4C0000)


def _ntp_echo(reply: bytes) -> int | None:
    if len(reply) < 48 or reply[0] & 0x07 not in (2, 4):  # symmetric passive or server
        return None
    return int(struct.unpack_from("!I", reply, 24)[0])


# --- SNMP v1 / v2c (RFC 1157, RFC 3416): GetRequest sysDescr.0, community "public" -------------


def _ber(tag: int, body: bytes) -> bytes:
    length = len(body)
    if length < 0x80:
        return bytes([tag, length]) + body
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def _ber_int(value: int) -> bytes:
    return _ber(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


_SYSDESCR = bytes([0x2B, 6, 1, 2, 1, 1, 1, 0])  # 1.3.6.1.2.1.1.1.0


def _snmp(version: int) -> Callable[[int], bytes]:
    def build(token: int) -> bytes:
        varbind = _ber(0x30, _ber(0x06, _SYSDESCR) + b"\x05\x00")
        pdu = _ber(0xA0, _ber_int(token & 0x7FFFFFFF) + _ber_int(0) + _ber_int(0) + _ber(0x30, varbind))
        return _ber(0x30, _ber_int(version) + _ber(0x04, b"public") + pdu)

    return build


def _ber_read(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the BER element at ``at``."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 3:
            raise ValueError("BER length")
        length = int.from_bytes(data[at:at + count], "big")
        at += count
    if at + length > len(data):
        raise ValueError("BER truncated")
    return tag, at, at + length


def _snmp_echo(reply: bytes) -> int | None:
    """The request-id of an SNMP message: SEQUENCE { version, community, PDU { request-id, ... } }."""
    try:
        tag, at, _ = _ber_read(reply, 0)
        if tag != 0x30:
            return None
        for _ in range(2):  # version, community
            _, _, at = _ber_read(reply, at)
        tag, at, _ = _ber_read(reply, at)
        if tag & 0xE0 != 0xA0:
            return None
        tag, start, end = _ber_read(reply, at)
        if tag != 0x02:
            return None
        return int.from_bytes(reply[start:end], "big", signed=True) & 0xFFFFFFFF
    except (IndexError, ValueError):
        return None


# --- SSDP (UPnP device architecture 1.1 s1.3.2), SIP (RFC 3261 s11) ---------------------------


def _ssdp(token: int) -> bytes:
    return (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
            b"MX: 1\r\nST: ssdp:all\r\n\r\n")


def _sip(token: int) -> bytes:
    tag = f"{token & 0xFFFFFFFF:08x}"
    return (f"OPTIONS sip:probe@leadline.invalid SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP leadline.invalid;branch=z9hG4bK{tag};rport\r\n"
            f"Max-Forwards: 70\r\nTo: <sip:probe@leadline.invalid>\r\n"
            f"From: <sip:scan@leadline.invalid>;tag={tag}\r\nCall-ID: {tag}@leadline.invalid\r\n"
            f"CSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n").encode()


def _sip_echo(reply: bytes) -> int | None:
    marker = reply.find(b"\r\nCall-ID: ")
    if not reply.startswith(b"SIP/2.0 ") or marker < 0:
        return None
    try:
        return int(reply[marker + 11:marker + 19], 16)
    except ValueError:
        return None


# --- DHCP (RFC 2131), IKE (RFC 2408/2409), TFTP (RFC 1350), RIP (RFC 2453) --------------------


def _dhcp(token: int) -> bytes:
    # DHCPINFORM from a made-up client: op 1, Ethernet, xid = token, then the magic cookie and
    # option 53 (message type 8), a parameter request list and the end option.  ciaddr (offset 12)
    # is the client's own address (RFC 2131 s4.4.3), which the probe module fills in: a server
    # has nowhere to send the DHCPACK of an INFORM whose ciaddr is 0, and dnsmasq sends nothing.
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, token & 0xFFFFFFFF, 0, 0x8000,
                         bytes(4), bytes(4), bytes(4), bytes(4), bytes.fromhex("02004c4c0001") + bytes(10),
                         bytes(64), bytes(128))
    return header + bytes([0x63, 0x82, 0x53, 0x63, 53, 1, 8, 55, 3, 1, 3, 6, 255])


def _dhcp_echo(reply: bytes) -> int | None:
    # A BOOTREPLY (op 2) returns the request's xid.
    if len(reply) < 240 or reply[0] != 2:
        return None
    return int(struct.unpack_from("!I", reply, 4)[0])


_CIADDR = 12


def _ike(token: int) -> bytes:
    # ISAKMP main mode: one proposal (3DES, SHA-1, pre-shared key, MODP group 2); the token
    # leads the initiator cookie, which a responder returns in its header.
    attributes = struct.pack("!HHHHHHHHHHHHI", 0x8001, 5, 0x8002, 2, 0x8003, 1, 0x8004, 2, 0x800B, 1, 0x000C, 4, 28800)
    transform = struct.pack("!BBHBBH", 0, 0, 8 + len(attributes), 1, 1, 0) + attributes
    proposal = struct.pack("!BBHBBBB", 0, 0, 8 + len(transform), 1, 1, 0, 1) + transform
    sa = struct.pack("!BBHII", 0, 0, 12 + len(proposal), 1, 1) + proposal
    header = struct.pack("!IIQBBBBII", token & 0xFFFFFFFF, 0x4C4C4C4C, 0, 1, 0x10, 2, 0, 0, 28 + len(sa))
    return header + sa


def _ike_echo(reply: bytes) -> int | None:
    return int(struct.unpack_from("!I", reply)[0]) if len(reply) >= 28 else None


def _tftp(token: int) -> bytes:
    return b"\x00\x01leadline-probe.txt\x00octet\x00"  # RRQ; the error or data comes from a new port


def _rip(token: int) -> bytes:
    # RIPv2 request for the whole table: one entry, address family 0, metric 16.
    return struct.pack("!BBH", 1, 2, 0) + struct.pack("!HH4s4s4sI", 0, 0, bytes(4), bytes(4), bytes(4), 16)


# --- memcached (protocol.txt, UDP frame header), ONC RPC (RFC 5531), CoAP (RFC 7252) ---------


def _memcached(token: int) -> bytes:
    # Frame header: request ID, sequence 0, one datagram, reserved; then a text command.
    return struct.pack("!HHHH", token & 0xFFFF, 0, 1, 0) + b"version\r\n"


def _memcached_echo(reply: bytes) -> int | None:
    return int(struct.unpack_from("!H", reply)[0]) if len(reply) >= 8 else None


def _portmap(token: int) -> bytes:
    # CALL, RPC version 2, program 100000 (portmapper) version 2, procedure 0 (NULL), AUTH_NONE twice.
    return struct.pack("!IIIIIIIIII", token & 0xFFFFFFFF, 0, 2, 100000, 2, 0, 0, 0, 0, 0)


def _rpc_echo(reply: bytes) -> int | None:
    if len(reply) < 8 or struct.unpack_from("!I", reply, 4)[0] != 1:  # msg_type REPLY
        return None
    return int(struct.unpack_from("!I", reply)[0])


def _coap(token: int) -> bytes:
    # Version 1, confirmable, 4-byte token; GET /.well-known/core (two Uri-Path options, number 11).
    return (struct.pack("!BBH", 0x44, 0x01, token & 0xFFFF) + struct.pack("!I", token & 0xFFFFFFFF)
            + b"\xbb.well-known" + b"\x04core")


def _coap_echo(reply: bytes) -> int | None:
    if len(reply) < 8 or reply[0] >> 6 != 1 or reply[0] & 0x0F != 4:
        return None
    return int(struct.unpack_from("!I", reply, 4)[0])


# --- QUIC (RFC 9000 s6, s17.2): a long header with a reserved version forces version negotiation


def _quic(token: int) -> bytes:
    dcid = struct.pack("!II", 0x4C4C4C4C, token & 0xFFFFFFFF)
    scid = struct.pack("!II", token & 0xFFFFFFFF, 0x4C4C4C4C)
    packet = bytes([0xC0]) + struct.pack("!I", 0x1A2A3A4A) + bytes([8]) + dcid + bytes([8]) + scid
    return packet + bytes(1200 - len(packet))  # servers ignore Initial-sized datagrams under 1200 bytes


def _quic_echo(reply: bytes) -> int | None:
    # Version negotiation: version 0, and the destination connection ID is our source one.
    if len(reply) < 14 or not reply[0] & 0x80 or reply[1:5] != bytes(4) or reply[5] != 8:
        return None
    return int(struct.unpack_from("!I", reply, 6)[0])


# --- echo (RFC 862), daytime (RFC 867), chargen (RFC 864): any datagram is answered ------------


def _echo(token: int) -> bytes:
    return f"leadline {token & 0xFFFFFFFF:08x}\r\n".encode()


def _echo_echo(reply: bytes) -> int | None:
    if not reply.startswith(b"leadline ") or len(reply) < 17:
        return None
    try:
        return int(reply[9:17], 16)
    except ValueError:
        return None


def _crlf(token: int) -> bytes:
    return b"\r\n"


PAYLOADS: tuple[Payload, ...] = (
    Payload("echo", (7,), _echo, _echo_echo),
    Payload("daytime", (13,), _crlf),
    Payload("chargen", (19,), _crlf),
    Payload("dns-version-bind", (53,), _version_bind, _dns_echo, 0xFFFF),
    Payload("dns-root", (53,), _dns_root, _dns_echo, 0xFFFF),
    Payload("dhcp-inform", (67,), _dhcp, _dhcp_echo, source_at=_CIADDR),
    # A TFTP server answers from a port of its own (RFC 1350's transfer ID): tftpd forks a process per
    # request to send it, which a busy host schedules late.
    Payload("tftp-rrq", (69,), _tftp, other_port=True, answer_delay=0.5),
    Payload("portmap-null", (111,), _portmap, _rpc_echo),
    Payload("ntp-client", (123,), _ntp, _ntp_echo),
    Payload("netbios-nbstat", (137,), _nbstat, _nbns_echo, 0xFFFF),
    Payload("snmp-v1-public", (161,), _snmp(0), _snmp_echo, 0x7FFFFFFF),
    Payload("snmp-v2c-public", (161,), _snmp(1), _snmp_echo, 0x7FFFFFFF),
    Payload("quic-version-negotiation", (443,), _quic, _quic_echo),
    Payload("ike-main-mode", (500,), _ike, _ike_echo),
    Payload("rip-request", (520,), _rip),
    # UPnP has a device answer an M-SEARCH after a random delay of up to MX seconds (ours asks MX: 1).
    Payload("ssdp-msearch", (1900,), _ssdp, answer_delay=1.0),
    Payload("sip-options", (5060,), _sip, _sip_echo),
    Payload("mdns-services", (5353,), _mdns, _dns_echo, 0xFFFF),
    Payload("coap-well-known-core", (5683,), _coap, _coap_echo),
    Payload("memcached-version", (11211,), _memcached, _memcached_echo, 0xFFFF),
)


class PayloadTable:
    """The payloads per port, and the reply checks that go with them.

    Ports are indexed once; wide ranges (nmap's 32768-65535 RPC entry)
    stay ranges and are looked up per port, so making a table costs
    microseconds, not the half second expanding them took.
    """

    def __init__(self, payloads: Iterable[Payload], *, every_port: Payload | None = None) -> None:
        self._by_port: dict[int, tuple[Payload, ...]] = {}
        self._wide: list[tuple[int, int, Payload]] = []
        fixed: set[int] = set()
        for payload in payloads:
            for port in payload.ports:
                self._by_port[port] = (*self._by_port.get(port, ()), payload)
            self._wide.extend((low, high, payload) for low, high in payload.ranges)
            if payload.echoed is None and _fixed(payload):
                fixed.add(id(payload))
        self._fixed = fixed  # payloads without our token: on their ports the ID check cannot apply
        self._every_port = every_port
        self._found: dict[int, tuple[Payload, ...]] = {}
        # Services that answer from a port of their own do so whatever the request (TFTP): kept with --data too.
        self.other_port_services = tuple(sorted({
            *(port for port, found in self._by_port.items() if any(p.other_port for p in found)),
            *(port for p in PAYLOADS if p.other_port for port in p.ports),
        }))

    def for_port(self, port: int) -> tuple[Payload, ...]:
        if self._every_port is not None:
            return (self._every_port,)
        if not self._wide:
            return self._by_port.get(port, ())
        found = self._found.get(port)
        if found is None:
            found = self._by_port.get(port, ()) + tuple(p for low, high, p in self._wide if low <= port <= high)
            self._found[port] = found
        return found

    def answer_delay(self, port: int) -> float:
        """The longest any payload for ``port`` lets its service wait before answering."""
        return max((p.answer_delay for p in self.for_port(port)), default=0.0)

    def echo_matches(self, port: int, reply: bytes, token: int) -> bool:
        """False when a payload sent to ``port`` reads an ID from ``reply`` and none is ours."""
        sent = self.for_port(port)
        if any(id(p) in self._fixed for p in sent):
            return True
        seen = False
        for payload in sent:
            if payload.echoed is None:
                continue
            value = payload.echoed(reply)
            if value is None:
                continue
            if value == token & payload.mask:
                return True
            seen = True
        return not seen


def _fixed(payload: Payload) -> bool:
    """True for payloads whose bytes ignore the token (nmap's, --data): their IDs are not ours."""
    return payload.build(0) == payload.build(0xFFFFFFFF)


def _constant(data: bytes) -> Callable[[int], bytes]:
    def build(token: int) -> bytes:
        return data

    return build


def fixed_table(data: bytes) -> PayloadTable:
    """--data / --data-string / --data-length: the same bytes to every port, no protocol payloads."""
    return PayloadTable((), every_port=Payload("user-data", (), _constant(data)))


def default_table(nmap_payloads: Iterable[Payload] = ()) -> PayloadTable:
    """Our payloads plus, when given, nmap's (``parse_nmap_payloads``)."""
    return PayloadTable((*PAYLOADS, *nmap_payloads))


# --- nmap-payloads, read at run time ----------------------------------------------------------

_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'", "a": b"\a",
            "b": b"\b", "f": b"\f", "v": b"\v"}


def _unquote(text: str, at: int) -> tuple[bytes, int]:
    """The C-style string starting at the quote at ``at``, and the index after its closing quote."""
    out = bytearray()
    i = at + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return bytes(out), i + 1
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x" and i + 3 < len(text):
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt.encode("latin-1"))
            i += 2
            continue
        out += ch.encode("latin-1")
        i += 1
    raise ValueError("unterminated string")


_WIDE = 256  # ranges longer than this stay ranges


def _port_list(text: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """nmap's port list: single ports and short ranges expanded, long ranges kept as (low, high)."""
    ports: list[int] = []
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if not 0 < first <= last <= 65535:
            raise ValueError(f"bad port range {part}")
        if last - first >= _WIDE:
            ranges.append((first, last))
        else:
            ports.extend(range(first, last + 1))
    return tuple(ports), tuple(ranges)


def parse_nmap_payloads(text: str) -> tuple[Payload, ...]:
    """Entries ``udp PORTS "string" ... [source PORT]``; comments start with '#'. Bad entries are skipped."""
    payloads: list[Payload] = []
    entries = _entries(text)
    for index, (ports_text, body) in enumerate(entries):
        try:
            data = _strings(body)
            ports, ranges = _port_list(ports_text)
        except (ValueError, IndexError):
            continue
        payloads.append(Payload(f"nmap-payloads#{index + 1}", ports, _constant(data), ranges=ranges))
    return tuple(payloads)


def _entries(text: str) -> list[tuple[str, str]]:
    """(ports, the rest) per entry: an entry runs from a line starting "udp" to the next one."""
    entries: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split(None, 2)
        if words[0] == "udp" and len(words) >= 2:
            entries.append((words[1], [words[2] if len(words) > 2 else ""]))
        elif entries:
            entries[-1][1].append(line)
    return [(ports, " ".join(rest)) for ports, rest in entries]


def _strings(body: str) -> bytes:
    data = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == '"':
            chunk, i = _unquote(body, i)
            data += chunk
        elif ch == "#":
            break
        elif body.startswith("source", i):
            break  # "source PORT": a preferred source port; ours carries the cookie
        else:
            i += 1
    return bytes(data)
