"""The "Service scan" phase (-sV): what software answers on each open port.

It takes the open TCP and UDP ports of the group's up hosts, hands them
all at once to the service engine (``Engines.detect_services``), and puts
each answer on its port: ``PortResult.detail`` (a ``ServiceDetail``) and the
service name.  Ports named in the probe file's ``Exclude`` line are left
alone, as nmap leaves them.
"""

from __future__ import annotations

import time
from dataclasses import replace

from leadline.detect.service.database import load_database
from leadline.detect.service.probes import ProbeDatabase
from leadline.engines.service import ServiceOptions, ServiceTarget
from leadline.errors import UsageError
from leadline.model import PortResult, PortState, ServiceDetail
from leadline.pipeline.context import ScanContext, TaskProgress
from leadline.pipeline.plan import ScanPlan
from leadline.pipeline.record import HostGroup, HostRecord

__all__ = ["ServiceScan", "service_options"]

TASK = "Service scan"


def service_options(plan: ScanPlan) -> ServiceOptions:
    """The engine's knobs from the config: intensity, and waits scaled by the timing template."""
    config = plan.config
    t = config.timing
    null_wait = 1.0 if config.template >= 3 else 3.0
    return ServiceOptions(intensity=config.version_intensity, null_wait=null_wait,
                          connect_timeout=max(1.0, t.max_rtt_timeout * 2),
                          parallelism=t.max_parallelism or 64)


class ServiceScan:
    """Version detection over the open ports of one host group."""

    def wanted(self, plan: ScanPlan) -> bool:
        """Whether -sV asked for it; the probe file is read here, so a bad --versiondb fails before any output."""
        config = plan.config
        if not config.version_detection or config.ping_only or config.list_only:
            return False
        _database(config.versiondb)
        return True

    def run(self, group: HostGroup, ctx: ScanContext) -> None:
        hosts = {r.address: r for r in group.up()}
        db = _database(ctx.plan.config.versiondb)
        targets = [ServiceTarget(addr, p.port, p.protocol) for addr, r in hosts.items() for p in r.ports
                   if p.state is PortState.OPEN and p.protocol in ("tcp", "udp")
                   and not db.excluded(p.protocol, p.port)]
        if not targets or ctx.stopped:
            return
        count = len(targets)
        names = ", ".join(sorted(hosts)) if len(hosts) == 1 else f"{len(hosts)} hosts"
        ctx.sink.task_begin(TASK, time.time(), f"{count} service{'s' if count != 1 else ''} on {names}")
        progress = TaskProgress(ctx.sink, TASK, count)
        done = 0

        def on_result(t: ServiceTarget, detail: ServiceDetail | None) -> None:
            nonlocal done
            done += 1
            progress.update(done)
            if detail is not None:
                _set_detail(hosts[t.address], t, detail)

        config = ctx.plan.config
        trace = ctx.trace if config.version_trace else None
        log = ctx.trace if config.debugging else None
        ctx.engines.detect_services(db, targets, service_options(ctx.plan), on_result=on_result, stop=ctx.stop,
                                    log=log, trace=trace)
        ctx.sink.task_end(TASK, time.time(), f"{count} service{'s' if count != 1 else ''} on "
                                             f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}")


def _database(path: str | None) -> ProbeDatabase:
    try:
        return load_database(path)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _set_detail(record: HostRecord, t: ServiceTarget, detail: ServiceDetail) -> None:
    for i, p in enumerate(record.ports):
        if p.port == t.port and p.protocol == t.protocol:
            record.ports[i] = _with_detail(p, detail)
            return


def _with_detail(p: PortResult, detail: ServiceDetail) -> PortResult:
    return replace(p, service=detail.name, detail=detail)
