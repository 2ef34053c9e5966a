"""The contract of a pipeline phase.

A scan is targets cut into host groups, then, per group: discovery, one
port-scan phase per scan type, the post-scan phases (service and version
detection, scripts, OS detection, traceroute), reverse names, and the
sinks.  Each phase is a small unit:

* ``wanted(plan)`` says whether it runs at all in this scan;
* ``run(group, ctx)`` reads the records of the group's hosts that are up
  (or, for discovery, all of them) and adds to them what it learned.

Invariants: a phase never writes a host to the sinks (the pipeline does,
once, after the last phase); it checks ``ctx.stopped`` between units of
work so an interrupt ends it promptly; it announces its work with
``sink.task_begin``/``task_end`` under nmap's task name, as nmap's
"Initiating …"/"Completed …" lines do; it reaches the network only
through ``ctx.engines``.
"""

from __future__ import annotations

from typing import Protocol

from leadline.pipeline.context import ScanContext
from leadline.pipeline.plan import ScanPlan
from leadline.pipeline.record import HostGroup

__all__ = ["Phase"]


class Phase(Protocol):
    def wanted(self, plan: ScanPlan) -> bool: ...

    def run(self, group: HostGroup, ctx: ScanContext) -> None: ...
