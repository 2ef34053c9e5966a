"""What every phase is handed: the plan, the engines, the sink and the run's controls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leadline.output.base import Sink
from leadline.output.formatting import named_address, scanning_text
from leadline.pipeline.engines import Engines
from leadline.pipeline.plan import ScanPlan
from leadline.services import ServiceTable

if TYPE_CHECKING:
    from leadline.core.evidence import PacketEvidence
    from leadline.pipeline.record import HostRecord

__all__ = ["ScanContext", "TaskProgress", "scanning_hosts"]

Warn = Callable[[str], None]
_PROGRESS_INTERVAL = 1.0  # seconds between progress events of one task


@dataclass
class ScanContext:
    plan: ScanPlan
    engines: Engines
    sink: Sink
    stop: threading.Event
    warn: Warn
    services: ServiceTable
    evidence: PacketEvidence | None = None
    port_key: int = 0  # orders ports the same way for every group of the scan
    trace: Callable[[str], None] | None = None  # debugging and --version-trace lines, where nmap prints them

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()


class TaskProgress:
    """A task's share done and time left, told to the sink at most once a second."""

    def __init__(self, sink: Sink, task: str, total: int) -> None:
        self.sink = sink
        self.task = task
        self.total = max(total, 1)
        self.t0 = time.monotonic()
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not done or now - self.last < _PROGRESS_INTERVAL:
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-6)
        remaining = (self.total - done) / rate if rate > 0 else 0.0
        wall = time.time()
        self.sink.task_progress(self.task, wall, 100.0 * done / self.total, remaining, wall + remaining)


def scanning_hosts(records: Sequence[HostRecord], ports: int) -> str:
    """nmap's -v line for a task: "Scanning 198.18.1.10 [1000 ports]"."""
    return scanning_text([named_address(r.target.hostname, r.address) for r in records], ports)
