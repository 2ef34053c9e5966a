"""Window scan (-sW): an ACK scan that reads the RST's window field.

Some stacks send a non-zero window in the RST from an open port and
zero from a closed one: RST with window > 0 -> open (reset); window 0
-> closed (reset); silence or ICMP unreachable -> filtered.
"""

from __future__ import annotations

from typing import ClassVar

from leadline.core.packet.tcp import TCPFlag
from leadline.core.probes.base import Reply, ReplyKind, Verdict
from leadline.core.probes.tcpflags import TcpFlagScan, icmp_verdict
from leadline.model import PortState, Reason

__all__ = ["WindowScan"]


class WindowScan(TcpFlagScan):
    name: ClassVar[str] = "window"
    default_flags: ClassVar[int] = TCPFlag.ACK

    def classify(self, reply: Reply | None) -> Verdict:
        if reply is None:
            return Verdict(PortState.FILTERED, Reason.NO_RESPONSE)
        if reply.kind is ReplyKind.TCP and (reply.tcp_flags or 0) & TCPFlag.RST:
            state = PortState.OPEN if reply.tcp_window else PortState.CLOSED
            return Verdict(state, Reason.RESET, reply.ttl)
        return icmp_verdict(reply) or Verdict(PortState.FILTERED, Reason.UNKNOWN_RESPONSE, reply.ttl)
