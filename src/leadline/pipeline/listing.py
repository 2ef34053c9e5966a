"""-sL: every target listed, nothing sent.

A list scan of a /8 writes sixteen million lines, so its hosts skip the
phases and records altogether: with -n, addresses that carry no name go
to the sinks in batches (``Sink.listed``); otherwise hosts are named per
group in one reverse-DNS round and written one by one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

from leadline.core.targets import Target
from leadline.model import HostStatus, Reason
from leadline.pipeline.context import ScanContext
from leadline.pipeline.emit import Emitter
from leadline.pipeline.names import resolve_names
from leadline.pipeline.record import HostRecord

__all__ = ["list_targets"]

_BATCH = 4096
_NAMED_GROUP = 1024


def list_targets(targets: Iterator[Target], ctx: ScanContext, emitter: Emitter) -> None:
    if ctx.plan.config.dns != "never":
        while not ctx.stopped:
            group = [HostRecord(t, HostStatus.UNKNOWN, Reason.USER_SET) for t in itertools.islice(targets, _NAMED_GROUP)]
            if not group:
                return
            started = time.time()
            resolve_names(group, ctx)
            for record in group:
                emitter.emit(record, started)
        return
    batch: list[str] = []
    for target in targets:
        if target.hostname is None:
            batch.append(target.address)
            if len(batch) < _BATCH:
                continue
            emitter.listed(batch)
            batch = []
        else:
            emitter.listed(batch)
            batch = []
            emitter.emit(HostRecord(target, HostStatus.UNKNOWN, Reason.USER_SET), time.time())
        if ctx.stopped:
            return
    emitter.listed(batch)
