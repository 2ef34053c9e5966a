"""NULL scan (-sN): no flags at all.

RFC 9293 makes a closed port answer such a segment with RST and an open
one stay silent, so: RST -> closed (reset); silence -> open|filtered
(no-response); ICMP unreachable -> filtered with the code's reason.
"""

from __future__ import annotations

from typing import ClassVar

from leadline.core.probes.base import Reply, Verdict
from leadline.core.probes.tcpflags import TcpFlagScan, classify_rfc_silence

__all__ = ["NullScan"]


class NullScan(TcpFlagScan):
    name: ClassVar[str] = "null"
    default_flags: ClassVar[int] = 0

    def classify(self, reply: Reply | None) -> Verdict:
        return classify_rfc_silence(reply)
