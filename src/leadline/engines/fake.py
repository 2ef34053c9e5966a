"""A scripted network in memory, and the loop that runs a scan session over it in virtual time.

Why: the session and the rate controller must be tested against loss,
rate limiting and congestion, deterministically and in milliseconds;
and ``--dry-run`` needs a network that answers without sending a
packet.  ``FakeNetwork`` takes the IPv4 datagrams a session emits and
answers them the way a TCP/IP stack would (RFC 9293 section 3.10.7 for
TCP, RFC 792 port unreachable for UDP), with per-host loss, per-host
caps on RSTs and ICMP errors (the token buckets real stacks and
``iptables -m limit`` apply) and an optional bottleneck link with a
finite queue (real congestion).  Randomness comes from a seeded RNG, so
a run is reproducible.  ``receive_drops`` models the scanner's own
kernel throwing replies away (a packet socket's buffer overflowing under
a flood): replies arriving in those windows are counted, not delivered,
and the loop reports the count as the real engine reports
``PACKET_STATISTICS``.
"""

from __future__ import annotations

import enum
import heapq
import ipaddress
import random
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from leadline.core.session import Event, ScanSession

__all__ = ["Answer", "FakeHost", "FakeNetwork", "PortBehaviour", "run_fake_scan"]

_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_ACK = 0x01, 0x02, 0x04, 0x10


class Answer(enum.Enum):
    OPEN = "open"  # a listener: SYN/ACK to SYN, a UDP reply to UDP
    CLOSED = "closed"  # RST for TCP, ICMP port unreachable for UDP
    DROP = "drop"  # silence, as behind a DROP rule
    ICMP = "icmp"  # an ICMP destination-unreachable with ``icmp_code``


@dataclass(frozen=True, slots=True)
class PortBehaviour:
    answer: Answer
    icmp_code: int = 3
    delay: float = 0.0  # an open UDP service waits this long before answering (SSDP: a random share of MX s)


OPEN = PortBehaviour(Answer.OPEN)
CLOSED = PortBehaviour(Answer.CLOSED)
DROP = PortBehaviour(Answer.DROP)


@dataclass(frozen=True, slots=True)
class FakeHost:
    """How one address answers.  Limits are (per second, burst) token buckets on what the host sends."""

    ports: Mapping[int, PortBehaviour] = field(default_factory=dict)
    default: PortBehaviour = CLOSED
    loss: float = 0.0  # probability that an arriving probe is dropped
    rst_limit: tuple[float, int] | None = None
    icmp_limit: tuple[float, int] | None = None
    rtt: float = 0.0003
    ttl: int = 64
    icmp_queries: frozenset[int] = frozenset()  # ICMP query types answered (8 echo, 13 timestamp, 17 mask)


class _Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, float(burst), float(burst), 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: bytes, dst: bytes, protocol: int, payload: bytes, ttl: int, ident: int) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, ttl, protocol, 0, src, dst)
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def _tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, window: int, options: bytes = b"") -> bytes:
    offset = (20 + len(options)) // 4
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(segment))
    return segment[:16] + struct.pack("!H", _checksum(pseudo + segment)) + segment[18:]


def _icmp_unreachable(code: int, quoted: bytes) -> bytes:
    body = struct.pack("!BBHI", 3, code, 0, 0) + quoted
    return body[:2] + struct.pack("!H", _checksum(body)) + body[4:]


def _icmp_answer(query: bytes) -> bytes:
    """The reply to an ICMP query: type + 1 (echo 8 -> 0 is the exception), same identifier, sequence and body."""
    body = bytearray(query)
    body[0] = 0 if query[0] == 8 else query[0] + 1
    body[2:4] = b"\0\0"
    body[2:4] = struct.pack("!H", _checksum(bytes(body)))
    return bytes(body)


