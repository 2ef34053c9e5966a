"""leadline: a network mapper with nmap's flags, layouts and XML.

>>> report = leadline.scan("198.18.1.10", "-sT -p 1-1024")   # doctest: +SKIP
>>> [p.port for p in report.hosts[0].ports if p.state is leadline.PortState.OPEN]   # doctest: +SKIP
"""

from __future__ import annotations

from leadline._version import __version__
from leadline.api import scan, scan_async
from leadline.config import ScanConfig, ScanType, Timing
from leadline.errors import LeadlineError, PortSpecError, TargetSpecError, UsageError
from leadline.model import (
    HostResult,
    HostStatus,
    PortResult,
    PortState,
    Reason,
    RunInfo,
    RunStats,
    ScanReport,
)


__all__ = [
    "HostResult",
    "HostStatus",
    "LeadlineError",
    "PortResult",
    "PortSpecError",
    "PortState",
    "Reason",
    "RunInfo",
    "RunStats",
    "ScanConfig",
    "ScanReport",
    "ScanType",
    "TargetSpecError",
    "Timing",
    "UsageError",
    "__version__",
    "scan",
    "scan_async",
]
