"""ACK scan (-sA): maps firewall rules, not open ports.

Open and closed ports both answer a bare ACK with RST, so an RST only
shows the probe got through: RST -> unfiltered (reset); silence or an
ICMP unreachable -> filtered.
"""

from __future__ import annotations

from typing import ClassVar

from leadline.core.packet.tcp import TCPFlag
from leadline.core.probes.base import Reply, ReplyKind, Verdict
from leadline.core.probes.tcpflags import TcpFlagScan, icmp_verdict
from leadline.model import PortState, Reason

__all__ = ["AckScan"]


class AckScan(TcpFlagScan):
    name: ClassVar[str] = "ack"
    default_flags: ClassVar[int] = TCPFlag.ACK

    def classify(self, reply: Reply | None) -> Verdict:
        if reply is None:
            return Verdict(PortState.FILTERED, Reason.NO_RESPONSE)
        if reply.kind is ReplyKind.TCP and (reply.tcp_flags or 0) & TCPFlag.RST:
            return Verdict(PortState.UNFILTERED, Reason.RESET, reply.ttl)
        return icmp_verdict(reply) or Verdict(PortState.FILTERED, Reason.UNKNOWN_RESPONSE, reply.ttl)
