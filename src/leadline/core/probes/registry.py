"""Which module runs a scan type: one table, not a chain of ifs.

``--scanflags`` changes the flags sent; the scan type keeps deciding how
replies are read (nmap(1): "the scan type tells Nmap how to interpret
responses"), and with no TCP scan type given the reading is SYN scan's.
Connect and UDP scans are not raw TCP flag scans and are not built
here, so asking for them is a usage error.
"""

from __future__ import annotations

from leadline.config import ScanType
from leadline.core.probes.ack import AckScan
from leadline.core.probes.base import ProbeModule
from leadline.core.probes.custom import CustomScan
from leadline.core.probes.fin import FinScan
from leadline.core.probes.maimon import MaimonScan
from leadline.core.probes.null import NullScan
from leadline.core.probes.syn import SynScan
from leadline.core.probes.tcpflags import TcpFlagScan
from leadline.core.probes.window import WindowScan
from leadline.core.probes.xmas import XmasScan
from leadline.errors import UsageError

__all__ = ["module_for", "TCP_FLAG_SCANS"]

TCP_FLAG_SCANS: dict[ScanType, type[TcpFlagScan]] = {
    ScanType.SYN: SynScan,
    ScanType.FIN: FinScan,
    ScanType.NULL: NullScan,
    ScanType.XMAS: XmasScan,
    ScanType.ACK: AckScan,
    ScanType.WINDOW: WindowScan,
    ScanType.MAIMON: MaimonScan,
    ScanType.CUSTOM: CustomScan,
}


def module_for(scan_type: ScanType, scanflags: int | None) -> ProbeModule:
    """A fresh module for one raw TCP scan; ``scanflags`` (0..255) overrides the flags it sends."""
    module = TCP_FLAG_SCANS.get(scan_type)
    if module is None:
        raise UsageError(f"scan type {scan_type.value!r} is not a raw TCP flag scan")
    if scanflags is not None and not 0 <= scanflags <= 0xFF:
        raise UsageError(f"--scanflags value {scanflags} is outside 0-255")
    return module(scanflags)
