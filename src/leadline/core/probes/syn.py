"""SYN scan (-sS): half-open probes, nmap's classification.

SYN/ACK -> open (syn-ack); a bare SYN (split handshake) -> open
(split-handshake-syn);
RST -> closed (reset); ICMP unreachable / time exceeded -> filtered
with the code's reason; silence -> filtered (no-response).
"""

from __future__ import annotations

from typing import ClassVar

from leadline.core.packet.tcp import TCPFlag
from leadline.core.probes.base import Reply, ReplyKind, Verdict
from leadline.core.probes.tcpflags import TcpFlagScan, icmp_verdict
from leadline.model import PortState, Reason

__all__ = ["SynScan", "classify_like_syn"]

# Plain ints: IntFlag arithmetic costs an enum construction per operation, on every reply.
_SYN, _RST, _ACK = int(TCPFlag.SYN), int(TCPFlag.RST), int(TCPFlag.ACK)


# The verdict of an RST, per TTL: a scan's closed ports share a handful of them, so one object each.
_RESET_VERDICTS: dict[int, Verdict] = {}


def classify_like_syn(reply: Reply | None) -> Verdict:
    if reply is None:
        return Verdict(PortState.FILTERED, Reason.NO_RESPONSE)
    if reply.kind is ReplyKind.TCP:
        flags = reply.tcp_flags or 0
        if flags & _RST:
            ttl = reply.ttl
            verdict = _RESET_VERDICTS.get(ttl)
            if verdict is None:
                verdict = _RESET_VERDICTS[ttl] = Verdict(PortState.CLOSED, Reason.RESET, ttl)
            return verdict
        if flags & _SYN:
            reason = Reason.SYN_ACK if flags & _ACK else Reason.SPLIT_HANDSHAKE_SYN
            return Verdict(PortState.OPEN, reason, reply.ttl)
    return icmp_verdict(reply) or Verdict(PortState.FILTERED, Reason.UNKNOWN_RESPONSE, reply.ttl)


class SynScan(TcpFlagScan):
    name: ClassVar[str] = "syn"
    default_flags: ClassVar[int] = TCPFlag.SYN
    answer_flags: ClassVar[int] = TCPFlag.SYN | TCPFlag.RST

    def classify(self, reply: Reply | None) -> Verdict:
        return classify_like_syn(reply)
