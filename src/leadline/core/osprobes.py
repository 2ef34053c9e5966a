"""The probes of OS detection (nmap's second generation), built byte for byte, and a round's schedule.

One round sends, to one host: six SYNs 100 ms apart to an open port (the
SEQ/OPS/WIN probes; the first one's answer is also T1), then two ICMP
echoes (IE), a UDP datagram to a closed port (U1), the ECN probe and
T2-T7.  Every field that a fingerprint test reads back is nmap's, so
the answers are the ones nmap's fingerprints were taken from:

* TCP windows 1, 63, 4, 4, 16, 512 for SEQ1-6, 3 for ECN, 128, 256, 1024,
  31337, 32768, 65535 for T2-T7, each with nmap's option bytes below;
* ECN: CWR|ECE|SYN, the top reserved bit set, urgent pointer 63477;
* T2 (no flags), T4 (ACK) and T6 (ACK) carry DF; T3 is SYN|FIN|PSH|URG,
  T5 a SYN and T7 FIN|PSH|URG, both to the closed port;
* IE1: TOS 0, DF, code 9, 120 zero bytes; IE2: TOS 4, code 0, 150 bytes,
  the next identifier and sequence number;
* U1: 300 bytes of 'C', IP ID 0x1042, TTL ``udp_ttl``.

Each probe leaves from its own source port (``tcp_port_base + n``, as
nmap numbers them), so an answer names its probe by its destination
port; SEQ probes carry ``seq_base + n`` and every TCP probe acknowledges
``ack``, the values T1-T7's S and A tests compare with.

Nothing here does I/O or reads a clock: a round is a list of
(offset in seconds, probe) the engine sends at those times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from leadline.core.packet.icmp import ECHO_REQUEST, ICMPMessage, build_icmp
from leadline.core.packet.ipv4 import DF, IPv4Header, build_ipv4, pack_ipv4
from leadline.core.packet.tcp import TCPFlag, TCPSegment, build_tcp, parse_options
from leadline.core.packet.udp import UDPDatagram, build_udp

__all__ = [
    "ECN_URGENT",
    "OPTION_BYTES",
    "SEQ_DELAY",
    "SEQ_PROBES",
    "T_PROBES",
    "U1_IPID",
    "U1_PAYLOAD",
    "WINDOWS",
    "OsPlan",
    "OsProbe",
    "make_plan",
    "round_probes",
]

SEQ_PROBES = 6
SEQ_DELAY = 0.1  # seconds between SEQ probes: ISR and the timestamp rate are read against it
ECN_URGENT = 63477
U1_IPID = 0x1042
U1_PAYLOAD = b"C" * 300
_IE_DATA = (120, 150)
_IE_TOS = (0, 4)  # IE2 asks for reliability (IPTOS_RELIABILITY)
_IE_CODE = (9, 0)

# Receive windows of the 13 TCP probes: SEQ1-6, ECN, T2-T7.
WINDOWS = (1, 63, 4, 4, 16, 512, 3, 128, 256, 1024, 31337, 32768, 65535)

# Their options, in the order nmap writes them:
#   SEQ1: WScale 10, NOP, MSS 1460, Timestamp, SACK permitted
#   SEQ2: MSS 1400, WScale 0, SACK permitted, Timestamp, EOL
#   SEQ3: Timestamp, NOP, NOP, WScale 5, NOP, MSS 640
#   SEQ4: SACK permitted, Timestamp, WScale 10, EOL
#   SEQ5: MSS 536, SACK permitted, Timestamp, WScale 10, EOL
#   SEQ6: MSS 265, SACK permitted, Timestamp
#   ECN:  WScale 10, NOP, MSS 1460, SACK permitted, NOP, NOP
#   T2-T6: WScale 10, NOP, MSS 265, Timestamp, SACK permitted; T7 the same with WScale 15
# Timestamps carry TSval 0xFFFFFFFF and TSecr 0.
_TS = bytes.fromhex("080affffffff00000000")
OPTION_BYTES = (
    bytes.fromhex("03030a01020405b4") + _TS + bytes.fromhex("0402"),
    bytes.fromhex("020405780303000402") + _TS + b"\x00",
    _TS + bytes.fromhex("0101030305010204" "0280"),
    bytes.fromhex("0402") + _TS + bytes.fromhex("03030a00"),
    bytes.fromhex("020402180402") + _TS + bytes.fromhex("03030a00"),
    bytes.fromhex("020401090402") + _TS,
    bytes.fromhex("03030a01020405b404020101"),
    *(bytes.fromhex("03030a0102040109") + _TS + bytes.fromhex("0402"),) * 5,
    bytes.fromhex("03030f0102040109") + _TS + bytes.fromhex("0402"),
)

# T2..T7: (flags, DF, to the open port?)
T_PROBES = {
    "T2": (0, True, True),
    "T3": (TCPFlag.SYN | TCPFlag.FIN | TCPFlag.PSH | TCPFlag.URG, False, True),
    "T4": (TCPFlag.ACK, True, True),
    "T5": (TCPFlag.SYN, False, False),
    "T6": (TCPFlag.ACK, True, False),
    "T7": (TCPFlag.FIN | TCPFlag.PSH | TCPFlag.URG, False, False),
}

# The offset of each TCP probe's source port from tcp_port_base (nmap's numbering).
_PORT_OFFSET = {**{f"SEQ{i + 1}": i for i in range(SEQ_PROBES)}, "ECN": SEQ_PROBES + 6,
                **{f"T{n}": SEQ_PROBES + 6 + n for n in range(1, 8)}}


@dataclass(frozen=True, slots=True)
class OsPlan:
    """Everything one host's round needs, chosen once: ports, bases, identifiers.

    ``open_port``/``closed_port``/``closed_udp`` are None when none is
    known; the probes that need one are then not sent (nmap skips them too,
    and its fingerprint has no answer for them).
    """

    source: str  # our address
    target: str  # the host's address
    open_port: int | None  # an open TCP port: SEQ, ECN, T1-T4
    closed_port: int | None  # a closed TCP port: T5-T7 (nmap picks one at random when none is known)
    closed_udp: int | None  # a closed UDP port: U1
    tcp_port_base: int  # SEQn leaves from base+n-1; ECN base+12; Tn base+12+n
    udp_port_base: int  # U1's source port
    seq_base: int  # SEQn's sequence number is seq_base+n-1; the others send seq_base
    ack: int  # the acknowledgement number every TCP probe carries
    icmp_id: int  # IE1's identifier; IE2's is the next
    udp_ttl: int  # U1's TTL, from which the quoted copy tells the distance
    ttl: int = 64  # every other probe's TTL

    def tcp_source(self, name: str) -> int:
        """The source port of TCP probe ``name`` ("SEQ1".."SEQ6", "ECN", "T1".."T7")."""
        return (self.tcp_port_base + _PORT_OFFSET[name]) & 0xFFFF

    def tcp_probe_for(self, port: int) -> str | None:
        """Which TCP probe left from ``port`` (an answer's destination port), if any."""
        offset = (port - self.tcp_port_base) & 0xFFFF
        for name, value in _PORT_OFFSET.items():
            if value == offset and name != "T1":
                return name
        return None

    def udp_checksum(self) -> int:
        """The checksum U1 was sent with (RUCK compares the quoted one with it)."""
        datagram = build_udp(UDPDatagram(self.udp_port_base, self.closed_udp or 0, U1_PAYLOAD),
                             pack_ipv4(self.source), pack_ipv4(self.target))
        return int.from_bytes(datagram[6:8], "big")


@dataclass(frozen=True, slots=True)
class OsProbe:
    """One probe of a round: its name, when to send it (seconds after the round starts) and its bytes."""

    name: str  # "SEQ1".."SEQ6", "IE1", "IE2", "U1", "ECN", "T2".."T7"
    at: float
    datagram: bytes


def make_plan(source: str, target: str, open_port: int | None, closed_port: int | None,
              closed_udp: int | None, rng: random.Random, *, ttl: int = 64, udp_ttl: int | None = None) -> OsPlan:
    """A plan with nmap's random choices: port bases 33000 + r mod 32749, random sequence and ack."""
    prime_32k = 32261
    return OsPlan(
        source, target, open_port, closed_port, closed_udp,
        tcp_port_base=33000 + rng.randrange(prime_32k),
        udp_port_base=33000 + rng.randrange(prime_32k),
        seq_base=rng.getrandbits(32),
        ack=rng.getrandbits(32),
        icmp_id=rng.randrange(1, 0xFFFF),
        udp_ttl=udp_ttl if udp_ttl is not None else 51 + rng.randrange(14),
        ttl=ttl,
    )


def _tcp(plan: OsPlan, name: str, index: int, dport: int, flags: int, *, seq: int, ack: int,
         df: bool = False, reserved: int = 0, urgent: int = 0, ident: int = 0) -> bytes:
    segment = TCPSegment(plan.tcp_source(name), dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags,
                         WINDOWS[index], urgent, parse_options(OPTION_BYTES[index]), reserved=reserved)
    src, dst = pack_ipv4(plan.source), pack_ipv4(plan.target)
    raw = build_tcp(segment, src, dst)
    # parse_options keeps every byte, so the options are re-encoded exactly as given.
    return build_ipv4(IPv4Header(plan.source, plan.target, 6, raw, ttl=plan.ttl, ident=ident,
                                 flags=DF if df else 0))


def _echo(plan: OsPlan, n: int, ident: int) -> bytes:
    message = ICMPMessage(ECHO_REQUEST, _IE_CODE[n], (((plan.icmp_id + n) & 0xFFFF) << 16) | (295 + n),
                          bytes(_IE_DATA[n]))
    return build_ipv4(IPv4Header(plan.source, plan.target, 1, build_icmp(message), ttl=plan.ttl, ident=ident,
                                 tos=_IE_TOS[n], flags=DF if n == 0 else 0))


def _udp(plan: OsPlan) -> bytes:
    assert plan.closed_udp is not None
    raw = build_udp(UDPDatagram(plan.udp_port_base, plan.closed_udp, U1_PAYLOAD),
                    pack_ipv4(plan.source), pack_ipv4(plan.target))
    return build_ipv4(IPv4Header(plan.source, plan.target, 17, raw, ttl=plan.udp_ttl, ident=U1_IPID))


def round_probes(plan: OsPlan, rng: random.Random) -> list[OsProbe]:
    """The probes of one round in sending order, each with its time offset.

    The SEQ probes go 100 ms apart; the rest follow the last SEQ probe at
    once, ICMP first, so the ICMP IP IDs come right after the TCP ones
    (the SS test compares the two sequences).
    """
    probes: list[OsProbe] = []
    ident = rng.randrange(1, 0xFFFF)
    if plan.open_port is not None:
        for i in range(SEQ_PROBES):
            probes.append(OsProbe(f"SEQ{i + 1}", i * SEQ_DELAY,
                                  _tcp(plan, f"SEQ{i + 1}", i, plan.open_port, TCPFlag.SYN,
                                       seq=plan.seq_base + i, ack=plan.ack, ident=rng.randrange(0xFFFF))))
    rest = (SEQ_PROBES - 1) * SEQ_DELAY if plan.open_port is not None else 0.0
    for n in range(2):
        probes.append(OsProbe(f"IE{n + 1}", rest, _echo(plan, n, (ident + n) & 0xFFFF)))
    if plan.closed_udp is not None:
        probes.append(OsProbe("U1", rest, _udp(plan)))
    if plan.open_port is not None:
        probes.append(OsProbe("ECN", rest, _tcp(plan, "ECN", 6, plan.open_port,
                                                TCPFlag.CWR | TCPFlag.ECE | TCPFlag.SYN, seq=plan.seq_base, ack=0,
                                                reserved=8, urgent=ECN_URGENT, ident=rng.randrange(0xFFFF))))
    for index, (name, (flags, df, to_open)) in enumerate(T_PROBES.items(), start=7):
        port = plan.open_port if to_open else plan.closed_port
        if port is None:
            continue
        probes.append(OsProbe(name, rest, _tcp(plan, name, index, port, flags, seq=plan.seq_base, ack=plan.ack,
                                               df=df, ident=rng.randrange(0xFFFF))))
    return probes
