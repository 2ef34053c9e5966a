"""leadline: a network mapper with nmap's flags, layouts and XML.

>>> report = leadline.scan("198.18.1.10", "-sT -p 1-1024")   # doctest: +SKIP
>>> [p.port for p in report.hosts[0].ports if p.state is leadline.PortState.OPEN]   # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from leadline.config import ScanConfig, ScanType, Timing  # noqa: E402
from leadline.errors import LeadlineError, PortSpecError, TargetSpecError, UsageError  # noqa: E402
from leadline.model import (  # noqa: E402
    HostResult,
    HostStatus,
    PortResult,
    PortState,
    Reason,
    RunInfo,
    RunStats,
    ScanReport,
)


def scan(*args, **kwargs):  # type: ignore[no-untyped-def]
    from leadline.api import scan as _scan

    return _scan(*args, **kwargs)


async def scan_async(*args, **kwargs):  # type: ignore[no-untyped-def]
    from leadline.api import scan_async as _scan_async

    return await _scan_async(*args, **kwargs)


scan.__doc__ = "Scan targets with nmap-style options; returns a ScanReport. See leadline.api.scan."
scan_async.__doc__ = "Async variant of scan. See leadline.api.scan_async."

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
