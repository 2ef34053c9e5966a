"""What every raw TCP port scan shares: building a flag probe and validating replies.

The scans differ only in the flags they send and in how a reply maps to
a port state; both are class attributes of the small per-scan modules
(``syn.py``, ``fin.py``, ...).  Invariants:

* ``build`` stamps a prebuilt template (see ``packet/template.py``), so
  per-probe cost is one keyed hash and a patch;
* ``match`` returns None, never raises, for anything that is not an
  answer to one of our probes: not addressed to us, wrong cookie, wrong
  ports, truncated, or an ICMP code nmap does not act on.
* ``match`` reads the common reply, a TCP segment in an IPv4 datagram
  with no IP options, straight from its fixed offsets
  (``_match_ipv4_tcp``) and builds no parsed objects; it makes the very
  checks the full parser would and gives the same answer (tests hold
  the two to agreement on tables and random packets).  Everything else
  (ICMP errors, IPv6, IP options) goes through ``parse_datagram``.

How a reply proves it answers us (RFC 9293 §3.10.7.1, as Linux does it):
if our probe had ACK set, an RST carries seq = our ack; otherwise the
reply has ACK set and ack = our seq + SYN + FIN (+ data, none here).
ICMP errors quote our TCP header: its ports and sequence number.

Which TCP replies count as answers is the scan's choice
(``answer_flags``), as in nmap: a SYN scan heeds SYN (SYN/ACK, or a
bare SYN) and RST; every other scan heeds RST alone.  Anything else,
e.g. a SYN/ACK to a FIN scan run with ``--scanflags SYN``, is ignored
like silence, so the port ends as the scan's no-response state and
results stay comparable with nmap's.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import ClassVar, TypeVar

from leadline.core.cookie import CookieValues, ReplyCookie
from leadline.core.packet.checksum import PacketError
from leadline.core.packet.icmp import ICMPMessage
from leadline.core.packet.icmpv6 import ICMPv6Message
from leadline.core.packet.parse import QuotedHeader, pack_address, parse_datagram, parse_quoted
from leadline.core.packet.ipv4 import format_ipv4
from leadline.core.packet.ipv6 import format_ipv6
from leadline.core.packet.tcp import TCPFlag, TCPSegment, mss
from leadline.core.packet.template import TcpProbeStamp, TcpProbeTemplate
from leadline.core.probes.base import Probe, ProbeContext, ProbeKey, Reply, ReplyKind, Verdict
from leadline.model import PortState, Reason

__all__ = [
    "TcpFlagScan",
    "ICMP4_UNREACHABLE_REASONS",
    "ICMP6_UNREACHABLE_REASONS",
    "icmp_verdict",
    "canonical_address",
]

TCP = 6
NOT_OURS = -1  # sentinel attempt: the reply failed validation
PROBE_WINDOW = 1024  # nmap's raw probes advertise a 1024-byte window
SYN_OPTIONS = (mss(1460),)  # nmap's SYN probes carry MSS 1460 and nothing else

# nmap's reading of ICMP destination unreachable codes for a TCP probe: all filtered.
ICMP4_UNREACHABLE_REASONS: dict[int, Reason] = {
    0: Reason.NET_UNREACH,
    1: Reason.HOST_UNREACH,
    2: Reason.PROTO_UNREACH,
    3: Reason.PORT_UNREACH,
    9: Reason.NET_PROHIBITED,
    10: Reason.HOST_PROHIBITED,
    13: Reason.ADMIN_PROHIBITED,
}
# ICMPv6 type 1 codes (RFC 4443 s3.1), with nmap's reason strings.  Code 5
# (source address failed policy) has no string of its own; it is a policy
# refusal, so admin-prohibited.
ICMP6_UNREACHABLE_REASONS: dict[int, Reason] = {
    0: Reason.NO_ROUTE,
    1: Reason.ADMIN_PROHIBITED,
    2: Reason.BEYOND_SCOPE,
    3: Reason.HOST_UNREACH,
    4: Reason.PORT_UNREACH,
    5: Reason.ADMIN_PROHIBITED,
    6: Reason.REJECT_ROUTE,
}
# Plain ints: IntFlag arithmetic costs an enum construction per operation, on every packet.
_SYN, _ACK, _RST, _FIN = int(TCPFlag.SYN), int(TCPFlag.ACK), int(TCPFlag.RST), int(TCPFlag.FIN)
# An IPv4 header without options and the TCP header's fixed part, the fields match reads:
# version/IHL, total length, flags/fragment offset, TTL, protocol, source, destination,
# then ports, sequence, acknowledgment, data offset, flags, window.
_IPV4_TCP = struct.Struct("!BxHxxHBBxx4s4sHHIIBBH")
_FULL_PARSE = object()  # _match_ipv4_tcp's answer when the datagram is not its kind
_ICMP4_ERRORS = {3: ReplyKind.ICMP_UNREACHABLE, 11: ReplyKind.ICMP_TIME_EXCEEDED}
_ICMP6_ERRORS = {1: ReplyKind.ICMP_UNREACHABLE, 3: ReplyKind.ICMP_TIME_EXCEEDED}


_K = TypeVar("_K")
_V = TypeVar("_V")


class _BoundedCache(dict[_K, _V]):
    """A dict that empties itself when full: memory stays bounded over a stream of hosts."""

    _LIMIT = 65536

    def __setitem__(self, key: _K, value: _V) -> None:
        if len(self) >= self._LIMIT:
            self.clear()
        super().__setitem__(key, value)


@lru_cache(maxsize=256)
def canonical_address(address: str) -> str:
    """One spelling per address, so "2001:DB8:0::1" and "2001:db8::1" compare equal."""
    raw = pack_address(address)
    return format_ipv6(raw) if len(raw) == 16 else address


def icmp_verdict(reply: Reply) -> Verdict | None:
    """filtered + nmap's reason for an ICMP error reply; None if the reply is no ICMP error."""
    if reply.kind is ReplyKind.ICMP_TIME_EXCEEDED:
        return Verdict(PortState.FILTERED, Reason.TIME_EXCEEDED, reply.ttl)
    if reply.kind is ReplyKind.ICMP_UNREACHABLE:
        table = ICMP6_UNREACHABLE_REASONS if reply.family == 6 else ICMP4_UNREACHABLE_REASONS
        return Verdict(PortState.FILTERED, table.get(reply.icmp_code or 0, Reason.HOST_UNREACH), reply.ttl)
    return None


