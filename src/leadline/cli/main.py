"""The ``leadline`` command: nmap's command line over leadline's API.

This layer only parses arguments, opens files, wires sinks and maps
errors to one line and an exit code; the scanning lives in
``leadline.pipeline``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import ExitStack
from typing import Callable, Sequence, TextIO, cast

from leadline._version import __version__
from leadline.api import output_sinks
from leadline.cli.help import HELP
from leadline.config import ScanConfig, Timing
from leadline.errors import InputFileError, LeadlineError, UsageError
from leadline.model import HostResult, PortResult, RunInfo, RunStats
from leadline.options import Parsed, parse_args
from leadline.output.base import FanOut, Sink
from leadline.output.held import HeldStream
from leadline.output.progress import ProgressLine

__all__ = ["GuardedSinks", "build_sinks", "main", "read_list_file", "run"]


def _err(msg: str) -> None:
    print(f"leadline: {msg}", file=sys.stderr, flush=True)


class _Terminal:
    """What the run prints outside the sinks: warnings, trace lines, status; all under the sinks' lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.progress: ProgressLine | None = None
        self.stream: TextIO = sys.stdout  # standard error when an output format owns standard output

    def clear(self) -> None:
        if self.progress is not None:
            self.progress.clear()

    def warn(self, msg: str, *, as_is: bool = False) -> None:
        with self.lock:
            self.clear()
            prefixed = as_is or msg.startswith(("Failed", "Warning", "WARNING"))
            print(msg if prefixed else f"Warning: {msg}", file=sys.stderr, flush=True)

    def trace(self, line: str) -> None:
        """--packet-trace lines go where nmap's do (standard output) unless an output format owns it."""
        with self.lock:
            self.clear()
            print(line, file=self.stream, flush=True)


_terminal = _Terminal()


def _warn(msg: str) -> None:
    _terminal.warn(msg)


def _trace(line: str) -> None:
    _terminal.trace(line)


class GuardedSinks(FanOut):
    """The run's sinks under one lock, so that a second Ctrl-C cannot cut an event short.

    A KeyboardInterrupt that arrives while an event is being written to
    the sinks waits until every sink has it, then is raised; so each
    host is in every output file or in none, and ``end`` always closes
    every file.
    """

    def __init__(self, sinks: list[Sink], lock: threading.RLock, on_begin: Callable[[], None] | None = None,
                 held: Sequence[HeldStream] = ()) -> None:
        super().__init__(sinks)
        self.lock = lock
        self.held = held  # the run's output streams written in batches: released at each batch's end
        self.on_begin = on_begin  # runs once the headers are out (nmap's warnings follow "Starting ...")
        self.depth = 0  # > 0 while an event is being written
        self.pending = False  # an interrupt arrived during an event
        self.begun = False
        self.ended = False

    def _each(self, call: Callable[[Sink], None], *, last: bool = False) -> None:
        self.depth += 1
        try:
            with self.lock:
                for s in self.sinks:
                    call(s)
        finally:
            self.depth -= 1
        if self.pending and not self.depth:
            self.pending = False
            if not last:
                raise KeyboardInterrupt

    def begin(self, run: RunInfo) -> None:
        self._each(lambda s: s.begin(run))
        self.begun = True
        if self.on_begin is not None:
            self.on_begin()

    def task_begin(self, task: str, time: float, extra: str = "") -> None:
        self._each(lambda s: s.task_begin(task, time, extra))

    def task_progress(self, task: str, time: float, percent: float, remaining: float | None, etc: float | None) -> None:
        self._each(lambda s: s.task_progress(task, time, percent, remaining, etc))

    def task_end(self, task: str, time: float, extra: str = "") -> None:
        self._each(lambda s: s.task_end(task, time, extra))

    def port_found(self, address: str, port: PortResult) -> None:
        self._each(lambda s: s.port_found(address, port))

    def host(self, host: HostResult) -> None:
        # The busiest event (once per address of a list scan): no closure, one loop.
        self.depth += 1
        try:
            with self.lock:
                for s in self.sinks:
                    s.host(host)
        finally:
            self.depth -= 1
        if self.pending and not self.depth:
            self.pending = False
            raise KeyboardInterrupt

    def listed(self, addresses: Sequence[str]) -> None:
        """A batch of -sL addresses without names."""
        self._each(lambda s: s.listed(addresses))

    def flush(self) -> None:
        self._each(lambda s: s.flush())
        with self.lock:
            for stream in self.held:
                stream.release()

    def end(self, stats: RunStats) -> None:
        self.ended = True
        self._each(lambda s: s.end(stats), last=True)
        with self.lock:
            for stream in self.held:
                stream.release()

    def close_interrupted(self, started: float) -> None:
        """An interrupt escaped the pipeline before it wrote the footer: close every file now."""
        if self.begun and not self.ended:
            now = time.time()
            self.end(RunStats(end_time=now, elapsed=max(0.0, now - started), hosts_up=0, hosts_down=0, hosts_total=0,
                              exit="error", error_message="interrupted"))