class FakeNetwork:
    """Answers IPv4 probes from scripted hosts; replies are queued with their arrival times."""

    def __init__(
        self,
        hosts: Mapping[str, FakeHost],
        *,
        seed: int = 0,
        link_rate: float | None = None,
        link_queue: int = 64,
        receive_drops: Sequence[tuple[float, float]] = (),
    ) -> None:
        self.hosts = dict(hosts)
        self.receive_drops = tuple(receive_drops)  # (from, until): replies arriving then are dropped
        self.dropped_on_receive = 0
        self._unreported_drops = 0
        self.random = random.Random(seed)
        self.link_rate = link_rate
        self.link_queue = link_queue
        self.send_times: list[float] = []
        self.replies_sent = 0
        self._link_free = 0.0
        self._arrivals: list[tuple[float, int, bytes]] = []
        self._order = 0
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def send(self, datagram: bytes, now: float) -> None:
        """Put one probe on the wire at ``now``."""
        self.send_times.append(now)
        if len(datagram) < 20 or datagram[0] >> 4 != 4:
            return
        dst = str(ipaddress.IPv4Address(datagram[16:20]))
        host = self.hosts.get(dst)
        if host is None:
            return
        at = now
        if self.link_rate is not None:
            departure = max(now, self._link_free) + 1.0 / self.link_rate
            if (departure - now) * self.link_rate > self.link_queue:
                return  # the bottleneck's queue is full: tail drop
            self._link_free = departure
            at = departure
        if host.loss and self.random.random() < host.loss:
            return
        arrival = at + host.rtt / 2
        answered = self._answer(dst, host, datagram, arrival)
        if answered is not None:
            reply, delay = answered
            self.replies_sent += 1
            self._order += 1
            heapq.heappush(self._arrivals, (arrival + host.rtt / 2 + delay, self._order, reply))

    def next_arrival(self) -> float | None:
        return self._arrivals[0][0] if self._arrivals else None

    def receive(self, until: float) -> list[tuple[float, bytes]]:
        """Every reply that has arrived by ``until``, oldest first."""
        out: list[tuple[float, bytes]] = []
        while self._arrivals and self._arrivals[0][0] <= until:
            at, _, datagram = heapq.heappop(self._arrivals)
            if any(start <= at < end for start, end in self.receive_drops):
                self.dropped_on_receive += 1
                self._unreported_drops += 1
                continue
            out.append((at, datagram))
        return out

    def take_receive_drops(self) -> int:
        """Replies dropped on receive since the last call, as PACKET_STATISTICS reports them."""
        dropped, self._unreported_drops = self._unreported_drops, 0
        return dropped

    def _allowed(self, dst: str, kind: str, limit: tuple[float, int] | None, now: float) -> bool:
        if limit is None:
            return True
        bucket = self._buckets.setdefault((dst, kind), _Bucket(*limit))
        return bucket.take(now)

    def _answer(self, dst: str, host: FakeHost, datagram: bytes, now: float) -> tuple[bytes, float] | None:
        """The reply to ``datagram`` and how long its service waits before sending it (an open UDP port's delay)."""
        header_length = (datagram[0] & 0x0F) * 4
        protocol = datagram[9]
        src_raw, dst_raw = datagram[12:16], datagram[16:20]
        transport = datagram[header_length:]
        if protocol == 1 and len(transport) >= 8 and transport[0] in host.icmp_queries:
            return _ipv4(dst_raw, src_raw, 1, _icmp_answer(transport), host.ttl, self.random.randrange(65536)), 0.0
        if protocol not in (6, 17) or len(transport) < 8:
            return None
        sport, dport = struct.unpack("!HH", transport[:4])
        behaviour = host.ports.get(dport, host.default)
        ident = self.random.randrange(65536)
        if behaviour.answer is Answer.DROP:
            return None
        if behaviour.answer is Answer.ICMP or (protocol == 17 and behaviour.answer is Answer.CLOSED):
            # Linux keeps its ICMP budget per destination of the error: one per source address of ours.
            if not self._allowed(f"{dst}>{ipaddress.IPv4Address(src_raw)}", "icmp", host.icmp_limit, now):
                return None
            quoted = datagram[: header_length + 8]
            return _ipv4(dst_raw, src_raw, 1, _icmp_unreachable(behaviour.icmp_code, quoted), host.ttl, ident), 0.0
        if protocol == 17:
            payload = struct.pack("!HHHH", dport, sport, 8 + 4, 0) + b"fake"
            return _ipv4(dst_raw, src_raw, 17, payload, host.ttl, ident), behaviour.delay
        reply = self._answer_tcp(dst, host, behaviour, transport, src_raw, dst_raw, sport, dport, ident, now)
        return None if reply is None else (reply, 0.0)

    def _answer_tcp(
        self,
        dst: str,
        host: FakeHost,
        behaviour: PortBehaviour,
        segment: bytes,
        src_raw: bytes,
        dst_raw: bytes,
        sport: int,
        dport: int,
        ident: int,
        now: float,
    ) -> bytes | None:
        if len(segment) < 20:
            return None
        seq, ack = struct.unpack("!II", segment[4:12])
        flags = segment[13]
        if flags & _TCP_RST:
            return None
        if flags & _TCP_ACK:
            reply = (ack, 0, _TCP_RST)
        elif behaviour.answer is Answer.OPEN:
            if not flags & _TCP_SYN:
                return None  # FIN/NULL/Xmas to a listener: silently discarded
            isn = self.random.getrandbits(32)
            tcp = _tcp(dst_raw, src_raw, dport, sport, isn, (seq + 1) & 0xFFFFFFFF, _TCP_SYN | _TCP_ACK, 64240, b"\x02\x04\x05\xb4")
            return _ipv4(dst_raw, src_raw, 6, tcp, host.ttl, ident)
        else:
            length = len(segment) - (segment[12] >> 4) * 4 + (1 if flags & _TCP_SYN else 0) + (1 if flags & _TCP_FIN else 0)
            reply = (0, (seq + length) & 0xFFFFFFFF, _TCP_RST | _TCP_ACK)
        if not self._allowed(dst, "rst", host.rst_limit, now):
            return None
        tcp = _tcp(dst_raw, src_raw, dport, sport, reply[0], reply[1], reply[2], 0)
        return _ipv4(dst_raw, src_raw, 6, tcp, host.ttl, ident)


def run_fake_scan(
    session: ScanSession,
    network: FakeNetwork,
    *,
    on_event: Callable[[Event], None],
    start: float = 0.0,
    time_limit: float = 24 * 3600.0,
    report_drops: bool = True,
) -> float:
    """Drive ``session`` over ``network`` in virtual time; return the virtual time it finished.

    ``report_drops=False`` keeps the network's receive drops from the
    session, as an engine that never reads its drop counters would.
    """
    now = start
    while True:
        for probe in session.due(now):
            network.send(probe.packet, now)
            for packet in probe.extra:
                network.send(packet, now)
        for _, datagram in network.receive(now):
            for event in session.receive(datagram, now):
                on_event(event)
        dropped = network.take_receive_drops()
        if dropped and report_drops:
            session.on_receive_drops(dropped, now)
        for event in session.expire(now):
            on_event(event)
        if session.finished:
            return now
        step = now + session.time_until_next(now)
        arrival = network.next_arrival()
        if arrival is not None:
            step = min(step, arrival)
        now = max(step, now + 1e-7)
        if now - start > time_limit:
            raise RuntimeError(f"fake scan still running after {time_limit} virtual seconds")
