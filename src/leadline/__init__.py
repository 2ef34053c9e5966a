"""leadline: a network mapper with nmap's flags, layouts and XML.

>>> report = leadline.scan("198.18.1.10", "-sT -p 1-1024")   # doctest: +SKIP
>>> [p.port for p in report.hosts[0].ports if p.state is leadline.PortState.OPEN]   # doctest: +SKIP

The public names load on first use (PEP 562): ``import leadline`` and
every command that needs no scan (``leadline local``) skip the 40 ms the
scan machinery takes to import.  ``leadline.scan`` is the real function,
so ``help(leadline.scan)`` shows its signature, and ``from leadline
import scan, ScanConfig`` works as with eager imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from leadline._version import __version__

if TYPE_CHECKING:
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

# Where each public name lives; every name of __all__ but __version__.
_HOMES = {
    "scan": "leadline.api",
    "scan_async": "leadline.api",
    "ScanConfig": "leadline.config",
    "ScanType": "leadline.config",
    "Timing": "leadline.config",
    "LeadlineError": "leadline.errors",
    "PortSpecError": "leadline.errors",
    "TargetSpecError": "leadline.errors",
    "UsageError": "leadline.errors",
    "HostResult": "leadline.model",
    "HostStatus": "leadline.model",
    "PortResult": "leadline.model",
    "PortState": "leadline.model",
    "Reason": "leadline.model",
    "RunInfo": "leadline.model",
    "RunStats": "leadline.model",
    "ScanReport": "leadline.model",
}


def __getattr__(name: str) -> object:
    """Import a public name's module on first use, then keep the name here (later lookups are plain)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'leadline' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
