"""One run of the pipeline: targets → host groups → phases → sinks.

Targets are a lazy stream cut into host groups, so memory depends on the
group size, never on the size of the target range.  Each group passes
through the phases in order; each finished host goes to the sinks at
once, so an interrupted scan still reports every host it finished.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from leadline._version import __version__
from leadline.config import ScanConfig
from leadline.core.ports import compact
from leadline.core.targets import Target, iter_targets, parse_target_spec, shuffled_in_blocks
from leadline.model import HostResult, RunInfo, RunStats, ScanInfo
from leadline.output.base import Sink
from leadline.pipeline.context import ScanContext
from leadline.pipeline.discovery import Discovery
from leadline.pipeline.emit import Emitter
from leadline.pipeline.engines import Engines, SystemEngines
from leadline.pipeline.names import resolve_names
from leadline.pipeline.phase import Phase
from leadline.pipeline.plan import ScanPlan
from leadline.pipeline.portscan import PortScan
from leadline.pipeline.record import HostGroup, HostRecord
from leadline.pipeline.listing import list_targets
from leadline.pipeline.sweep import ping_sweep
from leadline.services import ServiceTable

if TYPE_CHECKING:
    from leadline.output.evidence import Evidence

__all__ = ["Scan", "post_scan_phases"]

Warn = Callable[[str], None]


def post_scan_phases(config: ScanConfig) -> tuple[Phase, ...]:
    """The phases after the port scans, in nmap's order: service/version, OS, traceroute, then scripts (which may read them).

    Each is imported only when its option asks for it: their modules bring
    asyncio, regular expressions and TLS that a plain port scan never needs.
    """
    phases: list[Phase] = []
    if config.version_detection:
        from leadline.pipeline.service import ServiceScan

        phases.append(ServiceScan())
    if config.wants_os:
        from leadline.pipeline.osdetect import OsScan

        phases.append(OsScan())
    if config.wants_traceroute:
        from leadline.pipeline.traceroute import Traceroute

        phases.append(Traceroute())
    if config.scripts:
        from leadline.pipeline.scripts import ScriptScan

        phases.append(ScriptScan())
    return tuple(phases)


_SCAN_GC_THRESHOLD = 100_000  # allocations between young-generation collections while scanning


@contextlib.contextmanager
def quiet_collector() -> Iterator[None]:
    """Keep the cyclic garbage collector out of the scan's way.

    A scan allocates a few small objects per probe and per reply, almost
    none in cycles, while everything imported and set up before it lives
    to the end.  So what exists now is frozen (never traversed again; it
    also keeps forked workers' pages shared) and the young generation is
    collected every 100,000 allocations instead of 700: measured on
    ``-sS -p-`` of one host, about 0.2 s of CPU less out of 2.9 s.
    Cycles are still collected, only less often; the old setting returns
    after the scan.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_SCAN_GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class Scan:
    """One run of the pipeline for one ScanConfig."""

    def __init__(
        self,
        config: ScanConfig,
        sink: Sink,
        *,
        warn: Warn,
        stop: threading.Event | None = None,
        extra_targets: Iterable[str] = (),
        extra_excludes: Iterable[str] = (),
        services: ServiceTable | None = None,
        trace: Callable[[str], None] | None = None,
        engines: Engines | None = None,
        resumed: Sequence[HostResult] = (),
        given: Sequence[Target] | None = None,
    ) -> None:
        self.config = config
        self.resumed = resumed  # hosts an interrupted run already finished (--resume): replayed, not scanned
        self.done = frozenset(h.address for h in resumed)
        self.given = given  # targets already expanded elsewhere (a cluster task): used as they are
        self.warn = warn
        self.extra_targets = list(extra_targets)
        self.extra_excludes = tuple(extra_excludes)
        engines = engines or SystemEngines()
        services = services or ServiceTable.load()
        self.plan = ScanPlan.make(config, services, raw_available=engines.raw_available())
        # Parse every spec now, so a typo fails before any output starts; expansion stays lazy.
        for spec in itertools.chain(config.targets, self.extra_targets):
            parse_target_spec(spec, ipv6=config.ipv6)
        self.evidence = self._open_evidence(trace if config.packet_trace else None)
        self.ctx = ScanContext(self.plan, engines, sink, stop or threading.Event(), warn, services,
                               evidence=self.evidence, port_key=random.getrandbits(32), trace=trace)
        self.emitter = Emitter(self.ctx)
        self.port_phases: tuple[Phase, ...] = tuple(PortScan(t) for t in self.plan.scan_types)
        self.later_phases = tuple(p for p in post_scan_phases(config) if p.wanted(self.plan))
        self.service_scan = False
        if config.version_detection:
            from leadline.pipeline.service import ServiceScan

            self.service_scan = any(isinstance(p, ServiceScan) for p in self.later_phases)
        self.os_scan = any(type(p).__name__ == "OsScan" for p in self.later_phases)

    def _open_evidence(self, trace: Callable[[str], None] | None) -> Evidence | None:
        if self.config.pcap is None and trace is None:
            return None
        from leadline.output.evidence import open_evidence

        return open_evidence(self.config.pcap, trace)

    # -- the run -------------------------------------------------------
    def run_info(self, start: float) -> RunInfo:
        infos = []
        for t in self.plan.scan_types:
            ports = self.plan.ports_for(t)
            infos.append(ScanInfo(t.kind.xml_name, t.protocol, len(ports), compact(ports)))
        config = self.config
        return RunInfo(args=config.args, start_time=start, version=__version__, scaninfo=tuple(infos),
                       verbosity=config.verbosity, debugging=config.debugging, ping_only=config.ping_only,
                       list_only=config.list_only,
                       service_scan=self.service_scan, os_scan=self.os_scan)

    def targets(self) -> Iterator[Target]:
        if self.given is not None:
            return iter(self.given)
        specs = itertools.chain(self.config.targets, self.extra_targets)
        stream = iter_targets(specs, exclude=self.config.exclude + self.extra_excludes,
                              resolve=self.ctx.engines.resolve_name, ipv6=self.config.ipv6, warn=self.warn)
        if self.config.shard is not None:
            stream = self._sharded(stream)
        if self.done:
            stream = (t for t in stream if t.address not in self.done)
        if self.config.randomize_hosts:
            return shuffled_in_blocks(stream, random.Random())
        return stream

    def _sharded(self, stream: Iterator[Target]) -> Iterator[Target]:
        """Only this run's shard; the permutation's range is the targets' count before exclusions."""
        from leadline.core.shards import Shard, shard_stream

        assert self.config.shard is not None
        size = sum(parse_target_spec(s, ipv6=self.config.ipv6).count()
                   for s in itertools.chain(self.config.targets, self.extra_targets))
        return shard_stream(stream, Shard(*self.config.shard), size)

    def run(self) -> RunStats:
        """Run to the end, or until ``stop`` is set; the sinks are always closed."""
        sink = self.ctx.sink
        t0 = time.monotonic()
        sink.begin(self.run_info(time.time()))
        exit_status, error = "error", "interrupted"
        try:
            for host in self.resumed:
                self.emitter.replay(host)
            if self.resumed:
                self.emitter.flush()
            with quiet_collector():
                self.scan_all()
            if not self.ctx.stopped:
                exit_status, error = "success", ""
        except KeyboardInterrupt:
            pass
        except BaseException as e:  # close every output before the error travels on
            sink.end(self.stats(t0, exit_status, str(e) or type(e).__name__))
            raise
        finally:
            if self.evidence is not None:
                self.evidence.close()
        stats = self.stats(t0, exit_status, error)
        if self.emitter.counts.total == 0 and exit_status == "success":
            self.warn("WARNING: No targets were specified, so 0 hosts scanned.")
        sink.end(stats)
        return stats

    def scan_all(self) -> None:
        targets = self.targets()
        if self.config.list_only:
            list_targets(targets, self.ctx, self.emitter)
            return
        if self.plan.streams_sweep:
            ping_sweep(targets, self.ctx, self.emitter)
            return
        size = self.plan.group_size()
        while not self.ctx.stopped:
            batch = list(itertools.islice(targets, size))
            if not batch:
                break
            self.scan_group(HostGroup.of(batch))

    def stats(self, t0: float, exit_status: str, error: str) -> RunStats:
        elapsed = time.monotonic() - t0
        c = self.emitter.counts
        summary = (
            f"leadline done at {time.strftime('%a %b %d %H:%M:%S %Y', time.localtime())}; "
            f"{c.total} IP address{'es' if c.total != 1 else ''} ({c.up} host{'s' if c.up != 1 else ''} up) "
            f"scanned in {elapsed:.2f} seconds"
        )
        return RunStats(end_time=time.time(), elapsed=elapsed, hosts_up=c.up, hosts_down=c.down, hosts_total=c.total,
                        exit=exit_status, summary=summary, error_message=error)

    # -- one host group ------------------------------------------------
    def scan_group(self, group: HostGroup) -> None:
        ctx, emit = self.ctx, self.emitter.emit
        Discovery().run(group, ctx)
        down = group.down()
        if self.config.dns == "always":
            resolve_names(down, ctx)
        for r in down:
            emit(r, group.started)
        if down:
            self.emitter.flush()
        if not self.port_phases:
            for phase in self.later_phases:
                if getattr(phase, "runs_after_ping_scan", False) and not ctx.stopped:
                    phase.run(group, ctx)
            up: Sequence[HostRecord] = group.up()
        else:
            for phase in (*self.port_phases, *self.later_phases):
                if ctx.stopped:
                    break
                phase.run(group, ctx)
            up = list({r.address: r for r in group.up()}.values())  # scanned, and reported, once per address
            if ctx.stopped:
                planned = sum(len(self.plan.ports_for(t)) for t in self.plan.scan_types)
                for r in up:
                    r.interrupted = len(r.ports) < planned and not r.timed_out
        if not up:
            return
        resolve_names(up, ctx)
        for r in up:
            emit(r, group.started)
        self.emitter.flush()
