"""Reverse DNS: the PTR names of hosts, resolved in parallel per group, as nmap does by default for hosts that are up."""

from __future__ import annotations

import time
from collections.abc import Sequence

from leadline.pipeline.context import ScanContext
from leadline.pipeline.record import HostRecord

__all__ = ["resolve_names"]


def resolve_names(records: Sequence[HostRecord], ctx: ScanContext) -> None:
    """Set each record's PTR name (none with -n)."""
    if ctx.plan.config.dns == "never" or not records:
        return
    addresses = list(dict.fromkeys(r.address for r in records))
    task = "Parallel DNS resolution of %d host%s." % (len(addresses), "s" if len(addresses) != 1 else "")
    ctx.sink.task_begin(task, time.time())
    names = ctx.engines.reverse_names(addresses)
    ctx.sink.task_end(task, time.time())
    for r in records:
        r.ptr = names.get(r.address)