def acted_on_icmp(family: int, icmp_type: int, code: int) -> ReplyKind | None:
    """The reply kind for an ICMP error nmap acts on; None for codes it ignores (e.g. frag needed)."""
    kind = (_ICMP6_ERRORS if family == 6 else _ICMP4_ERRORS).get(icmp_type)
    if kind is ReplyKind.ICMP_UNREACHABLE:
        table = ICMP6_UNREACHABLE_REASONS if family == 6 else ICMP4_UNREACHABLE_REASONS
        if code not in table:
            return None
    return kind


class TcpFlagScan:
    """Base of the raw TCP scans; subclasses set ``name``, ``default_flags`` and ``classify``."""

    name: ClassVar[str] = "tcp"
    ip_protocol: ClassVar[int] = TCP
    capture_filter: ClassVar[str] = "tcp or icmp or icmp6"
    default_flags: ClassVar[int] = TCPFlag.SYN
    answer_flags: ClassVar[int] = TCPFlag.RST  # a TCP reply with none of these is ignored

    def __init__(self, flags: int | None = None) -> None:
        self.flags = int(self.default_flags if flags is None else flags & 0xFF)
        self._answer_flags = int(self.answer_flags)
        self._templates: dict[tuple[str, int, int], TcpProbeTemplate] = {}
        self._scan: tuple[ProbeContext, bytes, ReplyCookie, int] | None = None
        # Per destination, for the scan's context: packed address, canonical spelling and a
        # stamp with the address in place, so a host's probes only patch ports and numbers.
        self._stamps: _BoundedCache[str, tuple[bytes, str, TcpProbeStamp]] = _BoundedCache()
        # Address spellings met on every reply; entries are 4 or 16 bytes and a string.
        self._dotted: _BoundedCache[bytes, str] = _BoundedCache()

    def _per_scan(self, ctx: ProbeContext) -> tuple[bytes, ReplyCookie, int]:
        """Our packed address, the cookie and the flags sent: worked out once per context, not per packet."""
        scan = self._scan
        if scan is None or scan[0] is not ctx:
            scan = (ctx, pack_address(ctx.source_address), ReplyCookie.for_scan(ctx.secret, ctx.source_port), self.flags_for(ctx))
            self._scan = scan
            self._stamps.clear()
        return scan[1], scan[2], scan[3]

    def flags_for(self, ctx: ProbeContext) -> int:
        """The flags sent: ``ctx.tcp_flags`` (--scanflags) wins over the module's own."""
        return self.flags if ctx.tcp_flags is None else int(ctx.tcp_flags) & 0xFF

    def _template(self, ctx: ProbeContext, flags: int) -> TcpProbeTemplate:
        key = (ctx.source_address, flags, ctx.ttl)
        template = self._templates.get(key)
        if template is None:
            options = SYN_OPTIONS if flags & _SYN else ()
            template = TcpProbeTemplate(
                ctx.source_address, flags=flags, window=PROBE_WINDOW, options=options, ttl=ctx.ttl, ip_flags=0
            )
            self._templates[key] = template
        return template

    def build(self, address: str, port: int, attempt: int, ctx: ProbeContext) -> Probe:
        src, cookie, flags = self._per_scan(ctx)
        stamped = self._stamps.get(address)
        if stamped is None:
            dst = pack_address(address)
            stamped = self._stamps[address] = (dst, canonical_address(address), self._template(ctx, flags).for_destination(dst))
        dst, canonical, stamp = stamped
        values = cookie.tcp_values(src, dst, port)
        seq = cookie.sequence(values, attempt)
        ack = seq if flags & _ACK else 0
        packet = stamp.render(cookie.source_port(values, attempt), port, seq, ack, values.ip_id)
        return Probe(ProbeKey(canonical, port, "tcp"), packet, attempt)

    # --- receive path -------------------------------------------------------
    def match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        try:
            fast = self._match_ipv4_tcp(datagram, ctx)
            if fast is not _FULL_PARSE:
                return fast  # type: ignore[return-value]
            return self._match(datagram, ctx)
        except (PacketError, ValueError):
            return None

    def _match_ipv4_tcp(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None | object:
        """``_match`` for a TCP segment in an option-less IPv4 datagram, from fixed offsets.

        ``_FULL_PARSE`` for any other datagram.  The checks are the full
        parser's, in its terms: total length within the bytes and room
        for a TCP header, a data offset that fits, no fragment offset.
        """
        if len(datagram) < 40 or datagram[0] != 0x45 or datagram[9] != TCP:
            return _FULL_PARSE
        _, total, fragment, ttl, _, src, dst, sport, dport, seq, ack, offset, flags, window = _IPV4_TCP.unpack_from(datagram)
        if total > len(datagram) or total < 40 or fragment & 0x1FFF or offset >> 4 < 5 or (offset >> 4) * 4 > total - 20:
            return None
        our_address, cookie, flags_sent = self._per_scan(ctx)
        if dst != our_address or not flags & self._answer_flags:
            return None
        values = cookie.tcp_values(our_address, src, sport)
        attempt = _attempt_from_tcp(flags_sent, flags, seq, ack, dport, values, cookie)
        if attempt == NOT_OURS:
            return None
        address = self._dotted.get(src)
        if address is None:
            address = self._dotted[src] = format_ipv4(src)
        # Positional: a named tuple built from keywords costs twice as much, once per reply.
        # (kind, src, ttl, tcp_flags, tcp_window, icmp_type, icmp_code, mac, attempt, family)
        return ProbeKey(address, sport, "tcp"), Reply(ReplyKind.TCP, address, ttl, flags, window, None, None, None, attempt, 4)

    def _match(self, datagram: bytes, ctx: ProbeContext) -> tuple[ProbeKey, Reply] | None:
        parsed = parse_datagram(datagram)
        if parsed.dst != canonical_address(ctx.source_address):
            return None
        transport = parsed.transport
        src_raw, cookie, flags_sent = self._per_scan(ctx)
        if isinstance(transport, TCPSegment):
            if not transport.flags & self._answer_flags:
                return None
            values = cookie.tcp_values(src_raw, pack_address(parsed.src), transport.sport)
            attempt = _attempt_from_tcp(
                flags_sent, transport.flags, transport.seq, transport.ack, transport.dport, values, cookie
            )
            if attempt == NOT_OURS:
                return None
            key = ProbeKey(parsed.src, transport.sport, "tcp")
            reply = Reply(
                ReplyKind.TCP,
                parsed.src,
                parsed.ttl,
                tcp_flags=transport.flags,
                tcp_window=transport.window,
                attempt=attempt,
                family=parsed.family,
            )
            return key, reply
        if isinstance(transport, (ICMPMessage, ICMPv6Message)) and transport.quoted is not None:
            kind = acted_on_icmp(parsed.family, transport.type, transport.code)
            if kind is None:
                return None
            quoted = parse_quoted(transport.quoted)
            attempt = self._attempt_from_quote(quoted, cookie, ctx, src_raw)
            if attempt is None:
                return None
            key = ProbeKey(canonical_address(quoted.dst), quoted.dport, "tcp")
            reply = Reply(
                kind,
                parsed.src,
                parsed.ttl,
                icmp_type=transport.type,
                icmp_code=transport.code,
                attempt=attempt,
                family=parsed.family,
            )
            return key, reply
        return None

    def _attempt_from_quote(self, quoted: QuotedHeader, cookie: ReplyCookie, ctx: ProbeContext, src_raw: bytes) -> int | None:
        if quoted.protocol != TCP or quoted.seq is None:
            return None
        if pack_address(quoted.src) != src_raw:
            return None
        values = cookie.tcp_values(src_raw, pack_address(quoted.dst), quoted.dport)
        attempt = cookie.attempt_from_sequence(values, quoted.seq)
        if attempt is None or quoted.sport != cookie.source_port(values, attempt):
            return None
        return attempt

    def classify(self, reply: Reply | None) -> Verdict:
        raise NotImplementedError


def _attempt_from_tcp(
    flags_sent: int, reply_flags: int, seq: int, ack: int, dport: int, values: CookieValues, cookie: ReplyCookie
) -> int | None:
    """The attempt a TCP reply answers (None: unknown); ``NOT_OURS`` if it answers none of ours."""
    if flags_sent & _ACK and reply_flags & _RST:
        echoed: int | None = seq
    elif reply_flags & _ACK:
        echoed = ack - bool(flags_sent & _SYN) - bool(flags_sent & _FIN)
    else:
        echoed = None
    if echoed is None:
        # A bare SYN back (split handshake) echoes nothing; only the port can vouch for it.
        if flags_sent & _SYN and reply_flags & _SYN and cookie.port_is_ours(values, dport):
            return cookie.attempt_from_port(values, dport)
        return NOT_OURS
    attempt = cookie.attempt_from_sequence(values, echoed & 0xFFFFFFFF)
    if attempt is None or dport != cookie.source_port(values, attempt):
        return NOT_OURS
    return attempt


def classify_rfc_silence(reply: Reply | None) -> Verdict:
    """FIN / NULL / Xmas / Maimon: RST -> closed, silence -> open|filtered, ICMP -> filtered.

    Only RSTs reach here (``answer_flags``); other TCP replies were ignored.
    """
    if reply is None:
        return Verdict(PortState.OPEN_FILTERED, Reason.NO_RESPONSE)
    if reply.kind is ReplyKind.TCP:
        if (reply.tcp_flags or 0) & TCPFlag.RST:
            return Verdict(PortState.CLOSED, Reason.RESET, reply.ttl)
        return Verdict(PortState.OPEN_FILTERED, Reason.UNKNOWN_RESPONSE, reply.ttl)
    return icmp_verdict(reply) or Verdict(PortState.FILTERED, Reason.UNKNOWN_RESPONSE, reply.ttl)