def read_list_file(path: str, option: str) -> list[str]:
    """Targets from an ``-iL``/``--excludefile`` file ("-" is standard input)."""
    from leadline.core.targets import read_target_file

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
    except OSError as e:
        raise InputFileError(f"cannot read {option} file '{path}': {e.strerror or e}") from None
    return list(read_target_file(text))


def _hold(stack: ExitStack, stream: TextIO, held: list[HeldStream]) -> TextIO:
    """``stream`` written a batch of whole events at a time (output/held.py); what it holds
    reaches it before it closes."""
    batched = HeldStream(stream)
    held.append(batched)
    stack.callback(batched.release)
    return cast(TextIO, batched)


def _open_output(stack: ExitStack, path: str, stdout: TextIO, held: list[HeldStream]) -> TextIO:
    if path == "-":
        return stdout
    try:
        stream = stack.enter_context(open(path, "w", encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot write output file '{path}': {e.strerror or e}") from None
    return _hold(stack, stream, held)


def held_stdout(stack: ExitStack, held: list[HeldStream]) -> TextIO:
    """Standard output for one run: held in batches of whole events when it is a file (or /dev/null);
    a terminal or a pipe, which someone may be reading live, gets each event as it is written."""
    import stat

    try:
        mode = os.fstat(sys.stdout.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return sys.stdout  # replaced by something without a descriptor: leave it as it is
    if sys.stdout.isatty() or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return sys.stdout
    return _hold(stack, sys.stdout, held)


def build_sinks(config: ScanConfig, stack: ExitStack, *, status: bool = False, stdout: TextIO | None = None,
                held: list[HeldStream] | None = None) -> tuple[list[Sink], ProgressLine | None]:
    """The sinks the flags ask for, plus the progress line (drawn on a terminal; kept for ``status``)."""
    from leadline.output.normal import NormalOutput

    stdout = stdout or sys.stdout
    out = config.output
    sinks: list[Sink] = []
    stdout_taken = "-" in (out.normal, out.xml, out.grepable, out.json)
    progress = None
    if config.interactive or status:
        # With standard output owned by an output format, the live line goes to standard error.
        progress = ProgressLine(sys.stderr if stdout_taken else stdout, enabled=config.interactive)
        sinks.append(progress)
    if not stdout_taken:
        sinks.append(
            NormalOutput(
                stdout,
                reason=config.reason,
                open_only=config.open_only,
                verbosity=config.verbosity,
                debugging=config.debugging,
                ping_hint=not (config.skip_discovery or config.list_only),
            )
        )
    held = [] if held is None else held
    sinks.extend(output_sinks(config, lambda path: _open_output(stack, path, stdout, held), warn=_warn))
    return sinks, progress


def _install_interrupt(stop: threading.Event, sinks: GuardedSinks | None = None) -> Callable[[], None]:
    """First Ctrl-C: stop cleanly and write what was found.  Second: stop scanning now, still closing
    every file (an event being written finishes first).  Third: leave at once.

    Returns what to call once every file is closed: from then on a Ctrl-C leaves at once with 130, as
    there is nothing left to save, instead of raising into the last lines of the exit path.
    """
    presses = [0]
    closed = [False]

    def handler(signum: int, frame: object) -> None:
        presses[0] += 1
        if closed[0]:
            try:
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
            os._exit(130)
        if presses[0] == 1 and not stop.is_set():
            stop.set()
            print("\ncaught interrupt: finishing up and writing what was found (Ctrl-C again to quit at once)",
                  file=sys.stderr, flush=True)
            return
        if sinks is not None and sinks.depth:
            sinks.pending = True  # raised once every sink has the event
            return
        if presses[0] > 2:
            os._exit(130)
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    return lambda: closed.__setitem__(0, True)


def _say_warnings(warnings: list[str]) -> None:
    """nmap's warnings about the options, in nmap's own words (prefix included), after "Starting ..."."""
    for w in warnings:
        _terminal.warn(w, as_is=True)


def timing_report(timing: Timing, template: int = 3) -> list[str]:
    """nmap's -d "Timing report": the timing values in force, in milliseconds, as nmap prints them.

    nmap keeps UDP's scan delay cap at 1 s unless --max-scan-delay is given
    (seen here as a value other than the -T template's).
    """
    from leadline.config import TIMING_TEMPLATES

    udp_delay = 1.0 if timing.max_scan_delay == TIMING_TEMPLATES[template].max_scan_delay else timing.max_scan_delay

    def ms(seconds: float | None) -> int:
        return round((seconds or 0.0) * 1000)

    def rate(value: float | None) -> str:
        return f"{value:g}" if value else "0"

    return [
        "--------------- Timing report ---------------",
        f"  hostgroups: min {timing.min_hostgroup}, max {timing.max_hostgroup or 100000}",
        f"  rtt-timeouts: init {ms(timing.initial_rtt_timeout)}, min {ms(timing.min_rtt_timeout)}, "
        f"max {ms(timing.max_rtt_timeout)}",
        f"  max-scan-delay: TCP {ms(timing.max_scan_delay)}, UDP {ms(udp_delay)}, SCTP {ms(timing.max_scan_delay)}",
        f"  parallelism: min {timing.min_parallelism if timing.min_parallelism > 1 else 0}, "
        f"max {timing.max_parallelism or 0}",
        f"  max-retries: {timing.max_retries}, host-timeout: {ms(timing.host_timeout)}",
        f"  min-rate: {rate(timing.min_rate)}, max-rate: {rate(timing.max_rate)}",
        "---------------------------------------------",
    ]


def _at_start(config: ScanConfig, warnings: list[str]) -> None:
    """What nmap prints right after "Starting ...": the -d timing report, then its warnings."""
    if config.debugging >= 1 and not (config.output.xml == "-" or config.output.json == "-"
                                      or config.output.grepable == "-"):
        with _terminal.lock:
            _terminal.clear()
            _terminal.stream.write("".join(line + "\n" for line in timing_report(config.timing, config.template)))
            _terminal.stream.flush()
    _say_warnings(warnings)


def _port_warnings(config: ScanConfig) -> list[str]:
    """nmap's warnings about the ports, which need the ports chosen (the services table is cached)."""
    from leadline.core.ports import select_ports
    from leadline.options import port_warnings
    from leadline.services import ServiceTable

    if config.ping_only or config.list_only:
        return []
    ports = select_ports(spec=config.ports, top_ports=config.top_ports, exclude=config.exclude_ports,
                         protocols={"tcp"}, services=ServiceTable.load())
    udp = any(t.protocol == "udp" for t in config.scan_types)
    return port_warnings(config, len(ports.tcp), udp)


def run(parsed: Parsed, resumed: Sequence[HostResult] = ()) -> int:
    from dataclasses import replace

    from leadline.cli.keys import Console, StatusKeys, keyboard_for
    from leadline.output.normal import NormalOutput

    config = parsed.config
    out = config.output
    console = sys.stderr if "-" in (out.normal, out.xml, out.grepable, out.json) else sys.stdout
    config = replace(config, interactive=console.isatty() and os.environ.get("CI") != "true")
    if not config.output.save and os.environ.get("LEADLINE_DB") and not config.list_only:
        config = replace(config, output=replace(config.output, save=True))  # LEADLINE_DB set: every scan is kept
    extra_targets: list[str] = []
    extra_excludes: list[str] = []
    if config.input_file:
        extra_targets = read_list_file(config.input_file, "-iL")
    if config.exclude_file:
        extra_excludes = read_list_file(config.exclude_file, "--excludefile")
    if not config.targets and not extra_targets:
        raise UsageError("no targets were specified, so 0 hosts scanned (see 'leadline -h')")
    warnings = parsed.warnings + _port_warnings(config)
    keyboard = keyboard_for(parsed.noninteractive) if config.interactive else None
    stop = threading.Event()
    started = time.time()
    with ExitStack() as stack:
        held: list[HeldStream] = []
        stdout = held_stdout(stack, held)
        sinks, progress = build_sinks(config, stack, status=keyboard is not None or parsed.stats_every is not None,
                                      stdout=stdout, held=held)
        _terminal.stream = stdout if console is sys.stdout else console
        _terminal.progress = progress
        guarded = GuardedSinks(sinks, _terminal.lock, on_begin=lambda: _at_start(config, warnings), held=held)
        files_closed = _install_interrupt(stop, guarded)
        scan = _scan_class(config)(
            config,
            guarded,
            warn=_warn,
            stop=stop,
            extra_targets=extra_targets,
            extra_excludes=extra_excludes,
            trace=_trace,
            resumed=resumed,
        )
        say = Console(_terminal.stream, _terminal.lock, _terminal.clear)
        tunables = [s for s in sinks if isinstance(s, NormalOutput) and not s.file_header]
        status = progress.stats_lines if progress is not None else (lambda now: [])
        keys = StatusKeys(say, status, tunables=tunables, stats_every=parsed.stats_every, keyboard=keyboard)
        try:
            with keys:
                stats = scan.run()
        except KeyboardInterrupt:
            guarded.close_interrupted(started)
            raise
    files_closed()
    if config.output.diff_last:
        from leadline.cli.history import print_diff_last

        print_diff_last(sinks, console)
    return 130 if stats.exit == "error" and stop.is_set() else 0


def _scan_class(config: ScanConfig) -> type:
    """The pipeline, or its cluster form for --cluster (which says in one line when Dask is missing)."""
    from leadline.pipeline import Scan

    if config.cluster is None:
        return Scan
    from leadline.cluster.coordinator import ClusterScan, require_dask

    require_dask()
    return ClusterScan


def _resume(args: list[str], parsed: Parsed) -> int:
    from leadline.cli.resume import resume

    original, checkpoint = resume(args, parsed)
    if checkpoint.finished:
        print(f"leadline: '{checkpoint.path}' holds a finished run; nothing to resume", file=sys.stderr)
        return 0
    return run(original, resumed=checkpoint.done)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["lab"]:
            from leadline.cli.lab import lab_main

            return lab_main(args[1:])
        if args[:1] == ["local"]:
            from leadline.cli.local import local_main

            return local_main(args[1:])
        if args[:1] == ["trace"]:
            from leadline.cli.trace import trace_main

            return trace_main(args[1:])
        if args[:1] in (["db"], ["diff"], ["report"]):
            from leadline.cli.history import history_main

            return history_main(args)
        parsed = parse_args(args)
        if parsed.show_help or not args:
            sys.stdout.write(HELP)
            return 0
        if parsed.show_version:
            print(f"leadline version {__version__}")
            return 0
        if parsed.config.resume is not None:
            return _resume(args, parsed)
        return run(parsed)
    except LeadlineError as e:
        _err(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 141
