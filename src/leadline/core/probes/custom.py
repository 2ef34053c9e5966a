"""Custom-flag scan (--scanflags without another TCP scan type).

The flags are whatever the user asked for; as nmap does, replies are
read with SYN scan's table: SYN/ACK -> open, RST -> closed, silence or
ICMP unreachable -> filtered.  (--scanflags with -sF, -sA, ... keeps
that scan's table instead; see ``registry.module_for``.)
"""

from __future__ import annotations

from typing import ClassVar

from leadline.core.packet.tcp import TCPFlag
from leadline.core.probes.base import Reply, Verdict
from leadline.core.probes.syn import classify_like_syn
from leadline.core.probes.tcpflags import TcpFlagScan

__all__ = ["CustomScan"]


class CustomScan(TcpFlagScan):
    name: ClassVar[str] = "syn"  # nmap reports a --scanflags scan under its base type, SYN by default
    default_flags: ClassVar[int] = TCPFlag.SYN
    answer_flags: ClassVar[int] = TCPFlag.SYN | TCPFlag.RST

    def classify(self, reply: Reply | None) -> Verdict:
        return classify_like_syn(reply)
