"""-sn as root over IPv4: the whole target stream through one discovery engine run.

Host groups would stall a sweep at every group's slowest host, so a
ping sweep streams instead: targets are read as the engine asks for
them and each host is written as soon as it is decided, in chunks that
share one reverse-DNS round.  Memory is bounded by the probes in flight.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

from leadline.core.targets import Target
from leadline.pipeline.context import ScanContext
from leadline.pipeline.emit import Emitter
from leadline.pipeline.names import resolve_names
from leadline.pipeline.record import HostRecord

__all__ = ["ping_sweep"]

_CHUNK = 1024  # hosts written per reverse-DNS round


def ping_sweep(targets: Iterator[Target], ctx: ScanContext, emitter: Emitter) -> None:
    plan = ctx.plan
    waiting: dict[str, list[Target]] = {}
    # The stream is not read ahead to name the task: the first target speaks for the sweep.
    first = next(targets, None)
    stream = itertools.chain([first], targets) if first is not None else iter(())

    def addresses() -> Iterator[str]:
        for t in stream:
            waiting.setdefault(t.address, []).append(t)
            yield t.address

    neighbours = first is not None and plan.arp_allowed and ctx.engines.arp_reaches(first.address)
    task = "ARP Ping Scan" if neighbours else "Ping Scan"
    ctx.sink.task_begin(task, time.time())
    chunk: list[HostRecord] = []
    started = time.time()
    total = 0
    results = ctx.engines.raw_discover(addresses(), plan.config.discovery_probes, plan.config.timing,
                                       arp=plan.arp_allowed, stop=ctx.stop, evidence=ctx.evidence)
    for result in results:
        for t in waiting.pop(result.address, []):
            record = HostRecord(t)
            record.mark(result.up, result.reason, result.latency, ttl=result.ttl, mac=result.mac)
            chunk.append(record)
            total += 1
        if plan.config.dns == "never" or len(chunk) >= _CHUNK:
            _write(chunk, started, ctx, emitter)
            chunk, started = [], time.time()
    _write(chunk, started, ctx, emitter)
    emitter.flush()
    ctx.sink.task_end(task, time.time(), f"{total} total hosts")


def _write(chunk: list[HostRecord], started: float, ctx: ScanContext, emitter: Emitter) -> None:
    if not chunk:
        return
    always = ctx.plan.config.dns == "always"
    resolve_names([r for r in chunk if r.up or always], ctx)
    for record in chunk:
        emitter.emit(record, started)
