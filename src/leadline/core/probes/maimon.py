"""Maimon scan (-sM): FIN/ACK probes.

RFC 9293 says any such probe draws an RST, open port or not, but many
BSD-derived stacks drop it when the port is open (Uriel Maimon, Phrack
49).  So, like a FIN scan: RST -> closed (reset); silence ->
open|filtered; ICMP unreachable -> filtered.
"""

from __future__ import annotations

from typing import ClassVar

from leadline.core.packet.tcp import TCPFlag
from leadline.core.probes.base import Reply, Verdict
from leadline.core.probes.tcpflags import TcpFlagScan, classify_rfc_silence

__all__ = ["MaimonScan"]


class MaimonScan(TcpFlagScan):
    name: ClassVar[str] = "maimon"
    default_flags: ClassVar[int] = TCPFlag.FIN | TCPFlag.ACK

    def classify(self, reply: Reply | None) -> Verdict:
        return classify_rfc_silence(reply)
