"""UDP scan (-sU): a datagram per port, and nmap's reading of what comes back.

Classification, as nmap does it (nmap(1) "UDP scan", scan_engine_raw):

* any UDP reply from the probed host answering our probe -> open (udp-response);
  that includes a reply from another source port of the host when the
  probe's payload is one whose protocol answers that way (TFTP);
* ICMP port unreachable (type 3 code 3, ICMPv6 1/4) sent by the probed host
  itself -> closed (port-unreach); sent by anyone else -> filtered;
* other unreachables (codes 0, 1, 2, 9, 10, 13 and their ICMPv6
  counterparts) and time exceeded -> filtered with nmap's reason;
* silence after every attempt -> open|filtered (no-response), or
  closed|filtered under ``--defeat-icmp-ratelimit``.

Validation.  UDP has no sequence number, so the keyed cookie rides in
the source port (which also says which attempt a reply answers) and, for
protocols with an ID field (DNS transaction ID, SNMP request ID, NTP
transmit timestamp, ...), in that field too: a reply whose ID field
parses and differs from ours is dropped.  ICMP errors must quote our
address, the probed port and our keyed source port.  ``match`` never
raises: anything malformed or not ours is None.

A probe may carry several datagrams: every payload known for a port goes
out in the first round (``Probe.extra``), as nmap does since 7.92.
"""

from __future__ import annotations

from typing import ClassVar

from leadline.core.cookie import CookieValues, ReplyCookie
from leadline.core.packet import icmp, icmpv6
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.ipv4 import IPv4Header, build_ipv4
from leadline.core.packet.ipv6 import IPv6Header, build_ipv6
from leadline.core.packet.parse import pack_address, parse_datagram, parse_quoted
from leadline.core.packet.udp import UDPDatagram, build_udp
from leadline.core.probes.base import Probe, ProbeContext, ProbeKey, Reply, ReplyKind, Verdict
from leadline.core.probes.tcpflags import acted_on_icmp, canonical_address, icmp_verdict
from leadline.core.udppayloads import PayloadTable
from leadline.model import PortState, Reason

__all__ = ["UdpScan", "classify_udp", "UDP"]

UDP = 17
_ATTEMPTS = 51  # --max-retries is at most 50: a source port further along is no probe of ours


def classify_udp(reply: Reply | None, *, silent: PortState = PortState.OPEN_FILTERED) -> Verdict:
    """nmap's UDP states; ``silent`` is what an unanswered port becomes."""
    if reply is None:
        return Verdict(silent, Reason.NO_RESPONSE)
    if reply.kind is ReplyKind.UDP:
        return Verdict(PortState.OPEN, Reason.UDP_RESPONSE, reply.ttl)
    if reply.kind is ReplyKind.ICMP_UNREACHABLE:
        port_unreach = reply.icmp_code == (4 if reply.family == 6 else 3)
        if port_unreach:
            state = PortState.FILTERED if reply.third_party else PortState.CLOSED
            return Verdict(state, Reason.PORT_UNREACH, reply.ttl)
    return icmp_verdict(reply) or Verdict(PortState.FILTERED, Reason.UNKNOWN_RESPONSE, reply.ttl)


def _ours(cookie: ReplyCookie, values: CookieValues, port: int) -> bool:
    """Our source port for one of the attempts a scan can make (or the fixed -g port)."""
    if not cookie.port_is_ours(values, port):
        return False
    attempt = cookie.attempt_from_port(values, port)
    return attempt is None or attempt < _ATTEMPTS


