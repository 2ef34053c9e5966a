"""XMAS scan (-sX): FIN, PSH and URG.

RFC 9293 makes a closed port answer such a segment with RST and an open
one stay silent, so: RST -> closed (reset); silence -> open|filtered
(no-response); ICMP unreachable -> filtered with the code's reason.
"""

from __future__ import annotations

from typing import ClassVar

from leadline.core.packet.tcp import TCPFlag
from leadline.core.probes.base import Reply, Verdict
from leadline.core.probes.tcpflags import TcpFlagScan, classify_rfc_silence

__all__ = ["XmasScan"]


class XmasScan(TcpFlagScan):
    name: ClassVar[str] = "xmas"
    default_flags: ClassVar[int] = TCPFlag.FIN | TCPFlag.PSH | TCPFlag.URG

    def classify(self, reply: Reply | None) -> Verdict:
        return classify_rfc_silence(reply)
