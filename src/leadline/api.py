"""The typed Python API: ``leadline.scan`` and ``leadline.scan_async``.

The CLI is a thin layer over the same ``Scan`` pipeline; callers of the
API get result objects instead of text, and may pass nmap-style option
strings when that is easier than keyword arguments.
"""

from __future__ import annotations

import functools
import shlex
import sys
import threading
from contextlib import ExitStack
from dataclasses import fields, replace
from typing import Callable, Iterable, Sequence, TextIO, Union

from leadline.config import ScanConfig, Timing
from leadline.errors import UsageError
from leadline.model import HostResult, RunInfo, RunStats, ScanReport
from leadline.options import parse_args
from leadline.output.base import NullSink, Sink

__all__ = ["Options", "config_from", "history_key", "output_sinks", "scan", "scan_async"]


def output_sinks(config: ScanConfig, open_file: Callable[[str], TextIO],
                 warn: Callable[[str], None] | None = None) -> list[Sink]:
    """The sinks for ``-oN``/``-oX``/``-oG``/``-oJ``, each writing to ``open_file(path)``, and ``--save``'s."""
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
    if out.save:
        from leadline.history.sink import StoreSink

        sinks.append(StoreSink(out.db, history_key(config), warn or (lambda msg: print(f"Warning: {msg}", file=sys.stderr))))
    return sinks


def history_key(config: ScanConfig) -> str:
    """What makes two runs "over the same targets" for ``--diff-last``: the targets as typed, and any -iL file."""
    words = list(config.targets) + ([f"-iL {config.input_file}"] if config.input_file else [])
    return " ".join(words)


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


Options = Union[str, Sequence[str]]


def _option_words(options: object) -> list[str]:
    """nmap-style options as a string (split like a shell) or as a list of words."""
    if isinstance(options, str):
        try:
            return shlex.split(options)
        except ValueError as e:
            raise UsageError(f"cannot split options {options!r}: {e}") from None
    if isinstance(options, (list, tuple)) and all(isinstance(w, str) for w in options):
        return list(options)
    raise UsageError(f"options must be a string or a list of strings, not {type(options).__name__}")


def _target_words(targets: object) -> list[str]:
    if isinstance(targets, str):
        return [targets]
    try:
        words = list(targets)  # type: ignore[call-overload]
    except TypeError:
        raise UsageError(f"targets must be a string or a list of strings, not {type(targets).__name__}") from None
    if not all(isinstance(w, str) for w in words):
        raise UsageError("targets must be a string or a list of strings")
    return words


def _fits(value: object, default: object) -> bool:
    """Whether ``value`` may replace a field whose default is ``default`` (None-defaults take anything)."""
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _apply_overrides(config: ScanConfig, overrides: dict[str, object]) -> ScanConfig:
    """Keyword arguments set ScanConfig fields, or Timing fields (``max_retries=2``), by name."""
    config_fields = {f.name for f in fields(ScanConfig)}
    timing_fields = {f.name for f in fields(Timing)}
    top: dict[str, object] = {}
    timing: dict[str, object] = {}
    for name, value in overrides.items():
        if name in config_fields:
            current, bucket = getattr(config, name), top
        elif name in timing_fields:
            current, bucket = getattr(config.timing, name), timing
        else:
            raise UsageError(f"unknown keyword argument {name!r}: not a ScanConfig or Timing field")
        if not _fits(value, current):
            raise UsageError(f"keyword argument {name}={value!r}: expected {type(current).__name__}")
        bucket[name] = value
    if timing:
        base_timing = top.get("timing", config.timing)
        assert isinstance(base_timing, Timing)
        top["timing"] = replace(base_timing, **timing)  # type: ignore[arg-type]
    return replace(config, **top) if top else config  # type: ignore[arg-type]


def config_from(targets: str | Iterable[str], options: Options = "", **overrides: object) -> ScanConfig:
    """A ScanConfig from targets and nmap-style options, e.g. ``config_from("198.18.1.10", "-sT -p 22,80")``.

    Raises :class:`~leadline.errors.LeadlineError` (one line) for anything wrong.
    """
    return _configured(targets, options, overrides)[0]


def _configured(targets: object, options: object, overrides: dict[str, object]) -> tuple[ScanConfig, list[str]]:
    """The config, and nmap's warnings about the options (e.g. --scanflags with -sT)."""
    parsed = parse_args([*_option_words(options), *_target_words(targets)])
    if parsed.show_help or parsed.show_version or parsed.stats_every is not None:
        raise UsageError("-h, -V and --stats-every belong to the command line, not to leadline.scan")
    return _apply_overrides(parsed.config, overrides), parsed.warnings


def _open_for_api(stack: ExitStack, path: str) -> TextIO:
    if path == "-":
        raise UsageError("an output option cannot write to standard output here: give a file name, or pass sinks=")
    try:
        return stack.enter_context(open(path, "w", encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot write output file '{path}': {e.strerror or e}") from None


def scan(
    targets: str | Iterable[str],
    options: Options = "",
    *,
    on_host: Callable[[HostResult], None] | None = None,
    sinks: Iterable[Sink] = (),
    stop: threading.Event | None = None,
    warn: Callable[[str], None] | None = None,
    **overrides: object,
) -> ScanReport:
    """Scan ``targets`` and return the whole report.

    ``targets``: one spec (``"198.18.1.0/24"``) or a list of them.
    ``options``: nmap's flags as a string (``"-sT -p- --max-retries 2"``)
    or a list (``["-sT", "-p", "80"]``); ``-oN/-oX/-oG/-oJ/-oA FILE``
    write those files as the CLI does.  Keyword ``overrides`` set
    :class:`ScanConfig` or :class:`Timing` fields by name
    (``max_retries=2``).  ``on_host`` is called as each host finishes;
    ``sinks`` receive every event; setting ``stop`` ends the scan early,
    keeping what was found; ``warn`` hears each warning line.

    Raises :class:`~leadline.errors.LeadlineError` whose message is one
    line for bad input, unknown or mistyped keyword arguments included.
    """
    from leadline.output.base import FanOut
    from leadline.pipeline import Scan

    config, option_warnings = _configured(targets, options, overrides)
    collector = _Collector(on_host)
    warnings: list[str] = []

    def _warn(msg: str) -> None:
        warnings.append(msg)
        if warn:
            warn(msg)

    for line in option_warnings:
        _warn(line)

    with ExitStack() as stack:
        files = output_sinks(config, lambda path: _open_for_api(stack, path))
        Scan(config, FanOut([collector, *files, *sinks]), warn=_warn, stop=stop).run()
    assert collector.run is not None and collector.stats is not None
    return ScanReport(run=collector.run, hosts=tuple(collector.hosts), stats=collector.stats, warnings=tuple(warnings))


async def scan_async(
    targets: str | Iterable[str],
    options: Options = "",
    *,
    on_host: Callable[[HostResult], None] | None = None,
    sinks: Iterable[Sink] = (),
    warn: Callable[[str], None] | None = None,
    **overrides: object,
) -> ScanReport:
    """:func:`scan` without blocking the event loop; cancelling the task stops the scan (what was found is kept in any files)."""
    stop = threading.Event()
    call = functools.partial(scan, targets, options, on_host=on_host, sinks=sinks, stop=stop, warn=warn, **overrides)
    import asyncio  # here, not at the top: the command line never needs it

    try:
        return await asyncio.to_thread(call)
    except asyncio.CancelledError:
        stop.set()
        raise