class UdpScan:
    """The -sU probe module; ``payloads`` decides what each port's datagrams carry."""

    name: ClassVar[str] = "udp"
    ip_protocol: ClassVar[int] = UDP
    capture_filter: ClassVar[str] = "udp or icmp or icmp6"

    def __init__(self, flags: int | None = None, payloads: PayloadTable | None = None,
                 silent: PortState = PortState.OPEN_FILTERED) -> None:
        del flags  # --scanflags means nothing to UDP
        self.payloads = payloads if payloads is not None else PayloadTable(())
        self.silent = silent
        self._scan: tuple[ProbeContext, bytes, ReplyCookie] | None = None

    def _per_scan(self, ctx: ProbeContext) -> tuple[bytes, ReplyCookie]:
        scan = self._scan
        if scan is None or scan[0] is not ctx:
            scan = (ctx, pack_address(ctx.source_address), ReplyCookie.for_scan(ctx.secret, ctx.source_port))
            self._scan = scan
        return scan[1], scan[2]

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe:
        src, cookie = self._per_scan(ctx)
        dst = pack_address(address)
        values = cookie.values(src, dst, UDP, port)
        sport = cookie.source_port(values, attempt)
        bodies = [p.body(values.seq_base, src) for p in self.payloads.for_port(port)] or [b""]
        packets = tuple(self._datagram(ctx, address, src, dst, sport, port, body, values.ip_id) for body in bodies)
        return Probe(ProbeKey(canonical_address(address), port, "udp"), packets[0], attempt, packets[1:])

    @staticmethod
    def _datagram(ctx: ProbeContext, address: str, src: bytes, dst: bytes, sport: int, port: int, body: bytes,
                  ident: int) -> bytes:
        segment = build_udp(UDPDatagram(sport, port, body), src, dst)
        if len(dst) == 16:
            return build_ipv6(IPv6Header(ctx.source_address, address, UDP, segment, hop_limit=ctx.ttl))
        return build_ipv4(IPv4Header(ctx.source_address, address, UDP, segment, ttl=ctx.ttl, ident=ident))

    # --- receive path -------------------------------------------------------
    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        try:
            return self._match(datagram, ctx)
        except (PacketError, ValueError, IndexError):
            return None

    def _match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        parsed = parse_datagram(datagram)
        if parsed.dst != canonical_address(ctx.source_address):
            return None
        src, cookie = self._per_scan(ctx)
        transport = parsed.transport
        if isinstance(transport, UDPDatagram):
            found = self._probed_port(cookie, src, pack_address(parsed.src), transport)
            if found is None:
                return None
            port, attempt = found
            reply = Reply(ReplyKind.UDP, parsed.src, parsed.ttl, attempt=attempt, family=parsed.family)
            return ProbeKey(parsed.src, port, "udp"), reply
        if isinstance(transport, (icmp.ICMPMessage, icmpv6.ICMPv6Message)) and transport.quoted is not None:
            kind = acted_on_icmp(parsed.family, transport.type, transport.code)
            if kind is None:
                return None
            quoted = parse_quoted(transport.quoted)
            if quoted.protocol != UDP or pack_address(quoted.src) != src:
                return None
            values = cookie.values(src, pack_address(quoted.dst), UDP, quoted.dport)
            if not _ours(cookie, values, quoted.sport):
                return None
            target = canonical_address(quoted.dst)
            reply = Reply(kind, parsed.src, parsed.ttl, icmp_type=transport.type, icmp_code=transport.code,
                          attempt=cookie.attempt_from_port(values, quoted.sport), family=parsed.family,
                          third_party=parsed.src != target)
            return ProbeKey(target, quoted.dport, "udp"), reply
        return None

    def _probed_port(self, cookie: ReplyCookie, src: bytes, peer: bytes,
                     datagram: UDPDatagram) -> tuple[int, int | None] | None:
        """(probed port, attempt) a UDP reply answers; None when it answers no probe of ours.

        First the reply's own source port; then the ports whose protocols
        answer from a fresh port (TFTP), which our destination port vouches for.
        """
        for port in (datagram.sport, *self.payloads.other_port_services):
            values = cookie.values(src, peer, UDP, port)
            if not _ours(cookie, values, datagram.dport):
                continue
            if not self.payloads.echo_matches(port, datagram.payload, values.seq_base):
                return None
            return port, cookie.attempt_from_port(values, datagram.dport)
        return None

    def classify(self, reply: Reply | None) -> Verdict:
        return classify_udp(reply, silent=self.silent)
