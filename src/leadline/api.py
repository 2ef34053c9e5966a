"""The typed Python API: ``leadline.scan`` and ``leadline.scan_async``.

The CLI is a thin layer over the same ``Scan`` pipeline; callers of the
API get result objects instead of text, and may pass nmap-style option
strings when that is easier than keyword arguments.
"""

from __future__ import annotations

import asyncio
import shlex
import threading
from dataclasses import replace
from typing import Callable, Iterable, TextIO

from leadline.options import parse_args
from leadline.config import ScanConfig
from leadline.model import HostResult, RunInfo, RunStats, ScanReport
from leadline.output.base import NullSink, Sink


def output_sinks(config: ScanConfig, open_file: Callable[[str], TextIO]) -> list[Sink]:
    """The sinks for ``-oN``/``-oX``/``-oG``/``-oJ``, each writing to ``open_file(path)``."""
    from leadline.output.grepable import GrepableOutput
    from leadline.output.json import JsonOutput
    from leadline.output.normal import NormalOutput
    from leadline.output.xml import XmlOutput

    out = config.output
    sinks: list[Sink] = []
    if out.normal:
        sinks.append(
            NormalOutput(
                open_file(out.normal),
                reason=config.reason,
                open_only=config.open_only,
                verbosity=config.verbosity,
                debugging=config.debugging,
                file_header=out.normal != "-",
            )
        )
    if out.xml:
        sinks.append(XmlOutput(open_file(out.xml), open_only=config.open_only))
    if out.grepable:
        sinks.append(GrepableOutput(open_file(out.grepable), open_only=config.open_only))
    if out.json:
        sinks.append(JsonOutput(open_file(out.json)))
    return sinks


class _Collector(NullSink):
    def __init__(self, on_host: Callable[[HostResult], None] | None) -> None:
        self.run: RunInfo | None = None
        self.hosts: list[HostResult] = []
        self.stats: RunStats | None = None
        self.on_host = on_host

    def begin(self, run: RunInfo) -> None:
        self.run = run

    def host(self, host: HostResult) -> None:
        self.hosts.append(host)
        if self.on_host:
            self.on_host(host)

    def end(self, stats: RunStats) -> None:
        self.stats = stats


def config_from(targets: str | Iterable[str], options: str = "", **overrides: object) -> ScanConfig:
    """A ScanConfig from targets and nmap-style options, e.g. ``config_from("198.18.1.10", "-sT -p 22,80")``."""
    target_list = [targets] if isinstance(targets, str) else list(targets)
    parsed = parse_args([*shlex.split(options), *target_list])
    return replace(parsed.config, **overrides)  # type: ignore[arg-type]


def scan(
    targets: str | Iterable[str],
    options: str = "",
    *,
    on_host: Callable[[HostResult], None] | None = None,
    sinks: Iterable[Sink] = (),
    stop: threading.Event | None = None,
    warn: Callable[[str], None] | None = None,
    **overrides: object,
) -> ScanReport:
    """Scan and return the whole report.

    ``options`` takes nmap's flags (``"-sT -p- --max-retries 2"``);
    keyword ``overrides`` set ScanConfig fields directly.  ``on_host`` is
    called as each host finishes, before the report is returned.
    Raises leadline.errors.LeadlineError subclasses for bad input.
    """
    from leadline.output.base import FanOut
    from leadline.scanner import Scan

    config = config_from(targets, options, **overrides)
    collector = _Collector(on_host)
    warnings: list[str] = []

    def _warn(msg: str) -> None:
        warnings.append(msg)
        if warn:
            warn(msg)

    Scan(config, FanOut([collector, *sinks]), warn=_warn, stop=stop).run()
    assert collector.run is not None and collector.stats is not None
    return ScanReport(run=collector.run, hosts=tuple(collector.hosts), stats=collector.stats, warnings=tuple(warnings))


async def scan_async(targets: str | Iterable[str], options: str = "", **kwargs: object) -> ScanReport:
    """``scan`` without blocking the event loop; cancelling the task stops the scan."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(scan, targets, options, stop=stop, **kwargs)  # type: ignore[arg-type]
    except asyncio.CancelledError:
        stop.set()
        raise
